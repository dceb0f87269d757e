//! Layered, typed configuration.
//!
//! Every service loads its configuration the same way: built-in defaults (a TOML document compiled
//! into the binary) → an optional TOML file (`--config`) → environment variables
//! `STOCKSTREAM__SECTION__KEY` (for example `STOCKSTREAM__KAFKA__BOOTSTRAP_SERVERS`). The merged
//! document is deserialized into a raw struct that rejects unknown keys, then validated once into
//! the typed configuration the service runs with.
//!
//! The sections shared by all services live here: [`KafkaConfig`], [`TelemetryConfig`] and
//! [`HttpConfig`] in `mod.rs` (with [`load`] and the shared validators), the lake's section
//! ([`LakeConfig`], [`AwsEndpoint`]) in `lake.rs`.

mod lake;

pub use lake::{AwsEndpoint, LakeBackend, LakeConfig, LakeSection};

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::secret::{ShownValue, is_secret_kafka_option};
use crate::{Error, Result};

/// Prefix of configuration environment variables; sections and keys are separated by `__`.
pub const ENV_PREFIX: &str = "STOCKSTREAM";

/// Sections that belong to one service each. One configuration file (or one environment) may
/// serve every service: a service ignores the other services' sections.
pub const SERVICE_SECTIONS: [&str; 4] = ["ingest", "sink", "crawler", "query"];

/// Merges `defaults` (TOML), the optional `file` and the `STOCKSTREAM__…` environment into `R`.
///
/// A key that `R` does not know is an error naming the key, never silently ignored — except the
/// sections of other services ([`SERVICE_SECTIONS`] absent from `defaults`), which are dropped.
/// A `file` holding secrets (see [`crate::secret`]) is refused when every user may read it, and
/// a `file` that is not valid TOML is reported without quoting its lines (they may hold secrets).
pub fn load<R: DeserializeOwned>(defaults: &str, file: Option<&Path>) -> Result<R> {
    let mut builder = config::Config::builder()
        .add_source(config::File::from_str(defaults, config::FileFormat::Toml));
    if let Some(path) = file {
        if !path.is_file() {
            return Err(Error::config(
                "--config",
                format!("file {} does not exist", path.display()),
            ));
        }
        let file_source = || {
            config::File::from(path)
                .format(config::FileFormat::Toml)
                .required(true)
        };
        let document = config::Config::builder()
            .add_source(file_source())
            .build()
            .and_then(|parsed| parsed.cache.into_table())
            .map_err(without_source_lines)?;
        crate::secret::refuse_world_readable(path, &crate::secret::secret_settings_in(&document))?;
        builder = builder.add_source(file_source());
    }
    builder = builder.add_source(
        config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true),
    );
    let mut table = builder
        .build()
        .map_err(without_source_lines)?
        .cache
        .into_table()?;
    table.retain(|section, _| {
        !SERVICE_SECTIONS.contains(&section.as_str())
            || defaults
                .lines()
                .any(|line| line.trim() == format!("[{section}]"))
    });
    Ok(config::Value::from(table).try_deserialize()?)
}

/// A file parse error keeps its position and reason but loses the quoted source lines (the TOML
/// parser shows the offending line, which may be a password) and the parser's own error value
/// (whose `Debug` holds the whole document).
fn without_source_lines(error: config::ConfigError) -> config::ConfigError {
    match error {
        config::ConfigError::FileParse { uri, cause } => {
            let message: Vec<String> = cause
                .to_string()
                .lines()
                .filter(|line| !is_quoted_source_line(line))
                .map(str::to_string)
                .collect();
            config::ConfigError::FileParse {
                uri,
                cause: message.join("\n").into(),
            }
        }
        other => other,
    }
}

/// Whether `line` of a TOML parse error quotes the document: `12 | text` or the `|`/`^` markers.
fn is_quoted_source_line(line: &str) -> bool {
    let trimmed = line.trim_start();
    let after_number = trimmed.trim_start_matches(|c: char| c.is_ascii_digit());
    after_number.trim_start().starts_with('|')
}

/// Parses a human duration such as `250ms`, `5s` or `1m` for the configuration key `key`.
pub fn parse_duration(key: &str, value: &str) -> Result<Duration> {
    humantime::parse_duration(value)
        .map_err(|error| Error::config(key, format!("`{value}` is not a duration: {error}")))
}

/// Checks that `name` (the value of `key`) is a Glue/Athena database name: 1–255 lower-case
/// letters, digits and underscores. The catalog service and the query API both check theirs.
pub fn validate_database_name(key: &str, name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(Error::config(
            key,
            format!("`{name}` is not a Glue database name (lower-case letters, digits, `_`)"),
        ))
    }
}

/// Kafka connection and topic settings (section `[kafka]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list of bootstrap brokers.
    pub bootstrap_servers: String,
    /// Prefix of the client ids; each client appends its role (`stockstream-ingest-producer`, …).
    pub client_id: String,
    /// Topic names and the layout used when stockstream creates them.
    pub topics: TopicsConfig,
    /// librdkafka options passed through unchanged (e.g. `security.protocol`, `sasl.mechanism`
    /// for Amazon MSK). They are applied last and so override stockstream's own settings.
    #[serde(default)]
    pub options: KafkaOptions,
}

