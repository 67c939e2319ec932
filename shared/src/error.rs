//! Errors as the API reports them. Every failure a handler can meet becomes one [`ApiError`]; `http` maps it
//! to a status and seed 000's error envelope. Internal details are logged, never served.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Missing, or belongs to another tenant: the two are indistinguishable on purpose.
    #[error("Call not found")]
    NotFound,
    /// The call exists but has no recording that could ever be served (none, pending or failed).
    #[error("Recording not found")]
    RecordingNotFound,
    /// The recording's retention has ended.
    #[error("Recording expired")]
    RecordingExpired,
    #[error("Invalid parameter {field}: {reason}")]
    InvalidParameter { field: String, reason: String },
    /// A cursor that was not made by this API for this tenant, these filters and this sort.
    #[error("Invalid cursor: {0}")]
    InvalidCursor(String),
    #[error("Missing or invalid API key")]
    Unauthorized,
    /// A webhook delivery that is not signed by its endpoint's secret, is stale, or names no endpoint: one
    /// answer for all of them.
    #[error("Missing or invalid webhook signature")]
    BadSignature,
    /// A valid key without the scope the route needs.
    #[error("This key lacks the {scope} scope that {route} needs")]
    Forbidden { route: &'static str, scope: &'static str },
    /// The write would break a rule of the stored call (a final status moved back).
    #[error("Conflict on {field}: {reason}")]
    Conflict { field: String, reason: String },
    /// `If-Match` named another version, or `If-None-Match: *` found the call.
    #[error("Precondition failed: {0}")]
    PreconditionFailed(&'static str),
    #[error("Request body too large: at most {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("Unsupported media type: send {expected}")]
    UnsupportedMediaType { expected: &'static str },
    /// A dependency is throttling or unreachable; the caller may retry after the given delay.
    #[error("Service temporarily unavailable")]
    ServiceUnavailable { retry_after: Duration },
    #[error("Internal error")]
    Internal,
}

impl ApiError {
    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        ApiError::InvalidParameter {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::NotFound | ApiError::RecordingNotFound => 404,
            ApiError::RecordingExpired => 410,
            ApiError::InvalidParameter { .. } | ApiError::InvalidCursor(_) => 400,
            ApiError::Unauthorized | ApiError::BadSignature => 401,
            ApiError::Forbidden { .. } => 403,
            ApiError::Conflict { .. } => 409,
            ApiError::PreconditionFailed(_) => 412,
            ApiError::PayloadTooLarge { .. } => 413,
            ApiError::UnsupportedMediaType { .. } => 415,
            ApiError::ServiceUnavailable { .. } => 503,
            ApiError::Internal => 500,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::NotFound | ApiError::RecordingNotFound => "NOT_FOUND",
            ApiError::RecordingExpired => "RECORDING_EXPIRED",
            ApiError::InvalidParameter { .. } => "INVALID_PARAMETER",
            ApiError::InvalidCursor(_) => "INVALID_CURSOR",
            ApiError::Unauthorized | ApiError::BadSignature => "UNAUTHORIZED",
            ApiError::Forbidden { .. } => "FORBIDDEN",
            ApiError::Conflict { .. } => "CONFLICT",
            ApiError::PreconditionFailed(_) => "PRECONDITION_FAILED",
            ApiError::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            ApiError::UnsupportedMediaType { .. } => "UNSUPPORTED_MEDIA_TYPE",
            ApiError::ServiceUnavailable { .. } => "SERVICE_UNAVAILABLE",
            ApiError::Internal => "INTERNAL",
        }
    }

    /// The parameter a 400 is about.
    pub fn field(&self) -> Option<&str> {
        match self {
            ApiError::InvalidParameter { field, .. } => Some(field),
            ApiError::InvalidCursor(_) => Some("cursor"),
            ApiError::Conflict { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// A storage or presigning failure, classified by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttled, timed out or unreachable: worth retrying later.
    #[error("dependency unavailable: {0}")]
    Unavailable(String),
    /// Stored data that does not decode, or a request the service refused.
    #[error("storage error: {0}")]
    Failed(String),
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(why) => {
                tracing::warn!(error = %why, "dependency unavailable");
                ApiError::ServiceUnavailable {
                    retry_after: Duration::from_secs(1),
                }
            }
            StoreError::Failed(why) => {
                tracing::error!(error = %why, "storage failure");
                ApiError::Internal
            }
        }
    }
}
