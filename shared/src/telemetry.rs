//! Logging: JSON lines on stdout, which Lambda sends to CloudWatch, fields at the top level of each line.
//! Level from `RUST_LOG` (default `info`). Each request leaves one line (see [`crate::http::RequestLog`]).

use tracing_subscriber::fmt::MakeWriter;

pub fn init() {
    let _ = tracing::subscriber::set_global_default(subscriber(std::io::stdout));
}

/// The subscriber the functions log through, writing to `writer` (tests capture the lines with it).
pub fn subscriber<W>(writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(false)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .with_writer(writer)
        .finish()
}
