//! Shared pieces of the benchmarks (figures, not tests).

pub mod runtime_api;

use std::sync::Arc;

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
        local_auth: false,
        s3_force_path_style: true,
        cursor_keys: Some(CursorKeys::new(&generate_secret(), None)?),
        capture: Default::default(),
        total_budget: Default::default(),
    };
    let app = App::connect(config, Arc::new(FixedClock(now)), Some(counter.clone())).await;
    template::create_table(app.store.client(), app.store.table()).await?;
    template::create_bucket(app.recordings.client(), app.recordings.bucket(), 30).await?;
    Ok((app, counter))
}