/// The pass-through librdkafka options (`[kafka.options]`). `Debug` shows every key but prints
/// `***` for the values of options that carry credentials ([`is_secret_kafka_option`]).
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct KafkaOptions(BTreeMap<String, String>);

impl KafkaOptions {
    /// Sets `key` to `value`; returns the previous value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        self.0.insert(key.into(), value.into())
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The options in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
    }

    /// Whether no option is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for KafkaOptions {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(options: I) -> Self {
        Self(
            options
                .into_iter()
                .map(|(key, value)| (key.into(), value.into()))
                .collect(),
        )
    }
}

impl fmt::Debug for KafkaOptions {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_map()
            .entries(self.0.iter().map(|(key, value)| {
                (
                    key,
                    ShownValue {
                        value,
                        secret: is_secret_kafka_option(key),
                    },
                )
            }))
            .finish()
    }
}

/// Topic names and creation settings (section `[kafka.topics]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TopicsConfig {
    /// Quotes produced by ingest and consumed by the sink.
    pub quotes: String,
    /// Dead letters: rows and messages that could not be processed, with reason and origin.
    pub dlq: String,
    /// One event per file committed to the lake, consumed by the catalog service.
    pub lake_commits: String,
    /// Partitions of topics stockstream creates.
    pub partitions: i32,
    /// Replication factor of topics stockstream creates (1 on a single local broker, 3 on MSK).
    pub replication_factor: i32,
}

impl KafkaConfig {
    /// Checks the values that librdkafka would only reject later and less clearly.
    pub fn validate(self) -> Result<Self> {
        if self.bootstrap_servers.trim().is_empty() {
            return Err(Error::config(
                "kafka.bootstrap_servers",
                "must name at least one host:port",
            ));
        }
        for server in self.bootstrap_servers.split(',') {
            let server = server.trim();
            let has_port = server
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !has_port {
                return Err(Error::config(
                    "kafka.bootstrap_servers",
                    format!("`{server}` is not host:port"),
                ));
            }
        }
        for (key, name) in [
            ("kafka.topics.quotes", &self.topics.quotes),
            ("kafka.topics.dlq", &self.topics.dlq),
            ("kafka.topics.lake_commits", &self.topics.lake_commits),
        ] {
            validate_topic_name(key, name)?;
        }
        if self.topics.partitions < 1 {
            return Err(Error::config(
                "kafka.topics.partitions",
                "must be at least 1",
            ));
        }
        if self.topics.replication_factor < 1 {
            return Err(Error::config(
                "kafka.topics.replication_factor",
                "must be at least 1",
            ));
        }
        Ok(self)
    }
}

fn validate_topic_name(key: &str, name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(Error::config(
            key,
            format!(
                "`{name}` is not a legal Kafka topic name ([a-zA-Z0-9._-], at most 249 characters)"
            ),
        ))
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Pretty on a terminal, JSON otherwise (journald, files, pipes).
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Pretty,
}

/// Logging settings (section `[telemetry]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Log format.
    pub log_format: LogFormat,
    /// Default `tracing` filter (`RUST_LOG` overrides it), e.g. `info` or `stockstream=debug`.
    pub log_level: String,
}

/// Operations HTTP endpoint (section `[http]`): `/metrics`, `/health/livez`, `/health/readyz`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on, e.g. `127.0.0.1:9101`.
    pub listen: SocketAddr,
}

/// Defaults shared by every service, in TOML. Services append their own sections.
pub const SHARED_DEFAULTS: &str = r#"
[kafka]
bootstrap_servers = "127.0.0.1:9092"
client_id = "stockstream"

[kafka.topics]
quotes = "quotes"
dlq = "quotes.dlq"
lake_commits = "lake.commits"
partitions = 3
replication_factor = 1

[lake]
backend = "local"
root = "var/lake"

