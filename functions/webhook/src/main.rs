use callrecords::App;
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    callrecords::telemetry::init();
    let app = App::from_env().await?;
    callrecords::http::run(|req| webhook::handle(&app, req)).await
}
