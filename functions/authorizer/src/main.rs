use callrecords::config::Config;
use callrecords::metrics::flushed;
use callrecords::store::DynamoStore;
use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    callrecords::telemetry::init();
    let config = Config::from_env()?;
    let sdk = callrecords::aws::sdk_config().await;
    let keys = DynamoStore::new(callrecords::aws::dynamodb(&sdk, None), &config.table_name);
    run(service_fn(|event| flushed(authorizer::handle(&keys, event)))).await
}
