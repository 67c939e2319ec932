//! The performance suite behind `scripts/bench` (figures, not tests). Four parts:
//!
//! 1. **Functions**: each function's release bootstrap, run as Lambda runs it, against a local Runtime API
//!    ([`callrecords_bench::runtime_api`]) and the local emulators holding the demo data: size, process
//!    start → ready for the first event, first-request latency, cold start → answered, warm p50/p99 over
//!    `--warm` invocations, peak RSS. The Python/boto3 peer of get-call (`bench/peer`) runs the same way,
//!    on the same data, in the same run, and the ratios are printed. Beside get-call and list-calls, the
//!    floor: the bare DynamoDB Query of the same read after each warm invocation, and the handler's own
//!    logged time, which split the overhead into handler and Runtime API exchange.
//! 2. **Memory**: every subject under Lambda's CPU share at each `--memory-sizes` size ([`CpuShare`]), with
//!    cost per million requests and the size chosen for each function.
//! 3. **DynamoDB cost**: requests and items read per get-call and per list page, through the functions'
//!    entry points, in tables of `--calls` sizes (1,000 and 100,000 by default).
//! 4. **Handler CPU**: the criterion estimates of `bench/benches/codec.rs`, read from `target/criterion`
//!    (`scripts/bench` runs them first).
//!
//! Then a table of the targets, each with its measured figure.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use callrecords::model::{CallStatus, Direction};
use callrecords::store::metrics::RequestCounter;
use callrecords::synth::Generator;
use callrecords::TenantId;
use callrecords_bench::runtime_api::{Outcome, RuntimeApi};
use chrono::{DateTime, Utc};
use clap::Parser;
use lambda_http::Body;
use serde_json::Value;

#[derive(Parser)]
struct Args {
    /// Directory holding `<function>/bootstrap` (what `cargo lambda build --release` writes), or a path with
    /// `{}` where the function name goes (e.g. `target/debug/{}`).
    #[arg(long, default_value = "target/lambda")]
    bootstraps: PathBuf,
    /// The demo tenant's API key (written by `callrecords demo --key-file`), sent with every API event.
    #[arg(long)]
    key_file: PathBuf,
    /// The Python interpreter of the peer's virtualenv.
    #[arg(long, default_value = ".tools/peer-venv/bin/python")]
    peer_python: PathBuf,
    /// Where the functions' own output goes.
    #[arg(long, default_value = ".tools/bench-logs")]
    logs: PathBuf,
    /// Warm invocations per function, after the first.
    #[arg(long, default_value_t = 1000)]
    warm: usize,
    /// Cold starts per function (a new process each).
    #[arg(long, default_value_t = 10)]
    cold: usize,
    /// Table sizes for the DynamoDB cost part, each a fresh table.
    #[arg(long, value_delimiter = ',', default_value = "1000,100000")]
    calls: Vec<u64>,
    /// Criterion's output directory.
    #[arg(long, default_value = "target/criterion")]
    criterion: PathBuf,
    /// Memory sizes for the memory part (MB): each function under Lambda's CPU share at each.
    #[arg(long, value_delimiter = ',', default_value = "128,256,512,1024")]
    memory_sizes: Vec<u32>,
    /// Cold starts per function and size in the memory part.
    #[arg(long, default_value_t = 5)]
    memory_cold: usize,
    /// Warm invocations per function and size in the memory part.
    #[arg(long, default_value_t = 200)]
    memory_warm: usize,
    /// Measure only these subjects (names as the tables print them) in the functions and memory parts.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Skip parts: any of functions, memory, dynamodb, cpu.
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
    /// Profile comparison (`scripts/bench-profiles`): measure get-call alone and print one table row
    /// under this label, with criterion's handler medians from `--criterion`.
    #[arg(long)]
    variant: Option<String>,
}

impl Args {
    fn measures(&self, subject: &Subject) -> bool {
        self.only.is_empty() || self.only.iter().any(|name| name == subject.name)
    }
}

/// One runtime to measure: a command and the event it answers.
struct Subject {
    name: &'static str,
    program: PathBuf,
    args: Vec<String>,
    dir: Option<PathBuf>,
    size: Option<u64>,
    event: Value,
    /// Environment set for this subject alone.
    env: Vec<(&'static str, &'static str)>,
    /// The bare Query of the same read, timed after each of its warm invocations (the floor under it).
    bare: Option<Bare>,
    /// What a good answer looks like.
    check: fn(&Value) -> bool,
}

fn api_ok(v: &Value) -> bool {
    v["statusCode"] == 200
}