[telemetry]
log_format = "auto"
log_level = "info"
"#;

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        kafka: KafkaConfig,
        lake: LakeSection,
        telemetry: TelemetryConfig,
    }

    #[test]
    fn shared_defaults_are_valid() {
        let raw: Raw = load(SHARED_DEFAULTS, None).expect("defaults load");
        let kafka = raw.kafka.validate().expect("kafka defaults validate");
        assert_eq!(kafka.topics.dlq, "quotes.dlq");
        assert_eq!(
            raw.lake.validate().expect("lake validates"),
            LakeConfig::Local {
                root: PathBuf::from("var/lake")
            }
        );
        assert_eq!(raw.telemetry.log_format, LogFormat::Auto);
    }

    #[test]
    fn file_overrides_defaults_and_unknown_keys_are_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[kafka]\nbootstrap_servers = \"b1:1,b2:2\"\n").expect("write");
        let raw: Raw = load(SHARED_DEFAULTS, Some(&path)).expect("loads");
        assert_eq!(raw.kafka.bootstrap_servers, "b1:1,b2:2");

        std::fs::write(&path, "[kafka]\nbootstrap_server = \"typo:1\"\n").expect("write");
        let error = load::<Raw>(SHARED_DEFAULTS, Some(&path)).expect_err("typo rejected");
        assert!(error.to_string().contains("bootstrap_server"), "{error}");

        // Another service's section is ignored; an unknown section is not.
        std::fs::write(&path, "[sink]\nflush_records = 5\n").expect("write");
        assert!(load::<Raw>(SHARED_DEFAULTS, Some(&path)).is_ok());
        std::fs::write(&path, "[sinks]\nflush_records = 5\n").expect("write");
        let error = load::<Raw>(SHARED_DEFAULTS, Some(&path)).expect_err("unknown section");
        assert!(error.to_string().contains("sinks"), "{error}");
    }

    #[test]
    fn invalid_values_name_their_key() {
        let raw: Raw = load(SHARED_DEFAULTS, None).expect("defaults load");
        let mut kafka = raw.kafka.clone();
        kafka.bootstrap_servers = "localhost".into();
        let error = kafka.validate().expect_err("no port");
        assert!(error.to_string().contains("kafka.bootstrap_servers"));
        let mut kafka = raw.kafka;
        kafka.topics.quotes = "bad topic".into();
        assert!(kafka.validate().is_err());
        assert!(parse_duration("x", "5s").is_ok());
        assert!(parse_duration("x", "five").is_err());
    }

    /// Writes `toml` to a file with `mode` in a fresh directory.
    fn config_file(toml: &str, mode: u32) -> (tempfile::TempDir, PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("stockstream.toml");
        std::fs::write(&path, toml).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        (dir, path)
    }

    const WITH_SECRETS: &str = "[kafka.options]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.password\" = \"hunter2-kafka\"\n\"ssl.key.pem\" = \"-----BEGIN PRIVATE KEY-----hunter2-pem\"\n";

    #[test]
    fn kafka_options_debug_names_secret_keys_but_not_their_values() {
        let (_dir, path) = config_file(WITH_SECRETS, 0o600);
        let raw: Raw = load(SHARED_DEFAULTS, Some(&path)).expect("loads");
        assert_eq!(
            raw.kafka.options.get("sasl.password"),
            Some("hunter2-kafka")
        );
        let shown = format!("{:?}", raw.kafka);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("\"sasl.password\": ***"), "{shown}");
        assert!(shown.contains("\"ssl.key.pem\": ***"), "{shown}");
        assert!(
            shown.contains("\"security.protocol\": \"SASL_SSL\""),
            "{shown}"
        );
        let pretty = format!("{:#?}", raw.kafka);
        assert!(!pretty.contains("hunter2"), "{pretty}");
    }

    #[test]
    fn a_world_readable_file_with_secrets_is_refused() {
        for mode in [0o644, 0o604, 0o666] {
            let (_dir, path) = config_file(WITH_SECRETS, mode);
            let error = load::<Raw>(SHARED_DEFAULTS, Some(&path))
                .expect_err("world-readable")
                .to_string();
            assert!(error.contains(&path.display().to_string()), "{error}");
            assert!(error.contains("kafka.options.\"sasl.password\""), "{error}");
            assert!(error.contains("kafka.options.\"ssl.key.pem\""), "{error}");
            assert!(
                error.contains(&format!("chmod 600 {}", path.display())),
                "{error}"
            );
            assert!(!error.contains("hunter2"), "{error}");
        }
        for mode in [0o600, 0o640, 0o400] {
            let (_dir, path) = config_file(WITH_SECRETS, mode);
            assert!(
                load::<Raw>(SHARED_DEFAULTS, Some(&path)).is_ok(),
                "{mode:o}"
            );
        }
    }

    #[test]
    fn files_without_secrets_load_whatever_their_mode() {
        for toml in [
            "[kafka.options]\n\"security.protocol\" = \"SSL\"\n\"sasl.password\" = \"\"\n",
            "[kafka]\nclient_id = \"x\"\n",
            // Another service's tokens, but none set.
            "[query]\nauth_tokens = []\n",
        ] {
            let (_dir, path) = config_file(toml, 0o666);
            assert!(load::<Raw>(SHARED_DEFAULTS, Some(&path)).is_ok(), "{toml}");
        }
        // Tokens are secrets in whichever service reads the file.
        let (_dir, path) = config_file("[query]\nauth_tokens = [\"0123456789abcdef-x\"]\n", 0o644);
        let error = load::<Raw>(SHARED_DEFAULTS, Some(&path)).expect_err("tokens");
        assert!(error.to_string().contains("query.auth_tokens"), "{error}");
        assert!(!error.to_string().contains("0123456789abcdef"), "{error}");
    }

    #[test]
    fn a_file_that_is_not_toml_is_reported_without_its_lines() {
        let (_dir, path) = config_file(
            "[kafka.options]\n\"sasl.password\" = \"hunter2-unterminated\n",
            0o600,
        );
        let error = load::<Raw>(SHARED_DEFAULTS, Some(&path)).expect_err("not TOML");
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("line 2"), "{shown}");
        assert!(shown.contains(&path.display().to_string()), "{shown}");
    }
}
