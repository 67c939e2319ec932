//! The scheduled recording-expiry job (lambda_runtime). Takes EventBridge's scheduled event, or a manual
//! invoke `{"dryRun": true, "limit": 100}` (both optional), runs one sweep, logs one summary line, records
//! its metrics (`callrecords::metrics::sweep`) and returns the report. See `callrecords::expiry` for what a
//! sweep guarantees.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use callrecords::expiry::{self, SweepOptions, SweepReport, DEADLINE_MARGIN};
use callrecords::metrics;
use callrecords::App;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

/// This function's name in its metrics (`Function`): its crate name.
pub const FUNCTION: &str = env!("CARGO_PKG_NAME");

/// What a manual invoke may ask for. A scheduled event has neither field (its `detail` is `{}`).
#[derive(Debug, Default)]
struct Request {
    dry_run: bool,
    limit: Option<u64>,
}

fn request(payload: &Value) -> Result<Request, Error> {
    let parse = |v: &Value| -> Result<Request, Error> {
        Ok(Request {
            dry_run: match v.get("dryRun") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err("dryRun must be true or false".into()),
            },
            limit: match v.get("limit") {
                None | Some(Value::Null) => None,
                Some(l) => Some(
                    l.as_u64()
                        .filter(|n| *n > 0)
                        .ok_or("limit must be a whole number above 0")?,
                ),
            },
        })
    };
    match payload.get("detail") {
        Some(detail @ Value::Object(_)) if payload.get("source").is_some() => parse(detail),
        _ => parse(payload),
    }
}

/// When this invocation must stop taking work: the Lambda deadline less a margin for the work in flight,
/// [`DEADLINE_MARGIN`] or a fifth of the time given, whichever is less (a short invocation still works).
///
/// AWS sends the deadline as milliseconds since the epoch; cargo-lambda's local runtime sends the time
/// budget itself (`600000`). A value before 2001 cannot be a deadline, so it is read as a budget.
fn stop_at(deadline_ms: u64) -> Instant {
    const EPOCH_2001_MS: u64 = 978_307_200_000;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let left = if deadline_ms < EPOCH_2001_MS {
        Duration::from_millis(deadline_ms)
    } else {
        Duration::from_millis(deadline_ms.saturating_sub(now_ms))
    };
    Instant::now() + left.saturating_sub(DEADLINE_MARGIN.min(left / 5))
}

pub async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<SweepReport, Error> {
    let req = request(&event.payload).inspect_err(|_| metrics::sweep(FUNCTION, None))?;
    let options = SweepOptions {
        dry_run: req.dry_run,
        limit: req.limit,
        ..SweepOptions::until(stop_at(event.context.deadline))
    };
    let budget_ms = options.stop_at.saturating_duration_since(Instant::now()).as_millis() as u64;
    let report = expiry::sweep(
        &app.store,
        &app.recordings,
        app.config.retention,
        app.clock.now(),
        &options,
    )
    .await;
    tracing::info!(
        budget_ms,
        deadline_ms = event.context.deadline,
        found = report.found,
        deleted = report.deleted,
        marked = report.marked,
        already_expired = report.already_expired,
        failed = report.failed,
        query_errors = report.query_errors,
        dry_run = report.dry_run,
        complete = report.complete,
        "recording-expiry summary"
    );
    metrics::sweep(FUNCTION, Some(&report));
    // A run that could read nothing made no progress: fail it. Lambda retries it twice (the schedule invokes
    // asynchronously) and then sends the event with this error to the function's on-failure destination
    // (RecordingExpiryFailureQueue, alarmed). Failures of single recordings are left to the next hourly run.
    if report.query_errors > 0 && report.found == 0 {
        return Err(format!(
            "recording-expiry could not read the index ({} pages failed)",
            report.query_errors
        )
        .into());
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_scheduled_event_is_a_full_run() {
        let ev = json!({"version": "0", "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
        let r = request(&ev).unwrap();
        assert!(!r.dry_run);
        assert_eq!(r.limit, None);
    }

    #[test]
    fn a_manual_invoke_may_ask_for_a_dry_run_and_a_limit() {
        let r = request(&json!({"dryRun": true, "limit": 5})).unwrap();
        assert!(r.dry_run);
        assert_eq!(r.limit, Some(5));
    }

    fn ms_from_now(ms: i64) -> u64 {
        (SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64 + ms) as u64
    }

    #[test]
    fn a_long_invocation_keeps_ten_seconds_and_a_short_one_a_fifth() {
        let long = stop_at(ms_from_now(300_000)).duration_since(Instant::now());
        assert!(
            long <= Duration::from_secs(290) && long > Duration::from_secs(289),
            "{long:?}"
        );
        let short = stop_at(ms_from_now(3_000)).duration_since(Instant::now());
        assert!(
            short <= Duration::from_millis(2_400) && short > Duration::from_millis(2_300),
            "{short:?}"
        );
        assert!(stop_at(ms_from_now(-1_000)) <= Instant::now());
    }

    #[test]
    fn a_budget_instead_of_a_deadline_is_read_as_a_budget() {
        let left = stop_at(600_000).duration_since(Instant::now());
        assert!(
            left <= Duration::from_secs(590) && left > Duration::from_secs(589),
            "{left:?}"
        );
    }

    #[test]
    fn bad_options_are_refused_not_ignored() {
        for bad in [
            json!({"dryRun": "yes"}),
            json!({"limit": 0}),
            json!({"limit": -3}),
            json!({"limit": "ten"}),
        ] {
            assert!(request(&bad).is_err(), "{bad}");
        }
    }
}
