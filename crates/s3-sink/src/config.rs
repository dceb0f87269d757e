//! Configuration of the sink: the shared sections plus `[sink]` and `[http]`.

use std::num::NonZeroUsize;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use stockstream_common::config::{
    HttpConfig, KafkaConfig, LakeConfig, LakeSection, SHARED_DEFAULTS, TelemetryConfig, load,
    parse_duration,
};
use stockstream_common::lake::PartitionTemplate;
use stockstream_common::{Error, Result};

const SINK_DEFAULTS: &str = r#"
[sink]
group_id = "stockstream-s3-sink"
flush_records = 100000
flush_bytes = 67108864
memory_budget = 268435456
flush_interval = "2s"
row_group_size = 131072
poll_timeout = "100ms"
session_timeout = "10s"
dead_letter_tolerance = "all"
partition_template = "symbol={symbol}/year={year}"
drain_deadline = "60s"

[http]
listen = "127.0.0.1:9101"
"#;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    kafka: KafkaConfig,
    lake: LakeSection,
    telemetry: TelemetryConfig,
    sink: RawSinkSection,
    http: HttpConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSinkSection {
    group_id: String,
    flush_records: usize,
    flush_bytes: usize,
    memory_budget: usize,
    flush_interval: String,
    row_group_size: usize,
    poll_timeout: String,
    session_timeout: String,
    dead_letter_tolerance: String,
    partition_template: String,
    drain_deadline: String,
}

/// The sink's validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Kafka connection and topics.
    pub kafka: KafkaConfig,
    /// Where the lake lives.
    pub lake: LakeConfig,
    /// Logging.
    pub telemetry: TelemetryConfig,
    /// Sink behaviour.
    pub sink: SinkConfig,
    /// Operations endpoint.
    pub http: HttpConfig,
}

/// Settings of the sink itself (section `[sink]`).
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// Consumer group of the sink instances.
    pub group_id: String,
    /// Flush a Kafka partition's buffer once it holds this many records.
    pub flush_records: NonZeroUsize,
    /// Flush a Kafka partition's buffer once it holds this many bytes (decoded rows, estimated).
    pub flush_bytes: NonZeroUsize,
    /// Cap on the bytes buffered across all partitions; reaching it flushes the largest buffer
    /// early, so memory stays bounded however many partitions or symbols arrive.
    pub memory_budget: NonZeroUsize,
    /// Flush a buffer once its oldest record waited this long (wall clock), so quiet partitions land.
    pub flush_interval: Duration,
    /// Maximum rows per Parquet row group.
    pub row_group_size: NonZeroUsize,
    /// How long one poll of the consumer waits for a message.
    pub poll_timeout: Duration,
    /// Consumer group session timeout: how soon the partitions of a crashed instance move to a
    /// live one (Kafka's `session.timeout.ms`; heartbeats go every third of it).
    pub session_timeout: Duration,
    /// How many undecodable messages the sink dead-letters before it stops with an error
    /// (`None`: all of them, like Kafka Connect's `errors.tolerance=all`).
    pub dead_letter_tolerance: Option<u64>,
    /// Hive-style partition path of the files below the table, e.g. `symbol={symbol}/year={year}`
    /// or `date={yyyy-mm-dd}` (see [`PartitionTemplate`]). A lake keeps the layout it was
    /// created with: the sink refuses to start with another one.
    pub partition_template: PartitionTemplate,
    /// How long a shutdown (SIGTERM) may take to flush buffers and commit before the process
    /// gives up and exits non-zero.
    pub drain_deadline: Duration,
}

impl Config {
    /// Loads defaults, then `file`, then `STOCKSTREAM__…` variables, and validates the result.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        let defaults = format!("{SHARED_DEFAULTS}\n{SINK_DEFAULTS}");
        let raw: RawConfig = load(&defaults, file)?;
        let sink = raw.sink;
        let non_zero = |key: &str, value: usize| {
            NonZeroUsize::new(value).ok_or_else(|| Error::config(key, "must be at least 1"))
        };
        if sink.group_id.trim().is_empty() {
            return Err(Error::config("sink.group_id", "must not be empty"));
        }
        Ok(Self {
            kafka: raw.kafka.validate()?,
            lake: raw.lake.validate()?,
            telemetry: raw.telemetry,
            sink: SinkConfig {
                group_id: sink.group_id,
                flush_records: non_zero("sink.flush_records", sink.flush_records)?,
                flush_bytes: non_zero("sink.flush_bytes", sink.flush_bytes)?,
                memory_budget: non_zero("sink.memory_budget", sink.memory_budget)?,
                flush_interval: parse_duration("sink.flush_interval", &sink.flush_interval)?,
                row_group_size: non_zero("sink.row_group_size", sink.row_group_size)?,
                poll_timeout: parse_duration("sink.poll_timeout", &sink.poll_timeout)?,
                session_timeout: parse_duration("sink.session_timeout", &sink.session_timeout)?,
                drain_deadline: parse_duration("sink.drain_deadline", &sink.drain_deadline)?,
                partition_template: sink
                    .partition_template
                    .parse()
                    .map_err(|reason: String| Error::config("sink.partition_template", reason))?,
                dead_letter_tolerance: match sink.dead_letter_tolerance.trim() {
                    "all" => None,
                    text => Some(text.parse().map_err(|_| {
                        Error::config(
                            "sink.dead_letter_tolerance",
                            format!("`{text}` is neither `all` nor a number of messages"),
                        )
                    })?),
                },
            },
            http: raw.http,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        let config = Config::load(None).expect("defaults are valid");
        assert_eq!(config.sink.flush_interval, Duration::from_secs(2));
        assert_eq!(config.http.listen.port(), 9101);
        assert_eq!(config.sink.partition_template, PartitionTemplate::default());
    }

    #[test]
    fn a_bad_partition_template_names_its_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("sink.toml");
        std::fs::write(&file, "[sink]\npartition_template = \"date={yyyy-mm-dd\"\n")
            .expect("writes");
        let error = Config::load(Some(&file)).expect_err("invalid").to_string();
        assert!(
            error.contains("sink.partition_template") && error.contains("not closed"),
            "{error}"
        );
        std::fs::write(
            &file,
            "[sink]\npartition_template = \"date={yyyy-mm-dd}\"\n",
        )
        .expect("writes");
        let config = Config::load(Some(&file)).expect("valid");
        assert_eq!(
            config.sink.partition_template.to_string(),
            "date={yyyy-mm-dd}"
        );
    }

    #[test]
    fn defaults_load_and_a_wrong_key_or_value_is_named() {
        stockstream_common::config_checks::check_config_key_errors(
            "sink.toml",
            Config::load,
            (
                "[sink]\nflush_intervl = \"1s\"\n",
                &["flush_intervl", "sink"],
            ),
            (
                "[sink]\nflush_interval = \"soon\"\n",
                &["sink.flush_interval"],
            ),
        );
    }

    #[test]
    fn secrets_are_named_but_never_shown_and_world_readable_files_refused() {
        stockstream_common::secret::check_config_secrets("sink.toml", |path| {
            Config::load(Some(path))
        });
    }
}
