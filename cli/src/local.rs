//! `setup` and `demo` create a table and a bucket and fill them with demo data: they run against emulators on
//! this machine and never against an AWS account. Before either sends anything, the DynamoDB and S3 clients
//! it is about to use are asked where their requests would go, which is the SDK's own reading of
//! `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL` and a profile's `endpoint_url`. Any
//! endpoint but a loopback address is refused, and so is no endpoint at all, which means AWS itself. A
//! deployed stack (`--stack`) is refused too, whatever the endpoints say.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_types::config_bag::ConfigBag;
use aws_types::endpoint_config::EndpointUrl;
use callrecords::App;
use url::Host;

#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("{command} only runs against a local stack; --stack (or CALLRECORDS_STACK) names a deployed one: {stack}")]
    Stack { command: &'static str, stack: String },
    #[error(
        "{command} only runs against a local stack, and {service}'s endpoint is {endpoint}, not this machine \
         (set {var} to an emulator on 127.0.0.1, ::1 or localhost)"
    )]
    NotLoopback {
        command: &'static str,
        service: &'static str,
        endpoint: String,
        var: &'static str,
    },
    #[error("{command}: could not tell where {service} requests would go ({why}); refused")]
    Unknown {
        command: &'static str,
        service: &'static str,
        why: String,
    },
}

/// Whether `endpoint` is an http(s) URL whose host is this machine: 127.0.0.0/8, ::1 (also written as
/// ::ffff:127.x.y.z) or `localhost`. A name is taken only as `localhost` itself: another name could resolve
/// anywhere.
pub fn is_loopback(endpoint: &str) -> bool {
    let Ok(url) = url::Url::parse(endpoint) else {
        return false;
    };
    if !matches!(url.scheme(), "http" | "https") {
        return false;
    }
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => {
            ip == Ipv6Addr::LOCALHOST || ip.to_ipv4_mapped().is_some_and(|v4: Ipv4Addr| v4.is_loopback())
        }
        Some(Host::Domain(name)) => name == "localhost" || name == "localhost.",
        None => false,
    }
}

/// Refuses `command` unless both of `app`'s clients send to loopback addresses (see the module docs).
pub async fn require_local(command: &'static str, app: &App) -> Result<(), Refused> {
    let dynamodb = probe_endpoint(|probe| async move {
        let _ = app
            .store
            .client()
            .list_tables()
            .customize()
            .interceptor(probe)
            .send()
            .await;
    })
    .await;
    check(command, "DynamoDB", "AWS_ENDPOINT_URL_DYNAMODB", dynamodb)?;
    let s3 = probe_endpoint(|probe| async move {
        let _ = app
            .recordings
            .client()
            .list_buckets()
            .customize()
            .interceptor(probe)
            .send()
            .await;
    })
    .await;
    check(command, "S3", "AWS_ENDPOINT_URL_S3", s3)
}

fn check(
    command: &'static str,
    service: &'static str,
    var: &'static str,
    endpoint: Result<Option<String>, String>,
) -> Result<(), Refused> {
    match endpoint {
        Err(why) => Err(Refused::Unknown { command, service, why }),
        Ok(Some(url)) if is_loopback(&url) => Ok(()),
        Ok(endpoint) => Err(Refused::NotLoopback {
            command,
            service,
            endpoint: endpoint.unwrap_or_else(|| "AWS's own (no endpoint URL is configured)".into()),
            var,
        }),
    }
}

/// Sends one request through `send` with an interceptor that notes the client's configured endpoint URL
/// and stops the request before it is even serialized: nothing leaves the process. `Ok(None)`: no endpoint
/// URL is configured, so the request would go to the service in AWS.
async fn probe_endpoint<F, Fut>(send: F) -> Result<Option<String>, String>
where
    F: FnOnce(EndpointProbe) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let probe = EndpointProbe::default();
    send(probe.clone()).await;
    let seen = probe.0.lock().map_err(|_| "probe poisoned".to_string())?.clone();
    seen.ok_or_else(|| "the request stopped before its endpoint was known".into())
}

#[derive(Debug, Default, Clone)]
struct EndpointProbe(Arc<Mutex<Option<Option<String>>>>);

