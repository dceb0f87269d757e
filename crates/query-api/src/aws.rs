//! Errors of the AWS SDKs (Athena, Glue) classified by their error code and kind, not by text.

use aws_sdk_athena::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::error::Error;

/// Error codes AWS services use for throttling.
const THROTTLING_CODES: [&str; 5] = [
    "ThrottlingException",
    "TooManyRequestsException",
    "Throttling",
    "RequestLimitExceeded",
    "SlowDown",
];

/// Converts an SDK error into [`Error::Aws`], retryable for throttling, 5xx, timeouts and
/// connection failures; not for access denied, validation or missing entities.
pub(crate) fn aws_error<E, R>(
    service: &'static str,
    operation: &'static str,
    error: SdkError<E, R>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let retryable = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        SdkError::ServiceError(service_error) => {
            let code = service_error.err().code().unwrap_or_default();
            THROTTLING_CODES.contains(&code)
                || code == "InternalServerException"
                || code == "InternalServiceException"
                || code == "ServiceUnavailable"
        }
        SdkError::ResponseError(_) => true,
        _ => false,
    };
    Error::Aws {
        service,
        operation,
        message: DisplayErrorContext(&error).to_string(),
        retryable,
    }
}

/// The service error code of an SDK error (`EntityNotFoundException`…), if the service sent one.
pub(crate) fn error_code<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> Option<&str> {
    error
        .as_service_error()
        .and_then(ProvideErrorMetadata::code)
}
