//! Bulk loading for the operator tool: calls from JSON Lines in the API's own format, and generated calls.
//! Both write through [`DynamoStore::put_calls`] (batch writes, bounded concurrency, unprocessed items
//! retried), so loading is idempotent: running an import twice leaves the same table as running it once.
//! Operator tool and tests only (feature `admin`).

use std::io::BufRead;

use serde_json::Value;

use crate::model::CallRecord;
use crate::store::DynamoStore;
use crate::{StoreError, TenantId};

/// Calls parsed before they are written, per batch of rounds.
const PARSE_AHEAD: usize = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("line {line}: {why}")]
    BadLine { line: u64, why: String },
    #[error("reading input: {0}")]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportReport {
    /// Calls written (created or replaced).
    pub calls: u64,
    /// Blank lines skipped.
    pub blank: u64,
}

/// One line of JSON Lines: a call as get-call serves it, either its `data` or the whole envelope
/// `{"success": true, "data": {…}}`.
pub fn parse_line(tenant: &TenantId, line: &str) -> Result<CallRecord, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let call = match value.get("data") {
        Some(data) if value.get("success").is_some() => data,
        _ => &value,
    };
    let record = CallRecord::from_api_json(tenant, call).map_err(|e| format!("not a call: {e}"))?;
    crate::CallId::parse(&record.summary.id).map_err(|e| format!("id: {e}"))?;
    Ok(record)
}

/// Reads JSON Lines from `input` and writes every call for `tenant`, `concurrency` batch rounds at a time;
/// `progress` hears how many calls are written so far. Stops at the first bad line, after writing every
/// call before it, and names that line: fix it and run the import again.
pub async fn jsonl(
    store: &DynamoStore,
    tenant: &TenantId,
    input: impl BufRead,
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
        match parse_line(tenant, &line) {
            Ok(record) => pending.push(record),
            Err(why) => {
                bad = Some(ImportError::BadLine {
                    line: n as u64 + 1,
                    why,
                });
                break;
            }
        }
        if pending.len() == PARSE_AHEAD {
            report.calls += pending.len() as u64;
            store
                .put_calls(tenant, std::mem::take(&mut pending), concurrency)
                .await?;
            progress(report.calls);
        }
    }
    report.calls += pending.len() as u64;
    store.put_calls(tenant, pending, concurrency).await?;
    progress(report.calls);
    match bad {
        Some(err) => Err(err),
        None => Ok(report),
    }
}
