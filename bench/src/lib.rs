//! Shared pieces of the benchmarks (figures, not tests).

pub mod runtime_api;
