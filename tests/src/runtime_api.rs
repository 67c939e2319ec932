//! A local Lambda Runtime API (the `2018-06-01` interface lambda_runtime polls), so a test can run a
//! function's entry point as its binary's `main` does, under the real runtime: each invocation handed over
//! with its own request id and X-Ray trace header, the answers collected. Binds to 127.0.0.1 only; the
//! benchmarks have their own, timed one (`bench/src/runtime_api.rs`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// One invocation to hand to the function.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// `Lambda-Runtime-Aws-Request-Id`.
    pub request_id: String,
    /// `Lambda-Runtime-Trace-Id`, as Lambda sends it (`Root=…;Parent=…;Sampled=…`).
    pub trace_header: String,
    pub event: Value,
}

/// What the function answered to one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Response(Value),
    Error(String),
}

#[derive(Default)]
struct State {
    queue: Mutex<VecDeque<Invocation>>,
    answers: Mutex<Vec<(String, Answer)>>,
    answered: Notify,
}

pub struct RuntimeApi {
    addr: SocketAddr,
    state: Arc<State>,
    expected: usize,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    /// Serves `invocations` in order; once they are handed out, a request for the next one waits forever.
    pub async fn start(invocations: Vec<Invocation>) -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let expected = invocations.len();
        let state = Arc::new(State {
            queue: Mutex::new(invocations.into()),
            ..State::default()
        });
        let shared = state.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| route(state.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        RuntimeApi {
            addr,
            state,
            expected,
            server,
        }
    }

    /// Runs `runtime` (a function's `lambda_runtime::run`, pointed at this API by [`Self::lambda_env`])
    /// until every invocation is answered: the answers by request id, in the order they came.
    pub async fn run(&self, runtime: impl Future<Output = Result<(), lambda_runtime::Error>>) -> Vec<(String, Answer)> {
        let answered = async {
            loop {
                let notified = self.state.answered.notified();
                if self.state.answers.lock().unwrap().len() >= self.expected {
                    return self.state.answers.lock().unwrap().clone();
                }
                notified.await;
            }
        };
        tokio::select! {
            stopped = runtime => panic!("the runtime stopped: {stopped:?}"),
            answers = tokio::time::timeout(Duration::from_secs(60), answered) => {
                answers.expect("every invocation answered within 60 s")
            }
        }
    }

    /// The environment Lambda gives a function process, pointed at this API (the test's own process: each
    /// test runs in a process of its own).
    pub fn lambda_env(&self, function: &str) {
        std::env::set_var("AWS_LAMBDA_RUNTIME_API", self.addr.to_string());
        std::env::set_var("AWS_LAMBDA_FUNCTION_NAME", function);
        std::env::set_var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128");
        std::env::set_var("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST");
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

async fn route(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req
        .uri()
        .path()
        .strip_prefix("/2018-06-01/runtime/")
        .unwrap_or("")
        .to_owned();
    let method = req.method().clone();
    if method == Method::GET && path == "invocation/next" {
        let next = state.queue.lock().unwrap().pop_front();
        let Some(invocation) = next else {
            return std::future::pending().await;
        };
        return Ok(handed_over(invocation));
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(reply(StatusCode::BAD_REQUEST, Bytes::new())),
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    let answer = match path.strip_prefix("invocation/").and_then(|rest| rest.split_once('/')) {
        Some((id, "response")) if method == Method::POST => (
            id.to_owned(),
            Answer::Response(serde_json::from_str(&text).unwrap_or(Value::String(text))),
        ),
        Some((id, "error")) if method == Method::POST => (id.to_owned(), Answer::Error(text)),
        _ if path == "init/error" => ("init".to_owned(), Answer::Error(text)),
        _ => return Ok(reply(StatusCode::NOT_FOUND, Bytes::new())),
    };
    state.answers.lock().unwrap().push(answer);
    state.answered.notify_waiters();
    Ok(reply(StatusCode::ACCEPTED, Bytes::new()))
}

fn handed_over(invocation: Invocation) -> Response<Full<Bytes>> {
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + Duration::from_secs(60);
    let mut response = reply(StatusCode::OK, Bytes::from(invocation.event.to_string()));
    let headers = response.headers_mut();
    let header = |v: &str| v.parse().expect("an ASCII header value");
    headers.insert("content-type", header("application/json"));
    headers.insert("lambda-runtime-aws-request-id", header(&invocation.request_id));
    headers.insert("lambda-runtime-deadline-ms", header(&deadline.as_millis().to_string()));
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        header("arn:aws:lambda:us-east-1:123456789012:function:test"),
    );
    headers.insert("lambda-runtime-trace-id", header(&invocation.trace_header));
    response
}
