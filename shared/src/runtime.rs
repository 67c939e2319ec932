//! The tokio runtime every function's `main` runs on. A Lambda instance handles one invocation at a time, so
//! by default the runtime is current-thread: the handler, the SDK's connection and the Runtime API client
//! share one thread, and no wake-up crosses threads. `CALLRECORDS_RUNTIME=multi-thread` (read in
//! [`crate::config::RuntimeFlavour`]) gives tokio's multi-thread runtime instead (worker threads as tokio
//! decides: one per CPU, or `TOKIO_WORKER_THREADS`). The benchmark suite runs get-call both ways in one run
//! (docs/DESIGN.md, "Performance").

use std::future::Future;

use crate::config::RuntimeFlavour;

/// Runs `main` to completion on the configured runtime.
pub fn block_on<F: Future>(main: F) -> F::Output {
    let mut builder = match RuntimeFlavour::from_env() {
        RuntimeFlavour::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        RuntimeFlavour::MultiThread => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = builder
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("no tokio runtime could be built: {e}"));
    runtime.block_on(main)
}
