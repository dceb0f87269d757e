//! Errors of the sink.

/// What can stop the sink.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A shared building block failed (configuration, Kafka client, lake store).
    #[error(transparent)]
    Common(#[from] stockstream_common::Error),

    /// Consuming from Kafka failed in a way librdkafka does not recover from.
    #[error("consuming `{topic}` failed: {source}")]
    Consume {
        topic: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },

    /// Messages could not be delivered to the dead-letter or lake-commit topics.
    #[error("{count} message(s) to `{topic}` were not delivered, first: {first}")]
    Delivery {
        topic: String,
        count: usize,
        first: String,
    },

    /// A `lake.commits` event could not be encoded as JSON (a bug: its fields are plain data).
    #[error("encoding the lake.commits event of `{key}`: {reason}")]
    Encode { key: String, reason: String },

    /// A sink progress record in the lake cannot be read.
    #[error("progress record `{key}` is unreadable: {reason}")]
    Progress { key: String, reason: String },

    /// More messages were undecodable than `sink.dead_letter_tolerance` allows.
    #[error(
        "message {partition}/{offset} is undecodable ({reason}) and {limit} dead letter(s) were already sent: over sink.dead_letter_tolerance; stopping"
    )]
    Tolerance {
        partition: i32,
        offset: i64,
        limit: u64,
        reason: String,
    },

    /// The lake's table was created with another partition layout than the configured one.
    #[error(
        "the lake's table `{table}` is laid out as `{in_lake}` (recorded in `{key}`), but sink.partition_template is `{configured}`: set the template back, or write to a new lake (lake.root / lake.prefix)"
    )]
    Layout {
        table: String,
        key: String,
        in_lake: String,
        configured: String,
    },

    /// The consumer thread ended abnormally.
    #[error("the consumer thread panicked: {0}")]
    Panicked(String),
}

impl Error {
    /// Whether a restart may get past this error.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Common(error) => error.is_retryable(),
            Error::Consume { .. } | Error::Delivery { .. } => true,
            Error::Progress { .. }
            | Error::Encode { .. }
            | Error::Panicked(_)
            | Error::Tolerance { .. }
            | Error::Layout { .. } => false,
        }
    }
}

/// Result of the sink.
pub type Result<T, E = Error> = std::result::Result<T, E>;
