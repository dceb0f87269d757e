//! Errors of the AWS SDKs (S3, Glue, Athena) classified by the service's error code and the HTTP
//! status, never by message text: what a caller may retry, and what needs an operator.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// Error codes AWS services use for throttling.
const THROTTLING_CODES: [&str; 7] = [
    "ThrottlingException",
    "TooManyRequestsException",
    "Throttling",
    "RequestLimitExceeded",
    "SlowDown",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
];

/// Error codes of missing or refused credentials.
const ACCESS_CODES: [&str; 9] = [
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
];

/// What kind of failure an AWS request met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// The service asked to slow down (a throttling code, HTTP 429, S3's `SlowDown`).
    Throttled,
    /// The service or the way to it failed: HTTP 5xx, a timeout, a connection failure, an
    /// unreadable response.
    Unavailable,
    /// The credentials are missing, wrong, expired or lack a permission (HTTP 401/403).
    AccessDenied,
    /// The bucket, key, database, table or query does not exist (HTTP 404, `…NotFound…`,
    /// `NoSuch…`).
    NotFound,
    /// The service refused the request as invalid (any other 4xx), or it could not be built.
    Rejected,
}

impl AwsErrorKind {
    /// Classifies an SDK error.
    pub fn of<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> Self {
        match error {
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => Self::Unavailable,
            SdkError::ServiceError(service) => {
                Self::from_response(service.err().code(), Some(service.raw().status().as_u16()))
            }
            // A request that could not be built, and variants later SDKs may add.
            _ => Self::Rejected,
        }
    }

    /// Classifies a service's answer from its error `code` and HTTP `status` (per-item errors of
    /// batch calls have a code and no status).
    pub fn from_response(code: Option<&str>, status: Option<u16>) -> Self {
        let code = code.unwrap_or_default();
        let status = status.unwrap_or_default();
        if THROTTLING_CODES.contains(&code) || status == 429 {
            Self::Throttled
        } else if ACCESS_CODES.contains(&code) || status == 401 || status == 403 {
            Self::AccessDenied
        } else if code.contains("NotFound") || code.starts_with("NoSuch") || status == 404 {
            Self::NotFound
        } else if status >= 500
            || code.starts_with("Internal")
            || code == "ServiceUnavailable"
            || code == "ServiceUnavailableException"
        {
            Self::Unavailable
        } else {
            Self::Rejected
        }
    }

    /// Whether the same request may succeed later without anyone changing anything.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Throttled | Self::Unavailable)
    }

    /// A short name for logs and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Throttled => "throttled",
            Self::Unavailable => "unavailable",
            Self::AccessDenied => "access denied",
            Self::NotFound => "not found",
            Self::Rejected => "rejected",
        }
    }
}

impl std::fmt::Display for AwsErrorKind {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_decide_the_kind() {
        let kind =
            |code: Option<&str>, status: Option<u16>| AwsErrorKind::from_response(code, status);
        assert_eq!(kind(Some("SlowDown"), Some(503)), AwsErrorKind::Throttled);
        assert_eq!(
            kind(Some("ThrottlingException"), Some(400)),
            AwsErrorKind::Throttled
        );
        assert_eq!(kind(None, Some(429)), AwsErrorKind::Throttled);
        // S3 answers HEAD with a bare 403 and no code.
        assert_eq!(kind(None, Some(403)), AwsErrorKind::AccessDenied);
        assert_eq!(
            kind(Some("AccessDeniedException"), None),
            AwsErrorKind::AccessDenied
        );
        assert_eq!(
            kind(Some("ExpiredToken"), Some(400)),
            AwsErrorKind::AccessDenied
        );
        assert_eq!(
            kind(Some("NoSuchBucket"), Some(404)),
            AwsErrorKind::NotFound
        );
        assert_eq!(
            kind(Some("EntityNotFoundException"), Some(400)),
            AwsErrorKind::NotFound
        );
        assert_eq!(
            kind(Some("InternalServiceException"), None),
            AwsErrorKind::Unavailable
        );
        assert_eq!(kind(None, Some(502)), AwsErrorKind::Unavailable);
        assert_eq!(
            kind(Some("InvalidInputException"), Some(400)),
            AwsErrorKind::Rejected
        );
        assert_eq!(kind(None, None), AwsErrorKind::Rejected);
    }

    #[test]
    fn only_throttling_and_outages_are_retried() {
        assert!(AwsErrorKind::Throttled.is_retryable());
        assert!(AwsErrorKind::Unavailable.is_retryable());
        assert!(!AwsErrorKind::AccessDenied.is_retryable());
        assert!(!AwsErrorKind::NotFound.is_retryable());
        assert!(!AwsErrorKind::Rejected.is_retryable());
    }
}
