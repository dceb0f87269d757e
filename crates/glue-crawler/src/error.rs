//! Errors of the catalog service.

/// What can fail while keeping the catalog current.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A shared building block failed (configuration, Kafka client, lake store, catalog codec).
    #[error(transparent)]
    Common(#[from] stockstream_common::Error),

    /// Consuming `lake.commits` failed.
    #[error("consuming `{topic}` failed: {source}")]
    Consume {
        topic: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },

    /// An AWS Glue request failed (after the SDK's retries) or reported per-item errors.
    #[error("Glue {operation} failed: {message}")]
    Glue {
        operation: &'static str,
        message: String,
    },

    /// A data file's footer could not be read to learn its schema.
    #[error("cannot read the schema of `{key}`: {reason}")]
    Schema { key: String, reason: String },
}

impl Error {
    /// Whether retrying may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Common(error) => error.is_retryable(),
            Error::Consume { .. } => true,
            Error::Glue { message, .. } => {
                !(message.contains("AccessDenied") || message.contains("not authorized"))
            }
            Error::Schema { .. } => false,
        }
    }
}

/// Result of the catalog service.
pub type Result<T, E = Error> = std::result::Result<T, E>;
