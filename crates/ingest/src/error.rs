//! Errors of ingest.

use std::path::PathBuf;

/// What can stop a replay or generation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A shared building block failed (configuration, Kafka client).
    #[error(transparent)]
    Common(#[from] stockstream_common::Error),

    /// The input file cannot be read.
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The input file is not CSV of the expected shape.
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },

    /// The source-offset store cannot be read or written.
    #[error("source offsets {path}: {message}")]
    Offsets { path: PathBuf, message: String },

    /// Some records were not acknowledged by Kafka after librdkafka's retries.
    #[error("{count} record(s) were not delivered; first: line {first_line}: {first_error}")]
    Delivery {
        count: usize,
        first_line: u64,
        first_error: String,
    },

    /// Writing a generated file failed.
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Invalid command-line arguments.
    #[error("{0}")]
    Usage(String),

    /// A task of ours panicked (a bug): what it was doing and the panic.
    #[error("{what} panicked: {message}")]
    Panicked { what: &'static str, message: String },

    /// Something that must finish did not within its time limit.
    #[error("{what} did not finish within {after:?}")]
    Timeout {
        what: String,
        after: std::time::Duration,
    },

    /// The process could not set up what it needs to run (a runtime, an S3 client): not the
    /// user's input.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// Whether running the same command again may succeed (it resumes where it stopped).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Common(error) => error.is_retryable(),
            Error::Delivery { .. } | Error::Read { .. } | Error::Timeout { .. } => true,
            Error::Format { .. }
            | Error::Offsets { .. }
            | Error::Write { .. }
            | Error::Usage(_)
            | Error::Panicked { .. }
            | Error::Internal(_) => false,
        }
    }
}

impl Error {
    /// A Kafka client error with what was being done.
    pub fn kafka(context: impl Into<String>, error: rdkafka::error::KafkaError) -> Self {
        Error::Common(stockstream_common::Error::kafka(context, error))
    }
}

/// Result of ingest.
pub type Result<T, E = Error> = std::result::Result<T, E>;
