//! `callrecords`: the operator tool. Creates, lists and revokes API keys and webhook endpoints; sets up the table and bucket from
//! template.yaml (for the local stack); loads demo data; imports calls from JSON Lines and generates them.
//! Reads the same environment as the functions (`CALLS_TABLE`, `RECORDINGS_BUCKET`, `AWS_ENDPOINT_URL_*`, ...),
//! or takes the table and bucket from a deployed stack's outputs with `--stack` ([`stack`]). `setup` and
//! `demo` run against emulators on this machine only ([`local`]).

mod demo;
mod load;
mod local;
mod stack;
mod webhooks;

use std::process::ExitCode;
use std::sync::Arc;

use callrecords::apikey::{self, Scope};
use callrecords::clock::SystemClock;
use callrecords::config::Config;
use callrecords::{import, template, App, TenantId};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "callrecords", version, about = "Operator tool for the call-records API")]
struct Cli {
    /// Take the table and the bucket from this CloudFormation stack's outputs (`CallsTableName`,
    /// `RecordingsBucketName`) instead of CALLS_TABLE and RECORDINGS_BUCKET; those may still be set only
    /// to the same names. The stack is looked up in the AWS profile's region. Not for setup or demo.
    #[arg(long, global = true, value_name = "NAME", env = "CALLRECORDS_STACK")]
    stack: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the table and the recordings bucket exactly as template.yaml declares them. Local stack only:
    /// refused unless the DynamoDB and S3 endpoints are on this machine (127.0.0.0/8, ::1, localhost).
    Setup,
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage webhook endpoints (Retell, Vapi, ElevenLabs post a tenant's calls to them).
    #[command(subcommand)]
    Webhooks(webhooks::WebhooksCommand),
    /// Import calls for a tenant from JSON Lines, one call per line in the API's own format (what get-call
    /// serves, bare or in its envelope). Idempotent: importing the same file again changes nothing.
    Import {
        #[arg(long)]
        tenant: String,
        /// The file to read; `-` for standard input.
        file: std::path::PathBuf,
        /// Groups of 32 calls written at once (each group shares one read, its batches and one commit).
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Erase every call of a tenant whose customer number is this one (a data-protection request): records,
    /// content and recordings, as `DELETE /api/v1/calls?phoneNumber=` does, 100 calls a round until none is
    /// left. Safe to run again.
    Erase {
        #[arg(long)]
        tenant: String,
        /// The customer's number, E.164 (`+14155550123`; spaces and dashes are taken out).
        #[arg(long)]
        phone_number: String,
    },
    /// Generate realistic calls for a tenant: spread over months, every status and direction, several
    /// assistants, campaigns and numbers, conversations with word timings, recordings. Written to the
    /// table, or as JSON Lines with --jsonl. The same seed gives the same calls (ids gen_0000001, …).
    Generate {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        count: u64,
        /// How far back the calls go, in days before now.
        #[arg(long, default_value_t = 180)]
        days: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Write JSON Lines to this file instead of the table.
        #[arg(long)]
        jsonl: Option<std::path::PathBuf>,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Load demo data (two tenants, calls of every kind, recordings) and create a demo key. Local stack
    /// only, as for setup.
    Demo {
        /// Write the demo key to this file instead of printing it.
        #[arg(long)]
        key_file: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key for a tenant; the key is printed once and only its hash is stored.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        label: String,
        /// What the key may do, comma separated: calls:read (the GET routes), calls:write (PUT, PATCH,
        /// DELETE, erasure, recording upload). Fixed for the key's life.
        #[arg(long, default_value = "calls:read", value_parser = scopes)]
        scope: ScopeList,
    },
    /// List a tenant's keys, newest first.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Revoke a key by its id; it stops working within API_KEY_CACHE_SECONDS (default 60 s, docs/API.md).
    Revoke { key_id: String },
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[derive(Clone)]
struct ScopeList(Vec<Scope>);

fn scopes(value: &str) -> std::result::Result<ScopeList, String> {
    Scope::parse_list(value).map(ScopeList)
}

fn tenant(value: &str) -> Result<TenantId> {
    Ok(TenantId::parse(value)?)
}

impl Command {
    /// The commands that create and fill a stack of their own, which only a local stack may be.
    fn local_only(&self) -> Option<&'static str> {
        match self {
            Command::Setup => Some("setup"),
            Command::Demo { .. } => Some("demo"),
            _ => None,
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let local_only = cli.command.local_only();
    let stack = cli.stack.filter(|s| !s.is_empty());
    if let (Some(stack), Some(command)) = (&stack, local_only) {
        return Err(local::Refused::Stack {
            command,
            stack: stack.clone(),
        }
        .into());
    }
    let config = match stack {
        Some(stack) => {
            let (config, found) = stack::config(&stack).await?;
            eprintln!("stack {stack}: table {}, bucket {}", found.table, found.bucket);
            config
        }
        None => Config::from_env()?,
    };
    let app = App::connect(config, Arc::new(SystemClock), None).await;
    if let Some(command) = local_only {
        local::require_local(command, &app).await?;
    }
    match cli.command {
        Command::Setup => {
            template::create_table(app.store.client(), app.store.table()).await?;
            let days = app.config.retention.in_days();
            template::create_bucket(app.recordings.client(), app.recordings.bucket(), days).await?;
            println!(
                "table {} and bucket {} ready (retention {days} days)",
                app.store.table(),
                app.recordings.bucket()
            );
        }
        Command::Keys(KeysCommand::Create {
            tenant: t,
            label,
            scope,
        }) => {
            let new = apikey::generate(&tenant(&t)?, &label, &scope.0, app.clock.now())?;
            app.store.put_key(&new.record).await?;
            println!(
                "key id: {}\ntenant: {t}\nlabel:  {label}\nscopes: {}\nkey:    {}",
                new.record.key_id,
                Scope::join(&new.record.scopes),
                new.key
            );
            eprintln!("The key is shown only now; store it safely.");
        }
        Command::Keys(KeysCommand::List { tenant: t }) => {
            println!(
                "{:<14} {:<22} {:<22} {:<24} label",
                "key id", "created", "revoked", "scopes"
            );
            for k in app.store.list_keys(&tenant(&t)?).await? {
                let revoked = k.revoked_at.map(|r| r.to_rfc3339()).unwrap_or_else(|| "-".into());
                println!(
                    "{:<14} {:<22} {:<22} {:<24} {}",
                    k.key_id,
                    k.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
                    revoked,
                    Scope::join(&k.scopes).replace(' ', ","),
                    k.label
                );
            }
        }
        Command::Keys(KeysCommand::Revoke { key_id }) => {
            if !app.store.revoke_key(&key_id, app.clock.now()).await? {
                return Err(format!("no key with id {key_id}").into());
            }
            println!("revoked {key_id}");
        }
        Command::Webhooks(command) => webhooks::run(&app, command).await?,
        Command::Import {
            tenant: t,
            file,
            concurrency,
        } => {
            let tenant = tenant(&t)?;
            let started = std::time::Instant::now();
            let (input, size): (Box<dyn std::io::BufRead>, Option<u64>) = if file.as_os_str() == "-" {
                (Box::new(std::io::stdin().lock()), None)
            } else {
                let f = std::fs::File::open(&file).map_err(|e| format!("{}: {e}", file.display()))?;
                let size = f.metadata().ok().map(|m| m.len());
                (Box::new(std::io::BufReader::new(f)), size)
            };
            let bar = load::progress(None, "imported");
            if let Some(bytes) = size {
                bar.set_message(format!("from {} ({} MB)", file.display(), bytes / 1_000_000));
            }
            let report = import::jsonl(&app.store, &tenant, input, app.clock.now(), concurrency, |n| {
                bar.set_position(n)
            })
            .await;
            bar.finish();
            let report = report?;
            println!(
                "imported {} calls for {t} in {:.1} s ({} blank lines skipped)",
                report.calls,
                started.elapsed().as_secs_f64(),
                report.blank
            );
            for (id, field, why) in &report.refused {
                eprintln!("not imported: {id}: {field}: {why}");
            }
            if !report.refused.is_empty() {
                return Err(format!("{} calls refused by the lifecycle rule", report.refused.len()).into());
            }
        }
        Command::Erase {
            tenant: t,
            phone_number,
        } => {
            let tenant = tenant(&t)?;
            let number = callrecords::phone::e164(&phone_number)
                .ok_or_else(|| format!("{phone_number:?} is not an E.164 number"))?;
            let started = std::time::Instant::now();
            let bar = load::progress(None, "erased");
            let mut deleted = 0u64;
            let result = loop {
                match app.erase(&tenant, &number).await {
                    Ok(round) => {
                        deleted += round.deleted as u64;
                        bar.set_position(deleted);
                        if !round.has_more {
                            break Ok(());
                        }
                    }
                    Err(e) => break Err(e),
                }
            };
            bar.finish();
            result.map_err(|e| format!("erase stopped after {deleted} calls: {e} (run it again to go on)"))?;
            println!(
                "erased {deleted} calls of {t} for that number in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        Command::Generate {
            tenant: t,
            count,
            days,
            seed,
            jsonl,
            concurrency,
        } => {
            let tenant = tenant(&t)?;
            let started = std::time::Instant::now();
            match jsonl {
                Some(path) => load::generate_jsonl(&app, &tenant, count, days, seed, &path)?,
                None => load::generate(&app, &tenant, count, days, seed, concurrency).await?,
            }
            println!(
                "generated {count} calls for {t} in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        Command::Demo { key_file } => {
            let key = demo::load(&app).await?;
            match key_file {
                Some(path) => std::fs::write(path, &key)?,
                None => println!("{key}"),
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
