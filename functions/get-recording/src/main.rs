use callrecords::App;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    callrecords::telemetry::init();
    let app = App::from_env().await?;
    run(service_fn(|req| get_recording::handle(&app, req))).await
}