#[derive(Default)]
struct Row {
    ready_ms: Vec<f64>,
    first_ms: Vec<f64>,
    answered_ms: Vec<f64>,
    warm_ms: Vec<f64>,
    /// The warm invocations' time inside the handler, as the function logs it (`latencyMs`).
    handler_ms: Vec<f64>,
    /// The bare Query timed after each warm invocation, when the subject has one.
    bare_ms: Vec<f64>,
    rss_kib: u64,
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Starts the subject's process against a fresh Runtime API and waits until it asks for an event.
async fn launch(
    subject: &Subject,
    logs: &Path,
    round: usize,
    share: Option<&CpuShare>,
) -> Result<(RuntimeApi, tokio::process::Child, Instant, f64), String> {
    let api = RuntimeApi::start().await.map_err(|e| e.to_string())?;
    let log = std::fs::File::create(log_path(subject, logs, round)).map_err(|e| e.to_string())?;
    let mut command = tokio::process::Command::new(&subject.program);
    command
        .args(&subject.args)
        .env("AWS_LAMBDA_RUNTIME_API", api.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", subject.name)
        .env(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            share.map_or(128, |s| s.memory_mb).to_string(),
        )
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", subject.name))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .kill_on_drop(true);
    if let Some(dir) = &subject.dir {
        command.current_dir(dir);
    }
    if let Some(share) = share {
        share.confine(&mut command);
    }
    command.envs(subject.env.iter().copied());
    let start = Instant::now();
    let child = command
        .spawn()
        .map_err(|e| format!("{}: {e}", subject.program.display()))?;
    let ready = api.ready(Duration::from_secs(60)).await?;
    Ok((api, child, start, ready.duration_since(start).as_secs_f64() * 1000.0))
}

async fn invoke(api: &RuntimeApi, subject: &Subject, event: &Bytes) -> Result<f64, String> {
    let (outcome, took) = api.invoke(event.clone(), Duration::from_secs(30)).await?;
    match outcome {
        Outcome::Response(body) => {
            let v: Value = serde_json::from_slice(&body).map_err(|e| format!("{}: not JSON: {e}", subject.name))?;
            if !(subject.check)(&v) {
                let text = v.to_string();
                return Err(format!(
                    "{}: unexpected answer: {}",
                    subject.name,
                    &text[..text.len().min(400)]
                ));
            }
        }
        Outcome::Error(e) => return Err(format!("{}: error: {e}", subject.name)),
    }
    Ok(took.as_secs_f64() * 1000.0)
}

async fn measure(
    subject: &Subject,
    logs: &Path,
    cold: usize,
    warm: usize,
    bare: Option<&BareQueries>,
) -> Result<Row, String> {
    measure_in(subject, logs, cold, warm, None, bare).await
}

/// As [`measure`], every process under `share`'s CPU quota when given.
async fn measure_in(
    subject: &Subject,
    logs: &Path,
    cold: usize,
    warm: usize,
    share: Option<&CpuShare>,
    bare: Option<&BareQueries>,
) -> Result<Row, String> {
    let event = Bytes::from(subject.event.to_string());
    let mut row = Row::default();
    for round in 0..cold {
        let (api, mut child, start, ready) = launch(subject, logs, round, share).await?;
        let first = invoke(&api, subject, &event).await?;
        row.answered_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        row.ready_ms.push(ready);
        row.first_ms.push(first);
        if round + 1 < cold {
            let _ = child.kill().await;
            continue;
        }
        // The last process stays for the warm invocations, each followed by the bare Query of its read: the
        // two alternate, so both meet DynamoDB Local in the same state.
        for _ in 0..warm {
            row.warm_ms.push(invoke(&api, subject, &event).await?);
            if let (Some(queries), Some(which)) = (bare, subject.bare) {
                row.bare_ms.push(queries.time(which).await?);
            }
        }
        row.rss_kib = child.id().map(peak_rss_kib).unwrap_or(0);
        let _ = child.kill().await;
        row.handler_ms = logged_latencies(&log_path(subject, logs, round))
            .into_iter()
            .skip(1)
            .collect();
        // Each warm invocation's figures, in order, for a closer look than percentiles give.
        let raw = serde_json::json!({
            "warmMs": row.warm_ms,
            "handlerMs": row.handler_ms,
            "bareQueryMs": row.bare_ms,
        });
        let file = match share {
            Some(share) => format!("{}-{}MB.json", subject.name, share.memory_mb),
            None => format!("{}.json", subject.name),
        };
        std::fs::write(logs.join(file), raw.to_string()).map_err(|e| e.to_string())?;
    }
    Ok(row)
}

fn log_path(subject: &Subject, logs: &Path, round: usize) -> PathBuf {
    logs.join(format!("{}-{round}.log", subject.name))
}

/// The handler times a function logged, in order: the `latencyMs` of each request line (none for the peer).
fn logged_latencies(log: &Path) -> Vec<f64> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|v| v["message"] == "request")
        .filter_map(|v| v["latencyMs"].as_f64())
        .collect()
}

