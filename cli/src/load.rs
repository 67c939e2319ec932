//! Generated calls, written to the table in batch rounds or as JSON Lines, with a progress bar.

use std::io::Write;
use std::path::Path;

use callrecords::synth::Generator;
use callrecords::view::CallDetail;
use callrecords::{recording, App, TenantId};
use chrono::Duration;
use indicatif::{ProgressBar, ProgressStyle};

/// Calls generated ahead of the writes (bounds memory: about 10 KB each).
const GENERATE_AHEAD: u64 = 2_000;

/// A progress bar on standard error: a bar when the total is known, a counter otherwise.
pub fn progress(total: Option<u64>, what: &str) -> ProgressBar {
    let bar = match total {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template(&format!(
                "{{bar:40}} {{pos}}/{{len}} calls {what} ({{per_sec}}, {{eta}} left) {{msg}}"
            ))
            .expect("static template"),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template(&format!("{{spinner}} {{pos}} calls {what} ({{per_sec}}) {{msg}}"))
                .expect("static template"),
        ),
    };
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// Writes `count` generated calls for `tenant` to the table.
pub async fn generate(
    app: &App,
    tenant: &TenantId,
    count: u64,
    days: u32,
    seed: u64,
    concurrency: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut generator = Generator::new(seed);
    let now = app.clock.now();
    let span = Duration::days(i64::from(days));
    let bar = progress(Some(count), "written");
    let mut next = 1;
    while next <= count {
        let end = (next + GENERATE_AHEAD).min(count + 1);
        let calls = (next..end)
            .map(|i| generator.history_call(tenant, i, now, span))
            .collect();
        app.store.put_calls(tenant, calls, concurrency, app.clock.now()).await?;
        bar.set_position(end - 1);
        next = end;
    }
    bar.finish();
    Ok(())
}

/// Writes `count` generated calls as JSON Lines (get-call's format, without links) to `path`.
pub fn generate_jsonl(
    app: &App,
    tenant: &TenantId,
    count: u64,
    days: u32,
    seed: u64,
    path: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut generator = Generator::new(seed);
    let now = app.clock.now();
    let span = Duration::days(i64::from(days));
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let bar = progress(Some(count), "generated");
    for i in 1..=count {
        let call = generator.history_call(tenant, i, now, span);
        let state = recording::state(&call.summary, call.recording.as_ref(), app.config.retention, now);
        serde_json::to_writer(&mut out, &CallDetail::new(call, state, None)?)?;
        out.write_all(b"\n")?;
        if i % 1000 == 0 {
            bar.set_position(i);
        }
    }
    out.flush()?;
    bar.finish();
    Ok(())
}
