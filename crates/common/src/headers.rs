//! Names of the Kafka message headers stockstream writes: part of the contract between the
//! services and with anyone reading the topics. Every record says where it came from (the
//! `SOURCE_*` headers), every dead letter also says why it was set aside and by which stage, and
//! every `lake.commits` event says what it is.

/// The wire-format version of a `quotes` message ([`crate::record::SCHEMA_VERSION`]).
pub const SCHEMA_VERSION_HEADER: &str = "stockstream-schema-version";
/// What a `lake.commits` message is ([`LAKE_COMMIT_EVENT`]).
pub const EVENT_HEADER: &str = "stockstream-event";
/// The value of [`EVENT_HEADER`] on a committed-file event.
pub const LAKE_COMMIT_EVENT: &str = "lake-commit";

/// Dead letters: why the record was set aside.
pub const ERROR_HEADER: &str = "stockstream-error";
/// Dead letters: the stage that set it aside (`ingest`, `ingest-http`, `s3-sink`,
/// `glue-crawler`).
pub const STAGE_HEADER: &str = "stockstream-stage";

/// The source of a record: a file fingerprint prefix, the generator, or `http` for pushes.
pub const SOURCE_HEADER: &str = "stockstream-source";
/// The replay pass that produced the record.
pub const SOURCE_PASS_HEADER: &str = "stockstream-source-pass";
/// The record's line in its source file (or in the pushed body).
pub const SOURCE_LINE_HEADER: &str = "stockstream-source-line";
/// The record's position in the replay mode's order, when that is not its line.
pub const SOURCE_POSITION_HEADER: &str = "stockstream-source-position";
/// The source file of a dead-lettered row.
pub const SOURCE_FILE_HEADER: &str = "stockstream-source-file";
/// The push request a record came in with.
pub const SOURCE_REQUEST_HEADER: &str = "stockstream-source-request";
/// Dead letters of a consumer: the topic of the message set aside.
pub const SOURCE_TOPIC_HEADER: &str = "stockstream-source-topic";
/// Dead letters of a consumer: its partition.
pub const SOURCE_PARTITION_HEADER: &str = "stockstream-source-partition";
/// Dead letters of a consumer: its offset.
pub const SOURCE_OFFSET_HEADER: &str = "stockstream-source-offset";