fn read_event(name: &str) -> Result<Value, String> {
    let text = std::fs::read_to_string(format!("events/{name}")).map_err(|e| format!("events/{name}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("events/{name}: {e}"))
}

fn subjects(args: &Args) -> Result<Vec<Subject>, String> {
    let key = std::fs::read_to_string(&args.key_file)
        .map_err(|e| e.to_string())?
        .trim()
        .to_owned();
    // Every API event carries the demo key, as a client sends it.
    let read_event = |name: &str| -> Result<Value, String> {
        let mut event = read_event(name)?;
        if event.get("headers").is_some() {
            event["headers"]["authorization"] = Value::String(format!("Bearer {key}"));
        }
        Ok(event)
    };
    let mut long = read_event("get-call.json")?;
    long["pathParameters"]["callId"] = "call_long_2h".into();
    long["rawPath"] = "/api/v1/calls/call_long_2h".into();
    long["requestContext"]["http"]["path"] = "/api/v1/calls/call_long_2h".into();

    let rust = |name: &'static str, function: &str, event: Value, check: fn(&Value) -> bool| {
        let program = match args.bootstraps.to_str() {
            Some(template) if template.contains("{}") => PathBuf::from(template.replace("{}", function)),
            _ => args.bootstraps.join(function).join("bootstrap"),
        };
        let size = std::fs::metadata(&program).map(|m| m.len()).ok();
        Subject {
            name,
            program,
            args: vec![],
            dir: None,
            size,
            event,
            env: vec![],
            bare: None,
            check,
        }
    };
    let peer_dir = PathBuf::from("bench/peer");
    Ok(vec![
        Subject {
            bare: Some(Bare::GetCall),
            ..rust("get-call", "get-call", read_event("get-call.json")?, api_ok)
        },
        rust("get-call (2,401 messages)", "get-call", long.clone(), api_ok),
        // The same binary on tokio's multi-thread runtime (src/runtime.rs): what the default saves.
        Subject {
            env: vec![("CALLRECORDS_RUNTIME", "multi-thread")],
            bare: Some(Bare::GetCall),
            ..rust(
                "get-call, multi-thread runtime",
                "get-call",
                read_event("get-call.json")?,
                api_ok,
            )
        },
        Subject {
            bare: Some(Bare::List),
            ..rust("list-calls", "list-calls", read_event("list-calls.json")?, api_ok)
        },
        rust(
            "get-recording",
            "get-recording",
            read_event("get-recording.json")?,
            api_ok,
        ),
        rust(
            "recording-expiry",
            "recording-expiry",
            read_event("recording-expiry.json")?,
            |v| v.get("found").is_some(),
        ),
        Subject {
            name: "Python peer: get-call",
            program: std::path::absolute(&args.peer_python).map_err(|e| e.to_string())?,
            args: ["-m", "awslambdaric", "handler.handler"].map(String::from).to_vec(),
            dir: Some(peer_dir.clone()),
            size: None,
            event: read_event("get-call.json")?,
            env: vec![],
            bare: None,
            check: api_ok,
        },
        Subject {
            name: "Python peer: get-call (2,401 messages)",
            program: std::path::absolute(&args.peer_python).map_err(|e| e.to_string())?,
            args: ["-m", "awslambdaric", "handler.handler"].map(String::from).to_vec(),
            dir: Some(peer_dir),
            size: None,
            event: long,
            env: vec![],
            bare: None,
            check: api_ok,
        },
    ])
}

struct Figures {
    rows: Vec<(String, Option<u64>, Row)>,
}

impl Figures {
    fn get(&self, name: &str) -> Option<&Row> {
        self.rows.iter().find(|(n, _, _)| n == name).map(|(_, _, r)| r)
    }
}

async fn functions(args: &Args) -> Result<Figures, String> {
    std::fs::create_dir_all(&args.logs).map_err(|e| e.to_string())?;
    let subjects = subjects(args)?;
    let bare = BareQueries::new().await?;
    // DynamoDB Local is a JVM: let it compile its hot paths before anything is timed.
    let warm_up = args.warm.min(300);
    for name in ["get-call", "list-calls"] {
        let subject = subjects.iter().find(|s| s.name == name).ok_or(name)?;
        measure(subject, &args.logs, 1, warm_up, Some(&bare)).await?;
    }

    println!(
        "## Functions, run as Lambda runs them (local Runtime API; demo data on DynamoDB Local and the S3 emulator)"
    );
    println!();
    println!(
        "{} cold starts per function (a new process each; medians), then {} warm invocations in the last process.",
        args.cold, args.warm
    );
    println!();
    println!("| function | bootstrap (stripped) | start → ready | first request | start → answered | warm p50 | warm p99 | peak RSS |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    for subject in subjects.iter().filter(|s| args.measures(s)) {
        let row = measure(subject, &args.logs, args.cold, args.warm, Some(&bare)).await?;
        println!(
            "| {} | {} | {:.1} ms | {:.2} ms | {:.1} ms | {:.2} ms | {:.2} ms | {:.1} MiB |",
            subject.name,
            subject
                .size
                .map_or("–".to_owned(), |s| format!("{:.1} MiB ({s} B)", s as f64 / 1048576.0)),
            percentile(&row.ready_ms, 0.5),
            percentile(&row.first_ms, 0.5),
            percentile(&row.answered_ms, 0.5),
            percentile(&row.warm_ms, 0.5),
            percentile(&row.warm_ms, 0.99),
            row.rss_kib as f64 / 1024.0,
        );
        rows.push((subject.name.to_owned(), subject.size, row));
    }
    let figures = Figures { rows };
    println!();
    floor_table(&figures, &python_floor(args, &bare).await?);
    println!();
    println!("Rust get-call against the Python/boto3 peer (same event, same data, same run):");
    println!();
    println!("| figure | Rust | Python | Python ÷ Rust |");
    println!("|---|---|---|---|");
    for (label, rust, python) in [
        ("get-call", "get-call", "Python peer: get-call"),
        (
            "get-call (2,401 messages)",
            "get-call (2,401 messages)",
            "Python peer: get-call (2,401 messages)",
        ),
    ] {
        let (Some(r), Some(p)) = (figures.get(rust), figures.get(python)) else {
            continue;
        };
        for (what, a, b) in [
            (
                "cold: start → answered",
                percentile(&r.answered_ms, 0.5),
                percentile(&p.answered_ms, 0.5),
            ),
            ("warm p50", percentile(&r.warm_ms, 0.5), percentile(&p.warm_ms, 0.5)),
            ("warm p99", percentile(&r.warm_ms, 0.99), percentile(&p.warm_ms, 0.99)),
            ("peak RSS (MiB)", r.rss_kib as f64 / 1024.0, p.rss_kib as f64 / 1024.0),
        ] {
            println!("| {label}: {what} | {a:.2} | {b:.2} | {:.1}× |", b / a);
        }
    }
    println!();
    Ok(figures)
}

/// A function's one DynamoDB read, as a bare Query: the floor under its latency.
#[derive(Clone, Copy)]
enum Bare {
    /// get-call's Query of call_123's item collection.
    GetCall,
    /// list-calls' Query of acme's newest calls (the index partition and read budget of an unfiltered page).
    List,
}

/// The bare Queries, sent from this process with the functions' own client (the same SDK configuration,
/// timeouts and retries, and builder) against the same data.
struct BareQueries {
    client: aws_sdk_dynamodb::Client,
    table: String,
    call_pk: String,
    plan: callrecords::list::Plan,
    budget: i32,
}

/// Bare Queries sent before any is timed: they open the client's connection, as a function's first request
/// (not among its warm ones) does.
const FLOOR_WARM_UP: usize = 10;

impl BareQueries {
    async fn new() -> Result<Self, String> {
        let table = std::env::var(callrecords::config::TABLE_VAR).map_err(|_| "CALLS_TABLE is not set")?;
        let tenant = TenantId::parse("acme").map_err(|e| e.to_string())?;
        let call = callrecords::CallId::parse("call_123").map_err(|e| e.to_string())?;
        let no_params: [(&str, &str); 0] = [];
        let plan = callrecords::list::ListQuery::parse(no_params)
            .map_err(|e| format!("{e:?}"))?
            .plan(&tenant);
        let queries = BareQueries {
            client: callrecords::aws::dynamodb(&callrecords::aws::sdk_config().await, None),
            table,
            call_pk: callrecords::store::layout::call_pk(&tenant, &call),
            budget: i32::try_from(plan.read_budget(callrecords::list::DEFAULT_LIMIT)).unwrap_or(i32::MAX),
            plan,
        };
        for _ in 0..FLOOR_WARM_UP {
            queries.time(Bare::GetCall).await?;
            queries.time(Bare::List).await?;
        }
        Ok(queries)
    }

    /// Sends one bare Query and returns how long it took (ms).
    async fn time(&self, which: Bare) -> Result<f64, String> {
        use aws_sdk_dynamodb::types::AttributeValue;
        use callrecords::store::layout;

        let started = Instant::now();
        let items = match which {
            Bare::GetCall => {
                self.client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("#p = :p")
                    .expression_attribute_names("#p", layout::PK)
                    .expression_attribute_values(":p", AttributeValue::S(self.call_pk.clone()))
                    .send()
                    .await
                    .map_err(|e| format!("bare Query: {e:?}"))?
                    .count
            }
            Bare::List => {
                self.client
                    .query()
                    .table_name(&self.table)
                    .index_name(self.plan.index.name())
                    .key_condition_expression("#p = :p")
                    .expression_attribute_names("#p", self.plan.index.pk_attr())
                    .expression_attribute_values(":p", AttributeValue::S(self.plan.partition.clone()))
                    .scan_index_forward(self.plan.ascending)
                    .limit(self.budget)
                    .send()
                    .await
                    .map_err(|e| format!("bare list Query: {e:?}"))?
                    .count
            }
        };
        let took = started.elapsed().as_secs_f64() * 1000.0;
        if items == 0 {
            return Err("bare Query: the demo data is not there".into());
        }
        Ok(took)
    }
}

/// The same two Queries from Python, with the peer's boto3 client (`bench/peer/floor.py`), after the
/// functions: (get-call's, list-calls').
async fn python_floor(args: &Args, bare: &BareQueries) -> Result<(Vec<f64>, Vec<f64>), String> {
    let plan = &bare.plan;
    let python = tokio::process::Command::new(std::path::absolute(&args.peer_python).map_err(|e| e.to_string())?)
        .args(["floor.py", "--requests", &args.warm.to_string()])
        .args(["--warm-up", &FLOOR_WARM_UP.to_string()])
        .args(["--pk-attr", callrecords::store::layout::PK, "--call-pk", &bare.call_pk])
        .args(["--index", plan.index.name(), "--index-pk-attr", plan.index.pk_attr()])
        .args(["--partition", &plan.partition, "--limit", &bare.budget.to_string()])
        .args(plan.ascending.then_some("--ascending"))
        .current_dir("bench/peer")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("bench/peer/floor.py: {e}"))?;
    if !python.status.success() {
        return Err(format!(
            "bench/peer/floor.py: {}",
            String::from_utf8_lossy(&python.stderr)
        ));
    }
    let timings: Value = serde_json::from_slice(&python.stdout).map_err(|e| format!("bench/peer/floor.py: {e}"))?;
    let read = |name: &str| -> Vec<f64> {
        timings[name]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default()
    };
    Ok((read("getCall"), read("list")))
}

