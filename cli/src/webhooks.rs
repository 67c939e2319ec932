//! `callrecords webhooks`: the endpoints Retell, Vapi and ElevenLabs post a tenant's calls to. A secret is
//! read from standard input (one line) or generated; it is printed only when it was generated, and only
//! once. Nothing here ever prints a stored secret.

use std::io::BufRead;

use callrecords::webhook::endpoint::{self, WebhookEndpoint};
use callrecords::webhook::Provider;
use callrecords::App;
use chrono::Duration;
use clap::Subcommand;

use crate::{tenant, Result};

#[derive(Subcommand)]
pub enum WebhooksCommand {
    /// Create an endpoint for a tenant and one provider; prints its URL. Retell signs with your Retell API
    /// key and ElevenLabs with the secret its dashboard shows for the webhook: give it with --secret-stdin.
    /// For Vapi a secret is generated (or given the same way) and printed once, to paste into Vapi.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long, value_parser = provider)]
        provider: Provider,
        /// Read the signing secret from the first line of standard input.
        #[arg(long)]
        secret_stdin: bool,
        /// The API's base URL (the stack's `ApiUrl` output), to print the whole URL.
        #[arg(long, env = "CALLRECORDS_API_URL")]
        api_url: Option<String>,
    },
    /// List a tenant's endpoints, newest first (never their secrets).
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Give an endpoint a new secret. The secrets it accepts now stay accepted for the overlap, so that
    /// deliveries signed before the provider's dashboard is changed still pass.
    Rotate {
        endpoint_id: String,
        #[arg(long)]
        secret_stdin: bool,
        /// Hours the old secret stays accepted.
        #[arg(long, default_value_t = 24)]
        overlap_hours: i64,
    },
    /// Delete an endpoint: its deliveries are refused from now on. The calls it wrote stay.
    Delete { endpoint_id: String },
}

fn provider(value: &str) -> std::result::Result<Provider, String> {
    Provider::parse(value).ok_or_else(|| "one of retell, vapi, elevenlabs".to_owned())
}

/// The secret: from stdin when asked, else generated where the provider lets us choose. `true` when it
/// was generated (and must be shown once).
fn secret(provider: Provider, from_stdin: bool) -> Result<(String, bool)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let secret = line.trim_end_matches(['\r', '\n']).to_owned();
        endpoint::check_secret(&secret)?;
        return Ok((secret, false));
    }
    match provider {
        Provider::Vapi => Ok((endpoint::generate_secret()?, true)),
        Provider::Retell => Err("Retell signs webhooks with your Retell API key: give it with --secret-stdin".into()),
        Provider::ElevenLabs => {
            Err("ElevenLabs shows the webhook's secret when you create it: give it with --secret-stdin".into())
        }
    }
}

fn describe(e: &WebhookEndpoint, api_url: Option<&str>) -> String {
    match api_url {
        Some(base) => format!("{}{}", base.trim_end_matches('/'), e.path()),
        None => e.path(),
    }
}

pub async fn run(app: &App, command: WebhooksCommand) -> Result<()> {
    let now = app.clock.now();
    match command {
        WebhooksCommand::Create {
            tenant: t,
            provider,
            secret_stdin,
            api_url,
        } => {
            let (secret, generated) = secret(provider, secret_stdin)?;
            let shown = generated.then(|| secret.clone());
            let e = WebhookEndpoint::new(&tenant(&t)?, provider, secret, now)?;
            app.store.put_endpoint(&e).await?;
            println!("endpoint: {}\ntenant:   {t}\nprovider: {provider}", e.endpoint_id);
            println!("url:      {}", describe(&e, api_url.as_deref()));
            if let Some(secret) = shown {
                println!("secret:   {secret}");
                eprintln!("The secret is shown only now: paste it into Vapi as the server URL's secret.");
            }
            if api_url.is_none() {
                eprintln!("Put the API's base URL (the stack's ApiUrl output) before the path.");
            }
        }
        WebhooksCommand::List { tenant: t } => {
            println!(
                "{:<28} {:<11} {:<22} {:<8} path",
                "endpoint", "provider", "created", "secrets"
            );
            for e in app.store.list_endpoints(&tenant(&t)?).await? {
                println!(
                    "{:<28} {:<11} {:<22} {:<8} {}",
                    e.endpoint_id,
                    e.provider.as_str(),
                    e.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
                    e.accepted(now).len(),
                    e.path()
                );
            }
        }
        WebhooksCommand::Rotate {
            endpoint_id,
            secret_stdin,
            overlap_hours,
        } => {
            if overlap_hours < 0 {
                return Err("--overlap-hours cannot be negative".into());
            }
            let mut e = app
                .store
                .get_endpoint(&endpoint_id)
                .await?
                .ok_or_else(|| format!("no endpoint {endpoint_id}"))?;
            let (secret, generated) = secret(e.provider, secret_stdin)?;
            let shown = generated.then(|| secret.clone());
            let overlap = Duration::hours(overlap_hours);
            e.rotate(secret, now, overlap);
            if !app.store.save_endpoint(&e).await? {
                return Err(format!("endpoint {endpoint_id} was deleted meanwhile").into());
            }
            println!(
                "rotated {endpoint_id}: the old secret is accepted until {}",
                (now + overlap).format("%Y-%m-%dT%H:%M:%SZ")
            );
            if let Some(secret) = shown {
                println!("secret:   {secret}");
                eprintln!("The secret is shown only now.");
            }
        }
        WebhooksCommand::Delete { endpoint_id } => {
            if !app.store.delete_endpoint(&endpoint_id).await? {
                return Err(format!("no endpoint {endpoint_id}").into());
            }
            println!("deleted {endpoint_id}");
        }
    }
    Ok(())
}
