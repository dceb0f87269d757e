//! Errors of the query API, each mapped to an HTTP status.

use axum::http::StatusCode;

/// What can go wrong answering a query.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A shared building block failed (configuration, lake, catalog).
    #[error(transparent)]
    Common(#[from] stockstream_common::Error),

    /// The request itself is malformed (empty SQL, SQL too long, not a read-only statement).
    #[error("{0}")]
    BadRequest(String),

    /// The SQL does not parse or does not plan against the catalog (unknown table or column…).
    #[error("{0}")]
    InvalidQuery(String),

    /// The query ran longer than `query.timeout`.
    #[error("query exceeded the {0:?} time limit")]
    Timeout(std::time::Duration),

    /// The engine failed while executing.
    #[error("query failed: {0}")]
    Execution(String),
}

impl Error {
    /// HTTP status of the error.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) | Error::InvalidQuery(_) => StatusCode::BAD_REQUEST,
            Error::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Error::Common(_) | Error::Execution(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable kind, returned in error bodies.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "bad_request",
            Error::InvalidQuery(_) => "invalid_query",
            Error::Timeout(_) => "timeout",
            Error::Common(_) => "storage",
            Error::Execution(_) => "execution",
        }
    }

    /// Whether the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Common(error) => error.is_retryable(),
            Error::Timeout(_) | Error::Execution(_) => true,
            Error::BadRequest(_) | Error::InvalidQuery(_) => false,
        }
    }
}

impl From<datafusion::error::DataFusionError> for Error {
    fn from(error: datafusion::error::DataFusionError) -> Self {
        use datafusion::error::DataFusionError;
        let message = error.to_string();
        match error.find_root() {
            DataFusionError::SQL(..)
            | DataFusionError::Plan(_)
            | DataFusionError::SchemaError(..)
            | DataFusionError::NotImplemented(_) => Error::InvalidQuery(message),
            _ => Error::Execution(message),
        }
    }
}

/// Result of the query API.
pub type Result<T, E = Error> = std::result::Result<T, E>;