impl Intercept for EndpointProbe {
    fn name(&self) -> &'static str {
        "EndpointProbe"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Ok(mut seen) = self.0.lock() {
            *seen = Some(cfg.load::<EndpointUrl>().map(|u| u.0.clone()));
        }
        Err("stopped by the endpoint probe before anything was sent".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::{BehaviorVersion, Region, SdkConfig};

    #[test]
    fn loopback_addresses_and_localhost_are_local() {
        for url in [
            "http://127.0.0.1:8000",
            "http://127.0.0.1",
            "https://127.10.20.30:443/path",
            "http://[::1]:9000",
            "http://[::ffff:127.0.0.1]:9000",
            "http://localhost:4566",
            "http://LOCALHOST:4566",
            "http://localhost.:4566",
            "http://127.1:8000",
        ] {
            assert!(is_loopback(url), "{url}");
        }
    }

    #[test]
    fn any_other_host_or_no_url_is_not_local() {
        for url in [
            "https://dynamodb.us-east-1.amazonaws.com",
            "https://s3.eu-north-1.amazonaws.com",
            "http://10.0.0.5:8000",
            "http://192.168.1.10:8000",
            "http://0.0.0.0:8000",
            "http://128.0.0.1:8000",
            "http://[::2]:8000",
            "http://[::]:8000",
            "http://localhost.example.com:8000",
            "http://127.0.0.1.nip.io:8000",
            "http://dev.localhost:8000",
            "http://127.0.0.1@dynamodb.us-east-1.amazonaws.com",
            "ftp://127.0.0.1/",
            "127.0.0.1:8000",
            "",
        ] {
            assert!(!is_loopback(url), "{url}");
        }
    }

    fn sdk(endpoint: Option<&str>) -> SdkConfig {
        let mut builder = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"));
        if let Some(url) = endpoint {
            builder = builder.endpoint_url(url);
        }
        builder.build()
    }

    async fn dynamodb_endpoint(sdk: &SdkConfig) -> Result<Option<String>, String> {
        let client = aws_sdk_dynamodb::Client::new(sdk);
        probe_endpoint(|probe| async move {
            let _ = client.list_tables().customize().interceptor(probe).send().await;
        })
        .await
    }

    #[tokio::test]
    async fn the_probe_reads_the_clients_own_endpoint_and_sends_nothing() {
        // Nothing listens on port 9 of this machine: a request that got out would fail differently, and
        // no credentials are configured, so one that got as far as signing would fail first.
        let seen = dynamodb_endpoint(&sdk(Some("http://127.0.0.1:9"))).await;
        assert_eq!(seen, Ok(Some("http://127.0.0.1:9".into())));
        assert_eq!(dynamodb_endpoint(&sdk(None)).await, Ok(None));

        let client = aws_sdk_s3::Client::new(&sdk(Some("https://s3.eu-north-1.amazonaws.com")));
        let s3 = probe_endpoint(|probe| async move {
            let _ = client.list_buckets().customize().interceptor(probe).send().await;
        })
        .await;
        assert_eq!(s3, Ok(Some("https://s3.eu-north-1.amazonaws.com".into())));
    }

    #[test]
    fn no_endpoint_or_a_remote_one_is_refused_and_named() {
        let refused = check("setup", "DynamoDB", "AWS_ENDPOINT_URL_DYNAMODB", Ok(None)).unwrap_err();
        let text = refused.to_string();
        assert!(text.contains("setup") && text.contains("AWS's own") && text.contains("AWS_ENDPOINT_URL_DYNAMODB"));
        let remote = Ok(Some("https://s3.eu-north-1.amazonaws.com".into()));
        let text = check("demo", "S3", "AWS_ENDPOINT_URL_S3", remote)
            .unwrap_err()
            .to_string();
        assert!(text.contains("https://s3.eu-north-1.amazonaws.com"), "{text}");
        assert!(matches!(
            check("demo", "S3", "AWS_ENDPOINT_URL_S3", Err("no region".into())),
            Err(Refused::Unknown { .. })
        ));
        assert!(check(
            "demo",
            "S3",
            "AWS_ENDPOINT_URL_S3",
            Ok(Some("http://127.0.0.1:4566".into()))
        )
        .is_ok());
    }
}