/// Each function's warm latency against the bare Query of the same read, and where the difference goes:
/// inside the handler (its own `latencyMs`) or between the Runtime API and the handler.
fn floor_table(figures: &Figures, python: &(Vec<f64>, Vec<f64>)) {
    println!(
        "The floor: the bare DynamoDB Query of each read. The Rust client's alternates with the function's warm \
         invocations (one after each); boto3's runs after the functions. A function's overhead is its warm latency \
         (through the Runtime API) less the Query's; \"handler\" is the time the function itself logs from \
         request to response, the rest is the Runtime API exchange and the hand-over between processes."
    );
    println!();
    println!(
        "| read | bare Query p50 | bare Query p99 | handler p50 | handler p99 | function p50 | function p99 | \
         overhead p50 | overhead p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let ms = |v: f64| {
        if v.is_nan() {
            "–".to_owned()
        } else {
            format!("{v:.2} ms")
        }
    };
    for (label, name, python_bare) in [
        ("get-call (Rust client)", "get-call", None),
        (
            "get-call, multi-thread runtime (Rust client)",
            "get-call, multi-thread runtime",
            None,
        ),
        ("list-calls (Rust client)", "list-calls", None),
        (
            "get-call (Python peer, boto3)",
            "Python peer: get-call",
            Some(&python.0),
        ),
        ("list-calls' Query (boto3)", "", Some(&python.1)),
    ] {
        let row = figures.get(name);
        let Some(bare) = python_bare.or(row.map(|r| &r.bare_ms)) else {
            continue;
        };
        let (b50, b99) = (percentile(bare, 0.5), percentile(bare, 0.99));
        let (h50, h99, f50, f99) = row.map_or((f64::NAN, f64::NAN, f64::NAN, f64::NAN), |r| {
            (
                percentile(&r.handler_ms, 0.5),
                percentile(&r.handler_ms, 0.99),
                percentile(&r.warm_ms, 0.5),
                percentile(&r.warm_ms, 0.99),
            )
        });
        println!(
            "| {label} | {} | {} | {} | {} | {} | {} | {} | {} |",
            ms(b50),
            ms(b99),
            ms(h50),
            ms(h99),
            ms(f50),
            ms(f99),
            ms(f50 - b50),
            ms(f99 - b99)
        );
    }
}

