//! Configuration of ingest: shared sections plus `[ingest]`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use stockstream_common::config::{
    AwsEndpoint, HttpConfig, KafkaConfig, LakeSection, SHARED_DEFAULTS, TelemetryConfig, load,
    parse_duration,
};
use stockstream_common::{Error, Result};

const INGEST_DEFAULTS: &str = r#"
[ingest]
state_dir = "var/ingest"
compression = "lz4"
linger = "5ms"
batch_bytes = 1000000
delivery_timeout = "120s"
max_body_bytes = 8388608
drain_deadline = "30s"

[http]
listen = "127.0.0.1:9100"
"#;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    kafka: KafkaConfig,
    // Its S3 settings are how `s3://` sources are read.
    lake: LakeSection,
    telemetry: TelemetryConfig,
    ingest: RawIngestSection,
    http: HttpConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIngestSection {
    state_dir: PathBuf,
    compression: String,
    linger: String,
    batch_bytes: u64,
    delivery_timeout: String,
    max_body_bytes: usize,
    drain_deadline: String,
}

/// Producer compression codecs that every Kafka-protocol broker stockstream targets delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// No compression.
    None,
    /// lz4 (the default: cheap on CPU).
    Lz4,
    /// zstd (smaller batches).
    Zstd,
}

impl Compression {
    /// librdkafka's name of the codec.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Ingest's validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Kafka connection and topics.
    pub kafka: KafkaConfig,
    /// Logging.
    pub telemetry: TelemetryConfig,
    /// Ingest settings.
    pub ingest: IngestConfig,
    /// HTTP listener of the push service (`serve`): `/v1/quotes` and the operations endpoints.
    pub http: HttpConfig,
    /// How `s3://` sources are reached: the lake's S3 settings.
    pub s3: S3Settings,
}

/// How `s3://bucket/key` sources are read: the `[lake]` section's S3 settings (`lake.region`,
/// `lake.endpoint`, `lake.force_path_style`, `lake.request_timeout`), whatever `lake.backend` is.
#[derive(Debug, Clone, PartialEq)]
pub struct S3Settings {
    /// Region and endpoint override.
    pub aws: AwsEndpoint,
    /// Path-style addressing (most S3-compatible stores need it).
    pub force_path_style: bool,
    /// How long one attempt of a request may take.
    pub request_timeout: Duration,
}

/// Settings of ingest (section `[ingest]`).
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Directory of the source-offset store (how far each file was replayed).
    pub state_dir: PathBuf,
    /// Producer batch compression.
    pub compression: Compression,
    /// How long the producer waits to fill a batch.
    pub linger: Duration,
    /// Largest producer batch in bytes.
    pub batch_bytes: u64,
    /// How long a record may wait for its acknowledgement before it counts as failed.
    pub delivery_timeout: Duration,
    /// Largest request body `POST /v1/quotes` accepts.
    pub max_body_bytes: usize,
    /// How long the push service may take after SIGTERM to answer open requests and flush.
    pub drain_deadline: Duration,
}

impl Config {
    /// Loads defaults, then `file`, then `STOCKSTREAM__…` variables, and validates the result.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        let defaults = format!("{SHARED_DEFAULTS}\n{INGEST_DEFAULTS}");
        let raw: RawConfig = load(&defaults, file)?;
        let ingest = raw.ingest;
        let compression = match ingest.compression.as_str() {
            "none" => Compression::None,
            "lz4" => Compression::Lz4,
            "zstd" => Compression::Zstd,
            other => {
                return Err(Error::config(
                    "ingest.compression",
                    format!(
                        "`{other}` is not one of none, lz4, zstd (snappy is not offered: some brokers, tansu among them, do not deliver snappy batches)"
                    ),
                ));
            }
        };
        if ingest.max_body_bytes == 0 {
            return Err(Error::config("ingest.max_body_bytes", "must be at least 1"));
        }
        if ingest.batch_bytes == 0 {
            return Err(Error::config("ingest.batch_bytes", "must be at least 1"));
        }
        Ok(Self {
            kafka: raw.kafka.validate()?,
            telemetry: raw.telemetry,
            ingest: IngestConfig {
                state_dir: ingest.state_dir,
                compression,
                linger: parse_duration("ingest.linger", &ingest.linger)?,
                batch_bytes: ingest.batch_bytes,
                delivery_timeout: parse_duration(
                    "ingest.delivery_timeout",
                    &ingest.delivery_timeout,
                )?,
                max_body_bytes: ingest.max_body_bytes,
                drain_deadline: parse_duration("ingest.drain_deadline", &ingest.drain_deadline)?,
            },
            http: raw.http,
            s3: S3Settings {
                request_timeout: match raw.lake.request_timeout.as_deref() {
                    Some(text) if !text.is_empty() => parse_duration("lake.request_timeout", text)?,
                    _ => Duration::from_secs(10),
                },
                aws: AwsEndpoint {
                    region: raw.lake.region,
                    endpoint: raw.lake.endpoint,
                },
                force_path_style: raw.lake.force_path_style,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_a_wrong_key_or_value_is_named() {
        stockstream_common::config_checks::check_config_key_errors(
            "ingest.toml",
            Config::load,
            ("[ingest]\nlingr = \"5ms\"\n", &["lingr", "ingest"]),
            ("[ingest]\nlinger = \"soon\"\n", &["ingest.linger"]),
        );
    }

    #[test]
    fn secrets_are_named_but_never_shown_and_world_readable_files_refused() {
        stockstream_common::secret::check_config_secrets("ingest.toml", |path| {
            Config::load(Some(path))
        });
    }
}
