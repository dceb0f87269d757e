//! The error type of the shared crate.

use std::path::PathBuf;

/// Errors raised by the shared building blocks; each variant names what failed and where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is missing or invalid.
    #[error("invalid configuration `{key}`: {message}")]
    Config { key: String, message: String },

    /// The configuration sources could not be read or deserialized.
    #[error("cannot load configuration: {0}")]
    ConfigLoad(#[from] config::ConfigError),

    /// A configuration file holds secrets but every user of the machine may read it.
    #[error(
        "configuration file {path} holds secrets ({keys}) but is readable by every user: run `chmod 600 {path}` (and keep it owned by the service's user)"
    )]
    InsecureConfigFile {
        /// The file.
        path: PathBuf,
        /// The secret settings found in it, by key (never their values).
        keys: String,
    },

    /// A Kafka operation failed.
    #[error("kafka {operation} failed: {source}")]
    Kafka {
        operation: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },

    /// Creating a topic failed for a reason other than "already exists".
    #[error("cannot create topic `{topic}`: {reason}")]
    TopicCreation { topic: String, reason: String },

    /// A lake object operation failed.
    #[error("lake {operation} `{key}` failed: {source}")]
    Lake {
        operation: &'static str,
        key: String,
        #[source]
        source: std::io::Error,
    },

    /// An S3 request failed (after the SDK's own retries); `kind` says whether to retry.
    #[error("S3 {operation} `{key}` failed ({kind}): {message}")]
    S3 {
        operation: &'static str,
        key: String,
        kind: crate::aws_error::AwsErrorKind,
        message: String,
    },

    /// A lake object does not exist.
    #[error("lake object `{key}` not found")]
    NotFound { key: String },

    /// An object key is not a valid relative lake key.
    #[error("invalid lake key `{key}`: {reason}")]
    InvalidKey { key: String, reason: &'static str },

    /// A JSON document could not be encoded or decoded.
    #[error("json {context}: {source}")]
    Json {
        context: String,
        #[source]
        source: serde_json::Error,
    },

    /// Parquet encoding or decoding failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),

    /// Building Arrow arrays failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),

    /// The HTTP listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },

    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether retrying the same operation later may succeed (network, broker or storage hiccups).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Kafka { .. } | Error::Lake { .. } | Error::Io { .. } => true,
            Error::S3 { kind, .. } => kind.is_retryable(),
            Error::Config { .. }
            | Error::ConfigLoad(_)
            | Error::InsecureConfigFile { .. }
            | Error::TopicCreation { .. }
            | Error::NotFound { .. }
            | Error::InvalidKey { .. }
            | Error::Json { .. }
            | Error::Parquet(_)
            | Error::Arrow(_)
            | Error::Listen { .. } => false,
        }
    }

    /// Builds a [`Error::Config`] for `key`.
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            key: key.into(),
            message: message.into(),
        }
    }

    /// Builds a [`Error::Kafka`] for `operation`. A client configuration error naming a secret
    /// option (or an unknown one, which may be a misspelt secret) has its value replaced by `***`.
    pub fn kafka(operation: impl Into<String>, source: rdkafka::error::KafkaError) -> Self {
        Error::Kafka {
            operation: operation.into(),
            source: crate::kafka::redact_error(source),
        }
    }
}

/// Result with the shared [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
