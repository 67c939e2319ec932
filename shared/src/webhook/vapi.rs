//! Placeholder: mapped in its own change.

use serde_json::Value;

use super::Delivery;
use crate::error::ApiError;

pub fn delivery(_body: &Value) -> Result<Option<Delivery>, ApiError> {
    Ok(None)
}
