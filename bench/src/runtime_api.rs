//! A local AWS Lambda Runtime API (the `2018-06-01` interface a function's runtime polls), so the benchmark
//! can run a function's real bootstrap, or any other runtime, exactly as Lambda does: the process starts,
//! asks `GET …/invocation/next` for an event, and posts the result to `…/invocation/{id}/response`.
//!
//! The first `next` marks the process ready for an event (what Lambda's init phase ends with); the time
//! from handing over an event to receiving its response is one invocation. Binds to 127.0.0.1 only.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, Notify};

const PREFIX: &str = "/2018-06-01/runtime/";

/// What the function answered.
#[derive(Debug)]
pub enum Outcome {
    Response(Bytes),
    /// An invocation error (`…/error`) or an init error (`init/error`).
    Error(String),
}

struct Invocation {
    id: String,
    event: Bytes,
    reply: oneshot::Sender<Outcome>,
}

struct Shared {
    queue: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    first_next: Mutex<Option<Instant>>,
    ready: Notify,
    init_error: Mutex<Option<String>>,
}

/// One Runtime API endpoint, serving one function process at a time.
pub struct RuntimeApi {
    addr: SocketAddr,
    tx: mpsc::Sender<Invocation>,
    shared: Arc<Shared>,
    seq: AtomicU64,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(rx),
            pending: Mutex::new(HashMap::new()),
            first_next: Mutex::new(None),
            ready: Notify::new(),
            init_error: Mutex::new(None),
        });
        let state = shared.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                // Small request/response exchanges: without this, Nagle's algorithm and delayed ACKs add
                // tens of milliseconds to clients that write a request in two parts.
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| route(state.clone(), req));
                    // A connection ends when the function process exits; nothing to report.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            tx,
            shared,
            seq: AtomicU64::new(0),
            server,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Waits until the process first asks for an event, and returns that moment.
    pub async fn ready(&self, timeout: Duration) -> Result<Instant, String> {
        let wait = async {
            loop {
                let notified = self.shared.ready.notified();
                if let Some(at) = *self.shared.first_next.lock().unwrap() {
                    return Ok(at);
                }
                if let Some(e) = self.shared.init_error.lock().unwrap().clone() {
                    return Err(format!("init error: {e}"));
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| format!("no request for an event within {timeout:?}"))?
    }

    /// Hands `event` to the function and waits for its answer; returns it with the time it took.
    pub async fn invoke(&self, event: Bytes, timeout: Duration) -> Result<(Outcome, Duration), String> {
        let id = format!("bench-{:08}", self.seq.fetch_add(1, Ordering::Relaxed));
        let (reply, answer) = oneshot::channel();
        let start = Instant::now();
        self.tx
            .send(Invocation { id, event, reply })
            .await
            .map_err(|_| "runtime API stopped".to_owned())?;
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(outcome)) => Ok((outcome, start.elapsed())),
            Ok(Err(_)) => Err("invocation dropped".to_owned()),
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
}

async fn route(state: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().strip_prefix(PREFIX).unwrap_or("").to_owned();
    let method = req.method().clone();
    if method == Method::GET && path == "invocation/next" {
        return Ok(next(&state).await);
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(reply(StatusCode::BAD_REQUEST, Bytes::new())),
    };
    if method == Method::POST && path == "init/error" {
        *state.init_error.lock().unwrap() = Some(String::from_utf8_lossy(&body).into_owned());
        state.ready.notify_waiters();
        return Ok(reply(StatusCode::ACCEPTED, Bytes::new()));
    }
    let finished = path
        .strip_prefix("invocation/")
        .and_then(|rest| rest.split_once('/'))
        .filter(|(_, what)| method == Method::POST && (*what == "response" || *what == "error"));
    let Some((id, what)) = finished else {
        return Ok(reply(StatusCode::NOT_FOUND, Bytes::new()));
    };
    let Some(sender) = state.pending.lock().unwrap().remove(id) else {
        return Ok(reply(StatusCode::BAD_REQUEST, Bytes::new()));
    };
    let outcome = if what == "response" {
        Outcome::Response(body)
    } else {
        Outcome::Error(String::from_utf8_lossy(&body).into_owned())
    };
    let _ = sender.send(outcome);
    Ok(reply(StatusCode::ACCEPTED, Bytes::new()))
}

async fn next(state: &Shared) -> Response<Full<Bytes>> {
    {
        let mut first = state.first_next.lock().unwrap();
        if first.is_none() {
            *first = Some(Instant::now());
            state.ready.notify_waiters();
        }
    }
    let Some(invocation) = state.queue.lock().await.recv().await else {
        return reply(StatusCode::GONE, Bytes::new());
    };
    state
        .pending
        .lock()
        .unwrap()
        .insert(invocation.id.clone(), invocation.reply);
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        + Duration::from_secs(10);
    let mut response = reply(StatusCode::OK, invocation.event);
    let headers = response.headers_mut();
    let header = |v: String| v.parse().expect("ASCII header value");
    headers.insert("content-type", header("application/json".to_owned()));
    headers.insert("lambda-runtime-aws-request-id", header(invocation.id));
    headers.insert("lambda-runtime-deadline-ms", header(deadline.as_millis().to_string()));
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        header("arn:aws:lambda:us-east-1:123456789012:function:bench".to_owned()),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        header("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0".to_owned()),
    );
    response
}