/// Lambda's CPU at a memory size (one vCPU at 1,769 MB, in proportion below it) as a cgroup whose CPU quota
/// is that share of one core; each measured process joins it between fork and exec, so all it runs is
/// confined. cgroup v2's `cpu.max` where the cpu controller is there, else v1's `cpu.cfs_quota_us`.
struct CpuShare {
    memory_mb: u32,
    /// The quota, µs of CPU per [`CPU_PERIOD_US`].
    quota_us: u64,
    dir: PathBuf,
    procs: std::ffi::CString,
}

const CPU_PERIOD_US: u64 = 100_000;
/// The memory size at which Lambda gives a function one whole vCPU.
const ONE_VCPU_MB: u64 = 1_769;

impl CpuShare {
    fn create(memory_mb: u32) -> Result<CpuShare, String> {
        let quota_us = (CPU_PERIOD_US * u64::from(memory_mb) / ONE_VCPU_MB).max(1_000);
        let v2 = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.split_whitespace().any(|name| name == "cpu"));
        let (dir, settings) = if v2 {
            (
                PathBuf::from(format!("/sys/fs/cgroup/callrecords-bench-{memory_mb}")),
                vec![("cpu.max", format!("{quota_us} {CPU_PERIOD_US}"))],
            )
        } else {
            (
                PathBuf::from(format!("/sys/fs/cgroup/cpu/callrecords-bench-{memory_mb}")),
                vec![
                    ("cpu.cfs_period_us", CPU_PERIOD_US.to_string()),
                    ("cpu.cfs_quota_us", quota_us.to_string()),
                ],
            )
        };
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e} (the memory part needs root)", dir.display()))?;
        for (file, value) in settings {
            std::fs::write(dir.join(file), value).map_err(|e| format!("{}/{file}: {e}", dir.display()))?;
        }
        let procs = std::ffi::CString::new(dir.join("cgroup.procs").into_os_string().into_encoded_bytes())
            .map_err(|e| e.to_string())?;
        Ok(CpuShare {
            memory_mb,
            quota_us,
            dir,
            procs,
        })
    }

    fn confine(&self, command: &mut tokio::process::Command) {
        let procs = self.procs.clone();
        // SAFETY: between fork and exec the closure makes system calls only (getpid, open, write, close), on
        // memory allocated before the fork; it allocates nothing and takes no lock.
        unsafe {
            command.pre_exec(move || join_cgroup(&procs));
        }
    }
}

impl Drop for CpuShare {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Moves the calling process into the cgroup whose `cgroup.procs` is `procs`. Async-signal-safe.
fn join_cgroup(procs: &std::ffi::CStr) -> std::io::Result<()> {
    let mut digits = [0u8; 20];
    // SAFETY: getpid cannot fail.
    let mut pid = unsafe { libc::getpid() } as u64;
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (pid % 10) as u8;
        pid /= 10;
        if pid == 0 {
            break;
        }
    }
    // SAFETY: `procs` is a valid C string; the buffer outlives the write.
    unsafe {
        let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let written = libc::write(fd, digits[at..].as_ptr().cast(), digits.len() - at);
        let error = std::io::Error::last_os_error();
        libc::close(fd);
        if written < 0 {
            return Err(error);
        }
    }
    Ok(())
}

/// Lambda's arm64 prices (template.yaml deploys arm64), us-east-1: per GB-second of billed duration, and per
/// request.
const GB_SECOND_USD: f64 = 0.000_013_333_4;
const REQUEST_USD: f64 = 0.000_000_2;

