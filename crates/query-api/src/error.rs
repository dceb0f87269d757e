//! Errors of the query API, each with an HTTP status, a stable kind and whether to retry.

use std::time::Duration;

use axum::http::StatusCode;

/// What can go wrong answering a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A shared building block failed (configuration, lake, catalog document).
    #[error(transparent)]
    Common(#[from] stockstream_common::Error),

    /// The request is malformed (bad JSON, missing field, wrong parameter count, bad range).
    #[error("{0}")]
    BadRequest(String),

    /// The SQL is not one read-only statement over the catalogued tables.
    #[error("statement refused: {0}")]
    Forbidden(String),

    /// The SQL does not parse or does not plan (unknown column, type mismatch…).
    #[error("{0}")]
    InvalidQuery(String),

    /// No `Authorization: Bearer` token, or not one of `query.auth_tokens`.
    #[error("a valid bearer token is required (Authorization: Bearer …)")]
    Unauthorized,

    /// The request body is larger than `query.max_body_bytes`.
    #[error("request body over the {limit}-byte limit")]
    PayloadTooLarge {
        /// The limit.
        limit: usize,
    },

    /// None of the `Accept`ed formats can be produced.
    #[error(
        "cannot answer in {0}; available: application/json, application/x-ndjson, text/csv, application/vnd.apache.arrow.stream"
    )]
    NotAcceptable(String),

    /// The named thing does not exist (query id, table, symbol).
    #[error("{0}")]
    NotFound(String),

    /// The query's results are not there yet (still queued or running).
    #[error("query {id} is {state}; its results are not available yet")]
    NotFinished {
        /// Query id.
        id: String,
        /// Its state.
        state: &'static str,
    },

    /// Every execution slot stayed busy for `query.queue_timeout`.
    #[error("too many queries running ({running}); retry in {retry_after:?}")]
    Overloaded {
        /// Queries running.
        running: usize,
        /// When to retry.
        retry_after: Duration,
    },

    /// The query ran longer than its time limit and was cancelled.
    #[error("query exceeded its {0:?} time limit and was cancelled")]
    Timeout(Duration),

    /// The query was cancelled (by `DELETE /v1/queries/{id}`, a disconnect, or in Athena).
    #[error("query was cancelled{0}")]
    Cancelled(String),

    /// A capacity limit other than query slots is reached (live streams); retry later.
    #[error("{reason}; retry in {retry_after:?}")]
    Unavailable {
        /// What is exhausted.
        reason: String,
        /// When to retry.
        retry_after: Duration,
    },

    /// The engine ran out of its memory budget (`query.memory_limit`).
    #[error("query needs more memory than the engine may use: {0}")]
    ResourcesExhausted(String),

    /// The query failed while executing.
    #[error("query failed: {0}")]
    Execution(String),

    /// Amazon Athena reported the query FAILED because of the query itself (syntax, table…).
    #[error("Athena: {0}")]
    AthenaUser(String),

    /// An AWS API (Athena, Glue) failed or refused the request.
    #[error("{service} {operation} failed: {message}")]
    Aws {
        /// Service.
        service: &'static str,
        /// API operation.
        operation: &'static str,
        /// What the SDK reported.
        message: String,
        /// Whether retrying may help (throttling, 5xx, timeouts, Athena's own verdict).
        retryable: bool,
    },

    /// A broken invariant or a panicked task inside the service.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// HTTP status of the error.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_)
            | Error::Forbidden(_)
            | Error::InvalidQuery(_)
            | Error::AthenaUser(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::NotFinished { .. } | Error::Cancelled(_) => StatusCode::CONFLICT,
            Error::Overloaded { .. } | Error::Unavailable { .. } | Error::ResourcesExhausted(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Error::Timeout(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Aws { .. } => StatusCode::BAD_GATEWAY,
            Error::Common(error) if error.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
            Error::Common(_) | Error::Execution(_) | Error::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// Stable machine-readable kind, returned in error bodies and used as a metrics label.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Common(_) => "storage",
            Error::BadRequest(_) => "bad_request",
            Error::Forbidden(_) => "forbidden_statement",
            Error::InvalidQuery(_) => "invalid_query",
            Error::Unauthorized => "unauthorized",
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::NotAcceptable(_) => "not_acceptable",
            Error::NotFound(_) => "not_found",
            Error::NotFinished { .. } => "not_finished",
            Error::Overloaded { .. } => "overloaded",
            Error::Unavailable { .. } => "unavailable",
            Error::Timeout(_) => "timeout",
            Error::Cancelled(_) => "cancelled",
            Error::ResourcesExhausted(_) => "resources_exhausted",
            Error::Execution(_) => "execution",
            Error::AthenaUser(_) => "query_failed",
            Error::Aws { .. } => "upstream",
            Error::Internal(_) => "internal",
        }
    }

    /// Whether the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Common(error) => error.is_retryable(),
            Error::Aws { retryable, .. } => *retryable,
            Error::NotFinished { .. }
            | Error::Overloaded { .. }
            | Error::Unavailable { .. }
            | Error::Timeout(_)
            | Error::ResourcesExhausted(_)
            | Error::Execution(_) => true,
            Error::BadRequest(_)
            | Error::Forbidden(_)
            | Error::InvalidQuery(_)
            | Error::Unauthorized
            | Error::PayloadTooLarge { .. }
            | Error::NotAcceptable(_)
            | Error::NotFound(_)
            | Error::Cancelled(_)
            | Error::AthenaUser(_)
            | Error::Internal(_) => false,
        }
    }

    /// Seconds a client should wait before retrying, for `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Overloaded { retry_after, .. } | Error::Unavailable { retry_after, .. } => {
                Some(*retry_after)
            }
            Error::ResourcesExhausted(_) => Some(Duration::from_secs(1)),
            _ => None,
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
            DataFusionError::ResourcesExhausted(_) => Error::ResourcesExhausted(message),
            _ => Error::Execution(message),
        }
    }
}

impl From<arrow::error::ArrowError> for Error {
    fn from(error: arrow::error::ArrowError) -> Self {
        Error::Execution(error.to_string())
    }
}

impl From<object_store::Error> for Error {
    fn from(error: object_store::Error) -> Self {
        Error::Execution(format!("lake: {error}"))
    }
}

/// Result of the query API.
pub type Result<T, E = Error> = std::result::Result<T, E>;
