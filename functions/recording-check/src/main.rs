use callrecords::metrics::flushed;
use callrecords::App;
use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    callrecords::telemetry::init();
    let app = App::from_env().await?;
    run(service_fn(|event| flushed(recording_check::handle(&app, event)))).await
}