/// What a million warm requests cost at `memory_mb`: each billed to the next whole millisecond.
fn cost_per_million(warm_ms: &[f64], memory_mb: u32) -> f64 {
    if warm_ms.is_empty() {
        return f64::NAN;
    }
    let billed_ms = warm_ms.iter().map(|ms| ms.ceil()).sum::<f64>() / warm_ms.len() as f64;
    1e6 * (billed_ms / 1000.0 * f64::from(memory_mb) / 1024.0 * GB_SECOND_USD + REQUEST_USD)
}

/// Every function at every memory size, under the CPU share Lambda gives it there; then the size chosen
/// for each, by the rule printed with the table.
async fn memory(args: &Args) -> Result<(), String> {
    let subjects = subjects(args)?;
    println!("## Memory size by measurement (each process under Lambda's CPU share at the size)");
    println!();
    println!(
        "Lambda gives a function CPU in proportion to its memory, one vCPU at {ONE_VCPU_MB} MB. Each process runs in a \
         cgroup whose CPU quota is that share of one core. {} cold starts (medians), then {} warm invocations, per \
         function and size. Cost per million requests: the warm invocations' duration, each rounded up to the \
         millisecond as Lambda bills it, × GB × ${GB_SECOND_USD} per GB-second (arm64), + ${:.2} for the requests.",
        args.memory_cold,
        args.memory_warm,
        REQUEST_USD * 1e6
    );
    println!();
    println!("| function | memory | CPU share | start → answered | warm p50 | warm p99 | cost per million |");
    println!("|---|---|---|---|---|---|---|");
    let mut choices = Vec::new();
    // The runtime variant is get-call's own binary: measured once, in the functions part.
    for subject in subjects.iter().filter(|s| s.env.is_empty() && args.measures(s)) {
        let mut measured = Vec::new();
        for &mb in &args.memory_sizes {
            let share = CpuShare::create(mb)?;
            let row = measure_in(
                subject,
                &args.logs,
                args.memory_cold,
                args.memory_warm,
                Some(&share),
                None,
            )
            .await?;
            let (p50, p99) = (percentile(&row.warm_ms, 0.5), percentile(&row.warm_ms, 0.99));
            let cost = cost_per_million(&row.warm_ms, mb);
            println!(
                "| {} | {mb} MB | {:.1} % | {:.1} ms | {:.2} ms | {:.2} ms | ${cost:.3} |",
                subject.name,
                100.0 * share.quota_us as f64 / CPU_PERIOD_US as f64,
                percentile(&row.answered_ms, 0.5),
                p50,
                p99,
            );
            measured.push((mb, p50, p99, cost));
        }
        choices.push((subject.name, choose(&measured)));
    }
    println!();
    println!(
        "Chosen: the cheapest size whose warm p50 and p99 are each within {:.0} % of the largest size's (past it, \
         more CPU buys little latency); for recording-expiry, which nobody waits on, the cheapest.",
        (CHOICE_SLACK - 1.0) * 100.0
    );
    println!();
    println!("| function | chosen |");
    println!("|---|---|");
    for (name, choice) in choices {
        let chosen = if name == "recording-expiry" {
            choice.cheapest
        } else {
            choice.within_slack
        };
        println!(
            "| {name} | {} |",
            chosen.map_or("–".to_owned(), |mb| format!("{mb} MB"))
        );
    }
    println!();
    Ok(())
}

/// How much slower than the largest size's latency a chosen size may be.
const CHOICE_SLACK: f64 = 1.25;

struct Choice {
    cheapest: Option<u32>,
    within_slack: Option<u32>,
}

/// From (memory MB, warm p50, warm p99, cost per million) at each size.
fn choose(measured: &[(u32, f64, f64, f64)]) -> Choice {
    let cheapest_of =
        |rows: Vec<&(u32, f64, f64, f64)>| rows.into_iter().min_by(|a, b| a.3.total_cmp(&b.3)).map(|row| row.0);
    let Some(largest) = measured.iter().max_by_key(|row| row.0) else {
        return Choice {
            cheapest: None,
            within_slack: None,
        };
    };
    Choice {
        cheapest: cheapest_of(measured.iter().collect()),
        within_slack: cheapest_of(
            measured
                .iter()
                .filter(|row| row.1 <= largest.1 * CHOICE_SLACK && row.2 <= largest.2 * CHOICE_SLACK)
                .collect(),
        ),
    }
}

/// A get-call or list-calls request through the function's entry point, with what it cost in DynamoDB.
struct Cost {
    requests: u64,
    items: u64,
    status: u16,
    body: Value,
}

