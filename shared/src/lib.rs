//! # callrecords — the domain crate
//!
//! Everything the Lambda functions share. A newcomer can read the system from here, in the order a request
//! meets the modules:
//!
//! 1. [`config`]: the one place that reads the environment; [`aws`]: the SDK clients, built once per process;
//!    [`clock`]: time, injected so that retention is tested to the second.
//! 2. [`app`]: the operations behind each route, wired once per process (handlers in `functions/` are glue
//!    around them); [`telemetry`]: one structured log line per request, every line of an invocation with its
//!    request and trace ids; [`metrics`]: the CloudWatch metrics each invocation emits (names, dimensions).
//! 3. [`http`]: who is calling (the key checked by [`auth`]),
//!    envelopes and the mapping of [`error`]s to statuses; [`ids`]: call and tenant ids checked once.
//! 4. What the request asks: [`list`] reads and plans a list query, [`cursor`] signs and opens its
//!    position, [`total`] bounds what `includeTotal` counts; [`validate`] is the one boundary every call crosses on its way into the store.
//! 5. [`store`]: the persistence adapters, one file per job — [`store::layout`] (every key, attribute and
//!    index, and what each serves), [`store::codec`] (a call to items and back), [`store::calls`] (reads and
//!    the concurrency-safe write protocol), [`store::lists`], [`store::keys`], [`store::recordings`],
//!    [`store::batch`] and [`store::s3`] (every S3 call). No AWS SDK type leaves it.
//! 6. [`model`]: the call as the API speaks of it (seed 000's fields, camelCase), a bounded summary and
//!    unbounded content; [`recording`]: retention rules (pure), the moment a link may be served.
//! 7. [`view`]: the JSON a response carries; [`write`]: the write routes' operations (PUT, PATCH, DELETE,
//!    erasure, recording upload), each through [`validate`] and the store's write protocol.
//!
//! Beside the request path: [`expiry`], the hourly job (recordings past retention, replaced content left
//! behind); and, for the operator tool and tests only (feature `admin`), [`import`], [`synth`] and
//! [`template`]. With feature `audio`: [`audio`], an uploaded recording's format checked and duration read.
//!
//! Not here: anything HTTP-framework or Lambda-runtime specific beyond `lambda_http`'s request type.

pub mod apikey;
pub mod app;
#[cfg(feature = "audio")]
pub mod audio;
pub mod auth;
pub mod aws;
pub mod capture;
pub mod clock;
pub mod config;
pub mod cursor;
pub mod error;
pub mod expiry;
pub mod http;
pub mod ids;
#[cfg(feature = "admin")]
pub mod import;
pub mod list;
pub mod metrics;
pub mod model;
pub mod phone;
pub mod receive;
pub mod recording;
pub mod runtime;
pub mod store;
#[cfg(feature = "admin")]
pub mod synth;
pub mod telemetry;
#[cfg(feature = "admin")]
pub mod template;
pub mod total;
pub mod validate;
pub mod view;
pub mod webhook;
pub mod write;

pub use app::App;
pub use error::{ApiError, StoreError};
pub use ids::{CallId, TenantId};
