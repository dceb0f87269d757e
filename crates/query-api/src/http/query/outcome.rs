//! How a query ended: its stats, or its error rebuilt from the registry's shared copy.

use crate::engine::{QueryState, QueryStats};
use crate::error::{Error, Result};
use crate::registry::Entry;

/// The final status of a query whose output closed: its stats, or its error.
pub(crate) fn finished(entry: &Entry) -> Result<QueryStats> {
    let status = entry.status();
    match (status.state, status.error) {
        (QueryState::Succeeded, _) => Ok(status.stats),
        (_, Some(error)) => Err(error_copy(&error)),
        (state, None) => Err(Error::Internal(format!(
            "the engine stopped in state {}",
            state.name()
        ))),
    }
}

/// Rebuilds an error from a shared one (the registry keeps `Arc<Error>`).
pub(crate) fn error_copy(error: &Error) -> Error {
    match error {
        Error::Timeout(limit) => Error::Timeout(*limit),
        Error::Cancelled(reason) => Error::Cancelled(reason.clone()),
        Error::Forbidden(message) => Error::Forbidden(message.clone()),
        Error::InvalidQuery(message) => Error::InvalidQuery(message.clone()),
        Error::BadRequest(message) => Error::BadRequest(message.clone()),
        Error::ResourcesExhausted(message) => Error::ResourcesExhausted(message.clone()),
        Error::AthenaUser(message) => Error::AthenaUser(message.clone()),
        Error::Aws {
            service,
            operation,
            message,
            retryable,
        } => Error::Aws {
            service,
            operation,
            message: message.clone(),
            retryable: *retryable,
        },
        Error::Internal(message) => Error::Internal(message.clone()),
        other => Error::Execution(other.to_string()),
    }
}