async fn cost(counter: &RequestCounter, run: impl std::future::Future<Output = lambda_http::Response<Body>>) -> Cost {
    let before = counter.snapshot();
    let response = run.await;
    let used = counter.since(before);
    let status = response.status().as_u16();
    let body = match response.into_body() {
        Body::Text(t) => serde_json::from_str(&t).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    Cost {
        requests: used.requests,
        items: used.items_read,
        status,
        body,
    }
}

fn api_event(path: &str, query: &str, call_id: Option<&str>) -> lambda_http::Request {
    let mut event = read_event("get-call.json").expect("events/get-call.json");
    event["rawPath"] = path.into();
    event["requestContext"]["http"]["path"] = path.into();
    event["rawQueryString"] = query.into();
    event["headers"]["authorization"] = callrecords_bench::authorization().into();
    match call_id {
        Some(id) => event["pathParameters"]["callId"] = id.into(),
        None => {
            event["routeKey"] = "GET /api/v1/calls".into();
            event["requestContext"]["routeKey"] = "GET /api/v1/calls".into();
            event.as_object_mut().unwrap().remove("pathParameters");
            let params: serde_json::Map<String, Value> = url::form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect();
            event["queryStringParameters"] = Value::Object(params);
        }
    }
    lambda_http::request::from_str(&event.to_string()).expect("a valid event")
}

const LIST_FILTERS: [(&str, &str); 5] = [
    ("no filter", ""),
    ("status=completed", "status=completed"),
    ("status=failed&direction=inbound", "status=failed&direction=inbound"),
    (
        "assistantId&dateFrom&dateTo",
        "assistantId=asst_sales&dateFrom=2025-03-01&dateTo=2025-04-30",
    ),
    ("phoneNumber", "phoneNumber=%2B14150000001"),
];

struct CostFigures {
    get_call_max_requests: u64,
    list_max_items_over_limit: f64,
}

async fn dynamodb(args: &Args) -> Result<CostFigures, Box<dyn std::error::Error>> {
    let now: DateTime<Utc> = "2025-06-01T00:00:00Z".parse()?;
    let tenant = TenantId::parse("bench")?;
    let limit = 15;
    let mut figures = CostFigures {
        get_call_max_requests: 0,
        list_max_items_over_limit: 0.0,
    };
    println!("## DynamoDB requests and items read per API call (through the functions' entry points)");
    println!();
    println!("| calls in tenant | request | DynamoDB requests | items read | status |");
    println!("|---|---|---|---|---|");
    for (run, &n) in args.calls.iter().enumerate() {
        let (app, counter) = callrecords_bench::fresh_stack(&format!("bench-suite-{run}"), now).await?;
        let load = Instant::now();
        // The history as summaries (what lists read), plus whole calls of 11 and 2,001 messages to fetch.
        let mut generator = Generator::new(1);
        let mut next = 1;
        while next <= n {
            let end = (next + 5000).min(n + 1);
            let calls = (next..end)
                .map(|i| {
                    let mut c = generator.history_call(&tenant, i, now, chrono::Duration::days(180));
                    c.content = Default::default();
                    c
                })
                .collect();
            app.store.put_calls(&tenant, calls, 8, app.clock.now()).await?;
            next = end;
        }
        let start = now - chrono::Duration::hours(2);
        let whole = vec![
            generator.call(&tenant, "call_ten", CallStatus::Completed, Direction::Inbound, start, 5),
            generator.call(
                &tenant,
                "call_two_thousand",
                CallStatus::Completed,
                Direction::Outbound,
                start,
                1000,
            ),
        ];
        let sizes: Vec<usize> = whole.iter().map(|c| c.content.messages.len()).collect();
        app.store.put_calls(&tenant, whole, 2, app.clock.now()).await?;
        eprintln!("loaded {n} calls in {:.1} s", load.elapsed().as_secs_f64());

        for (label, id) in [
            (format!("get-call, {} messages", sizes[0]), "call_ten"),
            (format!("get-call, {} messages", sizes[1]), "call_two_thousand"),
            ("get-call, a history call (summary only)".to_owned(), "gen_0000001"),
            ("get-call, unknown id (404)".to_owned(), "call_missing"),
        ] {
            let path = format!("/api/v1/calls/{id}");
            let c = cost(&counter, async {
                get_call::handle(&app, api_event(&path, "", Some(id)))
                    .await
                    .expect("an answer")
            })
            .await;
            figures.get_call_max_requests = figures.get_call_max_requests.max(c.requests);
            println!("| {n} | {label} | {} | {} | {} |", c.requests, c.items, c.status);
        }
        for (name, filter) in LIST_FILTERS {
            let mut cursor: Option<String> = None;
            for page in 1..=3 {
                let mut query = format!("{filter}&limit={limit}");
                if let Some(c) = &cursor {
                    query.push_str("&cursor=");
                    query.push_str(c);
                }
                let query = query.trim_start_matches('&').to_owned();
                let c = cost(&counter, async {
                    list_calls::handle(&app, api_event("/api/v1/calls", &query, None))
                        .await
                        .expect("an answer")
                })
                .await;
                let served = c.body["data"].as_array().map_or(0, Vec::len);
                figures.list_max_items_over_limit =
                    figures.list_max_items_over_limit.max(c.items as f64 / limit as f64);
                println!(
                    "| {n} | list page {page} (limit {limit}, {served} served): {name} | {} | {} | {} |",
                    c.requests, c.items, c.status
                );
                match c.body["pagination"]["nextCursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => break,
                }
            }
        }
    }
    println!();
    Ok(figures)
}

/// Criterion's median estimate for one benchmark, in milliseconds.
fn criterion_median(dir: &Path, group: &str, id: &str) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join(group).join(id).join("new/estimates.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64().map(|ns| ns / 1e6)
}

fn cpu(args: &Args) -> Option<f64> {
    println!("## Handler CPU without I/O (criterion medians, `bench/benches/codec.rs`)");
    println!();
    println!("| benchmark | 10 messages | 2,000 messages |");
    println!("|---|---|---|");
    let mut handler_2000 = None;
    for (group, what) in [
        ("decode", "decode: stored items → call"),
        ("encode", "encode: call → response body (view, link, JSON)"),
        ("handler", "handler: decode + encode"),
    ] {
        let small = criterion_median(&args.criterion, group, "10_messages");
        let large = criterion_median(&args.criterion, group, "2000_messages");
        if group == "handler" {
            handler_2000 = large;
        }
        let show = |v: Option<f64>| v.map_or("not run".to_owned(), |ms| format!("{:.3} ms", ms));
        println!("| {what} | {} | {} |", show(small), show(large));
    }
    println!();
    handler_2000
}

// One thread: the suite sends one invocation or Query at a time, and its Runtime API's wake-ups stay on the
// thread that waits for them.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if let Some(label) = &args.variant {
        return Ok(variant_row(&args, label).await?);
    }
    let skip = |part: &str| args.skip.iter().any(|s| s == part);
    let functions = if skip("functions") {
        None
    } else {
        Some(functions(&args).await?)
    };
    if !skip("memory") {
        memory(&args).await?;
    }
    let costs = if skip("dynamodb") {
        None
    } else {
        Some(dynamodb(&args).await?)
    };
    let handler_2000 = if skip("cpu") { None } else { cpu(&args) };

    println!("## Targets");
    println!();
    println!("| target | measured | met |");
    println!("|---|---|---|");
    let line = |target: &str, measured: String, met: bool| {
        println!("| {target} | {measured} | {} |", if met { "yes" } else { "**no**" });
    };
    if let Some(c) = &costs {
        line(
            "get-call = 1 DynamoDB request",
            format!("at most {}", c.get_call_max_requests),
            c.get_call_max_requests == 1,
        );
        line(
            "a list page reads at most 2× its limit",
            format!("at most {:.2}× the limit", c.list_max_items_over_limit),
            c.list_max_items_over_limit <= 2.0,
        );
    }
    if let Some(ms) = handler_2000 {
        line(
            "handler CPU for a 2,000-message call < 5 ms",
            format!("{ms:.2} ms"),
            ms < 5.0,
        );
    }
    if let Some(f) = &functions {
        if let Some(r) = f.get("get-call") {
            let over50 = percentile(&r.warm_ms, 0.5) - percentile(&r.bare_ms, 0.5);
            let over99 = percentile(&r.warm_ms, 0.99) - percentile(&r.bare_ms, 0.99);
            line(
                "get-call's overhead above the bare Query ≤ 0.5 ms at p50 and p99",
                format!("{over50:.2} ms at p50, {over99:.2} ms at p99"),
                over50 <= 0.5 && over99 <= 0.5,
            );
        }
        for (rust, python) in [
            ("get-call", "Python peer: get-call"),
            ("get-call (2,401 messages)", "Python peer: get-call (2,401 messages)"),
        ] {
            if let (Some(r), Some(p)) = (f.get(rust), f.get(python)) {
                let (r50, r99) = (percentile(&r.warm_ms, 0.5), percentile(&r.warm_ms, 0.99));
                let (p50, p99) = (percentile(&p.warm_ms, 0.5), percentile(&p.warm_ms, 0.99));
                line(
                    &format!("{rust}: warm p50 and p99 below the peer's"),
                    format!("p50 {r50:.2} against {p50:.2} ms, p99 {r99:.2} against {p99:.2} ms"),
                    r50 < p50 && r99 < p99,
                );
            }
        }
        let rust: Vec<&(String, Option<u64>, Row)> = f.rows.iter().filter(|(_, size, _)| size.is_some()).collect();
        let ready = rust
            .iter()
            .map(|(_, _, r)| percentile(&r.ready_ms, 0.5))
            .fold(0.0, f64::max);
        line(
            "start → ready < 20 ms",
            format!("at most {ready:.1} ms (medians)"),
            ready < 20.0,
        );
        let rss = rust.iter().map(|(_, _, r)| r.rss_kib).max().unwrap_or(0) as f64 / 1024.0;
        line(
            "peak RSS < 40 MB",
            format!("at most {rss:.1} MiB"),
            rss * 1.048576 < 40.0,
        );
        if let (Some(r), Some(p)) = (f.get("get-call"), f.get("Python peer: get-call")) {
            let ratio = percentile(&p.answered_ms, 0.5) / percentile(&r.answered_ms, 0.5);
            line(
                "cold start ≥ 10× faster than the Python peer",
                format!("{ratio:.1}×"),
                ratio >= 10.0,
            );
        }
    }
    Ok(())
}

