//! Errors of the AWS SDKs (Athena, Glue) classified by their error code and kind, not by text.

use aws_sdk_athena::config::http::HttpResponse;
use aws_sdk_athena::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use stockstream_common::aws_error::AwsErrorKind;

use crate::error::Error;

/// Converts an SDK error into [`Error::Aws`], retryable for throttling, 5xx, timeouts and
/// connection failures; not for access denied, validation or missing entities
/// ([`AwsErrorKind`]).
pub(crate) fn aws_error<E>(
    service: &'static str,
    operation: &'static str,
    error: SdkError<E, HttpResponse>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    Error::Aws {
        service,
        operation,
        retryable: AwsErrorKind::of(&error).is_retryable(),
        message: DisplayErrorContext(&error).to_string(),
    }
}

/// The service error code of an SDK error (`EntityNotFoundException`…), if the service sent one.
pub(crate) fn error_code<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> Option<&str> {
    error
        .as_service_error()
        .and_then(ProvideErrorMetadata::code)
}
