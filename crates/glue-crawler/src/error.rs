//! Errors of the catalog service.

use stockstream_common::aws_error::AwsErrorKind;

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
    #[error("Glue {operation} failed ({kind}): {message}")]
    Glue {
        operation: &'static str,
        kind: AwsErrorKind,
        message: String,
    },

    /// A data file's footer could not be read to learn its schema, or its rows to merge them.
    #[error("cannot read the schema of `{key}`: {reason}")]
    Schema { key: String, reason: String },

    /// Merging files failed outside the files themselves (the merge task panicked or was
    /// cancelled).
    #[error("merging files failed: {0}")]
    Merge(String),

    /// Another process took over the maintenance lease (this one was paused past its expiry):
    /// this process changes nothing more until it holds the lease again.
    #[error("the maintenance lease was taken over by another process")]
    LeaseLost,

    /// Another process holds the maintenance lease.
    #[error(
        "{purpose} (pid {pid} on {host}) holds the maintenance lease until {expires_at}; stop it or pass --wait"
    )]
    LeaseBusy {
        purpose: String,
        pid: u32,
        host: String,
        expires_at: String,
    },

    /// Compaction cannot work with this catalog.
    #[error("compaction is not possible here: {0}")]
    CompactionRefused(&'static str),
}

impl Error {
    /// Whether retrying may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Common(error) => error.is_retryable(),
            Error::Consume { .. } => true,
            Error::Glue { kind, .. } => kind.is_retryable(),
            Error::Schema { .. } | Error::CompactionRefused(_) => false,
            Error::Merge(_) | Error::LeaseLost | Error::LeaseBusy { .. } => true,
        }
    }
}

/// Result of the catalog service.
pub type Result<T, E = Error> = std::result::Result<T, E>;
