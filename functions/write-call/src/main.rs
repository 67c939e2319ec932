use callrecords::App;
use lambda_http::Error;

fn main() -> Result<(), Error> {
    callrecords::runtime::block_on(async {
        callrecords::telemetry::init();
        let app = App::from_env().await?;
        callrecords::http::run(|req| write_call::handle(&app, req)).await
    })
}
