//! The API key check every API handler runs first, inside its own invocation (no authorizer function):
//! `Authorization: Bearer <key>` → the key's record → who the key acts for.
//!
//! A key's record is read with one consistent GetItem and then kept in the process for a short time
//! (`API_KEY_CACHE_SECONDS`, default 60), so a warm instance serves a known key with no request of its own.
//! What is kept is the stored record, never the key: the presented key is hashed and compared with the
//! record's hash in constant time on every request. Records that say "revoked" are kept too (a revoked key is
//! refused from the cache); keys with no record are not kept, so a key made a moment ago works at once. A key
//! revoked while its record is held still works until the record is older than the time kept: that is the
//! revocation delay docs/API.md states. A malformed key or header costs no request at all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::apikey::{self, ApiKeyRecord, Caller};
use crate::clock::Clock;
use crate::error::ApiError;
use crate::store::DynamoStore;

/// How many key records an instance keeps at most: past that, records held too long go, and if none has,
/// all go (one instance serves one request at a time, so this bounds memory, not contention).
pub const CAPACITY: usize = 1_000;

pub struct KeyCheck {
    store: DynamoStore,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    held: Mutex<HashMap<String, Held>>,
}

#[derive(Clone)]
struct Held {
    record: ApiKeyRecord,
    read_at: DateTime<Utc>,
}

impl KeyCheck {
    /// Checks keys against `store`, keeping each record read for `ttl` by `clock` (zero: never kept).
    pub fn new(store: DynamoStore, clock: Arc<dyn Clock>, ttl: Duration) -> KeyCheck {
        KeyCheck {
            store,
            clock,
            ttl,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// How long a record read is kept: the longest a revoked key may still be accepted.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// How many records are held now.
    pub fn held(&self) -> usize {
        self.lock().len()
    }

    /// Who the request's `Authorization` header value acts for: 401 for a missing or malformed header, an
    /// unknown key, a wrong secret or a revoked key; 503-class when the record cannot be read.
    pub async fn caller(&self, header: Option<&str>) -> Result<Caller, ApiError> {
        let key = header.and_then(apikey::bearer).ok_or(ApiError::Unauthorized)?;
        let key_id = apikey::key_id_of(key).ok_or(ApiError::Unauthorized)?;
        let record = match self.fresh(key_id) {
            Some(record) => record,
            None => {
                let record = self.store.get_key(key_id).await?.ok_or(ApiError::Unauthorized)?;
                self.remember(&record);
                record
            }
        };
        apikey::verify(&record, key).ok_or(ApiError::Unauthorized)
    }

    /// Keeps `record` as read now. The check does this after each read; a process that has just read or
    /// written a record may do it too (the integration tests do, so that their request counts are a warm
    /// instance's).
    pub fn remember(&self, record: &ApiKeyRecord) {
        if self.ttl.is_zero() {
            return;
        }
        let now = self.clock.now();
        let mut held = self.lock();
        if held.len() >= CAPACITY && !held.contains_key(&record.key_id) {
            held.retain(|_, h| self.is_fresh(h, now));
            if held.len() >= CAPACITY {
                held.clear();
            }
        }
        held.insert(
            record.key_id.clone(),
            Held {
                record: record.clone(),
                read_at: now,
            },
        );
    }

    fn fresh(&self, key_id: &str) -> Option<ApiKeyRecord> {
        let now = self.clock.now();
        let held = self.lock();
        held.get(key_id)
            .filter(|h| self.is_fresh(h, now))
            .map(|h| h.record.clone())
    }

    /// Read less than `ttl` ago; a clock that went back makes a record stale, never fresher.
    fn is_fresh(&self, held: &Held, now: DateTime<Utc>) -> bool {
        match (now - held.read_at).to_std() {
            Ok(age) => age < self.ttl,
            Err(_) => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        // A panic while holding the lock cannot leave the map half-changed in a way that matters: every
        // entry is whole. Carry on with it.
        self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
