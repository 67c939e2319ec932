use callrecords::App;
use lambda_http::Error;

fn main() -> Result<(), Error> {
    callrecords::runtime::block_on(async {
        callrecords::telemetry::init();
        let app = App::from_env().await?;
        if app.config.cursor_keys.is_none() {
            return Err("CURSOR_SECRET is not set: list-calls cannot sign cursors".into());
        }
        callrecords::http::run(|req| list_calls::handle(&app, req)).await
    })
}
