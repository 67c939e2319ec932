//! Persistence: the DynamoDB layout, its adapter, and a request counter for tests and benchmarks.

pub mod dynamo;
pub mod layout;
pub mod metrics;

pub use dynamo::DynamoStore;
