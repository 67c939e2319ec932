use callrecords::metrics::flushed;
use callrecords::App;
use lambda_runtime::{run, service_fn, Error};

fn main() -> Result<(), Error> {
    callrecords::runtime::block_on(async {
        callrecords::telemetry::init();
        let app = App::from_env().await?;
        run(service_fn(|event| flushed(recording_check::handle(&app, event)))).await
    })
}