/// One row of the profile comparison: get-call's size, start-up, latency and memory, and the handler CPU.
async fn variant_row(args: &Args, label: &str) -> Result<(), String> {
    std::fs::create_dir_all(&args.logs).map_err(|e| e.to_string())?;
    let all = subjects(args)?;
    let subject = all.iter().find(|s| s.name == "get-call").ok_or("no get-call")?;
    let long = all
        .iter()
        .find(|s| s.name == "get-call (2,401 messages)")
        .ok_or("no long call")?;
    let row = measure(subject, &args.logs, args.cold, args.warm, None).await?;
    let long_row = measure(long, &args.logs, 1, args.warm.min(300), None).await?;
    let cpu = |id: &str| {
        criterion_median(&args.criterion, "handler", id).map_or("–".to_owned(), |ms| format!("{ms:.3} ms"))
    };
    println!(
        "| {label} | {} B | {:.1} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.1} MiB | {} | {} |",
        subject.size.unwrap_or(0),
        percentile(&row.ready_ms, 0.5),
        percentile(&row.first_ms, 0.5),
        percentile(&row.warm_ms, 0.5),
        percentile(&row.warm_ms, 0.99),
        percentile(&long_row.warm_ms, 0.5),
        row.rss_kib as f64 / 1024.0,
        cpu("10_messages"),
        cpu("2000_messages"),
    );
    Ok(())
}
