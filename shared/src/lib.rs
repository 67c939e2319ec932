//! # callrecords — the domain crate
//!
//! Everything the Lambda functions share. A newcomer can read the system from here:
//!
//! - [`model`]: the call as the API speaks of it (seed 000's fields, camelCase), split into a bounded
//!   summary and unbounded content.
//! - [`store`]: one DynamoDB table; [`store::layout`] owns every key and index and says what each serves.
//! - [`recording`]: retention (the API enforces the moment; S3's lifecycle rule cleans up after) and presigned
//!   links that never outlive it; [`expiry`]: the scheduled job that deletes expired recordings.
//! - [`apikey`]: keys made, hashed and checked; used by the authorizer and by handlers in local mode.
//! - [`app`]: the operations behind each route, wired once per process; [`http`]: envelopes, errors, who
//!   is calling; [`config`]: the one place that reads the environment.
//!
//! Not here: anything HTTP-framework or Lambda-runtime specific beyond `lambda_http`'s request type;
//! handlers in `functions/` are the glue.

pub mod apikey;
pub mod app;
pub mod aws;
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
pub mod model;
pub mod phone;
pub mod recording;
pub mod store;
#[cfg(feature = "admin")]
pub mod synth;
pub mod telemetry;
#[cfg(feature = "admin")]
pub mod template;
pub mod validate;
pub mod view;

pub use app::App;
pub use error::{ApiError, StoreError};
pub use ids::{CallId, TenantId};
