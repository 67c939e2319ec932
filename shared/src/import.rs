//! Bulk loading for the operator tool: calls from JSON Lines in the API's own format, and generated calls.
//! Every line is checked by [`crate::validate::call`] and written by the store's write protocol under the
//! lifecycle rule, as a PUT is ([`DynamoStore::write_calls`]: bounded concurrency, unprocessed items
//! retried), so loading is idempotent: running an import twice leaves the same table as running it once.
//! One difference from a PUT: an import brings recordings with its calls (the operator uploads their
//! objects), so what a line says of its recording is written, where a PUT keeps the stored one.
//! Operator tool and tests only (feature `admin`).

use std::io::BufRead;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::model::CallRecord;
use crate::store::calls::{Condition, Rules};
use crate::store::DynamoStore;
use crate::{ApiError, StoreError, TenantId};

/// Calls parsed before they are written, per batch of rounds.
const PARSE_AHEAD: usize = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// `field` is the JSON path of the offending value within the line; `None` when the line is not JSON.
    #[error("line {line}: {}", located(.field, .why))]
    BadLine {
        line: u64,
        field: Option<String>,
        why: String,
    },
    #[error("reading input: {0}")]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportReport {
    /// Calls written (created or replaced).
    pub calls: u64,
    /// Blank lines skipped.
    pub blank: u64,
    /// Calls the lifecycle rule refused (an ended call moved back to a status that is not final): the
    /// call id, the field and why. They are not written; the rest of the import is.
    pub refused: Vec<(String, String, String)>,
}

fn located(field: &Option<String>, why: &str) -> String {
    match field {
        Some(field) => format!("{field}: {why}"),
        None => why.to_owned(),
    }
}

/// Why a line is not a call: the JSON path of the first offending value (none when the line is not JSON),
/// and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineFault {
    pub field: Option<String>,
    pub why: String,
}

/// One line of JSON Lines: a call as get-call serves it, either its `data` or the whole envelope
/// `{"success": true, "data": {…}}` (then paths start with `data`), checked as it would be written at `now`.
pub fn parse_line(tenant: &TenantId, line: &str, now: DateTime<Utc>) -> Result<CallRecord, LineFault> {
    let value: Value = serde_json::from_str(line).map_err(|e| LineFault {
        field: None,
        why: format!("not JSON: {e}"),
    })?;
    let (call, prefix) = match value.get("data") {
        Some(data) if value.get("success").is_some() => (data, Some("data")),
        _ => (&value, None),
    };
    crate::validate::call(tenant, call, None, now).map_err(|e| {
        let (field, why) = match e {
            ApiError::InvalidParameter { field, reason } => (field, reason),
            other => (".".to_owned(), other.to_string()),
        };
        let field = match (prefix, field.as_str()) {
            (Some(p), ".") => p.to_owned(),
            (Some(p), f) if f.starts_with('[') => format!("{p}{f}"),
            (Some(p), f) => format!("{p}.{f}"),
            (None, _) => field,
        };
        LineFault {
            field: Some(field),
            why,
        }
    })
}

/// Reads JSON Lines from `input` and writes every call for `tenant` as written at `now` (which bounds its
/// timestamps and becomes its `updatedAt`), `concurrency` groups of 32 calls at a time; `progress` hears how many
/// calls are written so far. Stops at the first bad line, after writing every call before it and nothing of
/// that line, and names the line and the field: fix it and run the import again.
pub async fn jsonl(
    store: &DynamoStore,
    tenant: &TenantId,
    input: impl BufRead,
    now: DateTime<Utc>,
    concurrency: usize,
    mut progress: impl FnMut(u64),
) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport::default();
    let mut pending = Vec::with_capacity(PARSE_AHEAD);
    let mut bad = None;
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            report.blank += 1;
            continue;
        }
        match parse_line(tenant, &line, now) {
            Ok(record) => pending.push(record),
            Err(LineFault { field, why }) => {
                bad = Some(ImportError::BadLine {
                    line: n as u64 + 1,
                    field,
                    why,
                });
                break;
            }
        }
        if pending.len() == PARSE_AHEAD {
            let batch = std::mem::take(&mut pending);
            write(store, tenant, batch, now, concurrency, &mut report).await?;
            progress(report.calls);
        }
    }
    write(store, tenant, pending, now, concurrency, &mut report).await?;
    progress(report.calls);
    match bad {
        Some(err) => Err(err),
        None => Ok(report),
    }
}

/// Writes one batch of an import as a PUT writes a call (the lifecycle rule), the recordings as the lines
/// give them.
async fn write(
    store: &DynamoStore,
    tenant: &TenantId,
    batch: Vec<CallRecord>,
    now: DateTime<Utc>,
    concurrency: usize,
    report: &mut ImportReport,
) -> Result<(), StoreError> {
    let rules = Rules {
        condition: Condition::Always,
        keep_recording: false,
        rule: Some(crate::model::lifecycle),
        webhook_sources: None,
    };
    let count = batch.len() as u64;
    let refused = store.write_calls(tenant, batch, &rules, concurrency, now).await?;
    report.calls += count - refused.len() as u64;
    report.refused.extend(refused);
    Ok(())
}
