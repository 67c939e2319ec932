//! Shared pieces of the benchmarks (figures, not tests).

pub mod runtime_api;

use std::sync::Arc;

use callrecords::apikey::{self, ApiKeyRecord, Scope};
use callrecords::clock::FixedClock;
use callrecords::config::Config;
use callrecords::cursor::{generate_secret, CursorKeys};
use callrecords::recording::Retention;
use callrecords::store::metrics::RequestCounter;
use callrecords::{template, App};
use chrono::{DateTime, Utc};

/// A new, empty table and bucket named `name` (unique per process), made from template.yaml on the
/// emulators the environment names, with the clock standing at `now` and a counter of DynamoDB requests.
pub async fn fresh_stack(name: &str, now: DateTime<Utc>) -> Result<(App, RequestCounter), Box<dyn std::error::Error>> {
    let counter = RequestCounter::default();
    let config = Config {
        table_name: format!("{name}-{}", std::process::id()),
        bucket_name: format!("{name}-{}", std::process::id()),
        retention: Retention::days(30),
        key_cache_ttl: callrecords::config::DEFAULT_KEY_CACHE_TTL,
        s3_force_path_style: true,
        cursor_keys: Some(CursorKeys::new(&generate_secret(), None)?),
        capture: Default::default(),
        total_budget: Default::default(),
    };
    let app = App::connect(config, Arc::new(FixedClock(now)), Some(counter.clone())).await;
    template::create_table(app.store.client(), app.store.table()).await?;
    template::create_bucket(app.recordings.client(), app.recordings.bucket(), 30).await?;
    // The benchmarks' key, stored and already held by the key check: counts and timings are a warm
    // instance's (what a cold key costs is in tests/tests/auth.rs).
    let record = ApiKeyRecord {
        key_id: KEY[4..16].to_owned(),
        tenant_id: TENANT.to_owned(),
        label: "bench".to_owned(),
        key_hash: apikey::hash(KEY),
        created_at: now,
        revoked_at: None,
        scopes: vec![Scope::CallsRead, Scope::CallsWrite],
    };
    app.store.put_key(&record).await?;
    app.keys.caller(Some(&authorization())).await?;
    Ok((app, counter))
}

/// The tenant the benchmarks' requests act for.
pub const TENANT: &str = "bench";
/// The benchmarks' API key (read and write, tenant [`TENANT`]), made by [`fresh_stack`] in each stack.
pub const KEY: &str = "crk_0000000000be_benchbenchbenchbenchbenchbenchbenchbenchben";

/// The `Authorization` header value of [`KEY`].
pub fn authorization() -> String {
    format!("Bearer {KEY}")
}
