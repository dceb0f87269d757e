//! librdkafka client settings and topic administration.
//!
//! Every client is built from [`KafkaConfig`]: stockstream's own settings first, then the
//! pass-through `kafka.options` map, so SASL/TLS for Amazon MSK needs configuration, not code.
//! The settings are a [`KafkaClientConfig`], which keeps credentials out of `Debug` output and
//! error messages.
//!
//! - `mod.rs`: client settings, topic administration and watermarks, message headers;
//! - `producer.rs`: [`Producer`], a producer whose [`DeliveryTracker`] knows which messages are in
//!   flight, which failed and where acknowledged ones landed.

mod producer;

pub use producer::{DeliveryFailure, DeliveryTracker, Producer};

use std::fmt;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::{FromClientConfig, FromClientConfigAndContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::types::{RDKafkaConfRes, RDKafkaErrorCode};
use rdkafka::{ClientConfig, ClientContext};

use crate::config::KafkaConfig;
use crate::secret::{REDACTED, ShownValue, is_secret_kafka_option};
use crate::{Error, Result};

/// How long administrative calls and metadata requests may take.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// librdkafka client settings built from [`KafkaConfig`] (see [`client_config`]).
///
/// It wraps rdkafka's `ClientConfig` so that secrets stay secret by construction: `Debug` prints
/// `***` for the values of options that carry credentials ([`is_secret_kafka_option`]), and the
/// errors of [`KafkaClientConfig::create`] never quote such a value (nor the value of an unknown
/// option, which may be a misspelt secret).
#[derive(Clone, Default)]
pub struct KafkaClientConfig {
    inner: ClientConfig,
}

impl KafkaClientConfig {
    /// Sets the librdkafka option `key` to `value`, replacing an earlier value.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.inner.set(key, value);
        self
    }

    /// The value given to `key`, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.inner.get(key)
    }

    /// Creates a client (consumer, producer, admin client) from these settings.
    pub fn create<T: FromClientConfig>(&self) -> KafkaResult<T> {
        self.inner.create().map_err(redact_error)
    }

    /// Creates a client with `context` from these settings.
    pub fn create_with_context<C, T>(&self, context: C) -> KafkaResult<T>
    where
        C: ClientContext,
        T: FromClientConfigAndContext<C>,
    {
        self.inner
            .create_with_context(context)
            .map_err(redact_error)
    }
}

impl fmt::Debug for KafkaClientConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `config_map` is sorted; rdkafka blanks a few secrets in it, this blanks all of them.
        formatter
            .debug_map()
            .entries(self.inner.config_map().into_keys().map(|key| {
                (
                    key,
                    ShownValue {
                        value: self.inner.get(key).unwrap_or_default(),
                        secret: is_secret_kafka_option(key),
                    },
                )
            }))
            .finish()
    }
}

/// `error` without secrets: a client configuration error about a secret option, or about an
/// unknown option (perhaps a misspelt secret), loses the option's value, also where librdkafka's
/// description quotes it. A NUL byte error (whose `Debug` holds the offending bytes) keeps only
/// its message.
pub fn redact_error(error: KafkaError) -> KafkaError {
    match error {
        KafkaError::ClientConfig(result, description, key, value)
            if is_secret_kafka_option(&key) || result == RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN =>
        {
            let description = if value.is_empty() {
                description
            } else {
                description.replace(&value, REDACTED)
            };
            KafkaError::ClientConfig(result, description, key, REDACTED.to_string())
        }
        KafkaError::Nul(nul) => KafkaError::ClientCreation(nul.to_string()),
        other => other,
    }
}

/// Base client configuration for a client playing `role` (e.g. `sink-consumer`).
pub fn client_config(kafka: &KafkaConfig, role: &str) -> KafkaClientConfig {
    client_config_with(kafka, role, &[])
}

/// Client configuration for `role`: bootstrap servers and client id, then `settings`, then the
/// pass-through `kafka.options`, which win over both.
pub fn client_config_with(
    kafka: &KafkaConfig,
    role: &str,
    settings: &[(&str, &str)],
) -> KafkaClientConfig {
    let mut config = KafkaClientConfig::default();
    config
        .set("bootstrap.servers", &kafka.bootstrap_servers)
        .set("client.id", format!("{}-{role}", kafka.client_id));
    for (key, value) in settings {
        config.set(*key, *value);
    }
    for (key, value) in kafka.options.iter() {
        config.set(key, value);
    }
    config
}

/// Settings of every stockstream producer: idempotent, `acks=all`, lz4 batches.
const PRODUCER_SETTINGS: [(&str, &str); 4] = [
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("compression.type", "lz4"),
    ("linger.ms", "5"),
];

/// Configuration of an idempotent producer ([`PRODUCER_SETTINGS`], then `settings`, then
/// `kafka.options`).
pub fn producer_config(
    kafka: &KafkaConfig,
    role: &str,
    settings: &[(&str, &str)],
) -> KafkaClientConfig {
    let all: Vec<(&str, &str)> = PRODUCER_SETTINGS.iter().chain(settings).copied().collect();
    client_config_with(kafka, role, &all)
}

/// Configuration of a group consumer that never commits or stores offsets on its own.
pub fn consumer_config(
    kafka: &KafkaConfig,
    role: &str,
    group_id: &str,
    settings: &[(&str, &str)],
) -> KafkaClientConfig {
    let all: Vec<(&str, &str)> = [
        ("group.id", group_id),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("auto.offset.reset", "earliest"),
        ("enable.partition.eof", "false"),
    ]
    .iter()
    .chain(settings)
    .copied()
    .collect();
    client_config_with(kafka, role, &all)
}

/// The topics stockstream uses, with the partition count each is created with.
pub fn pipeline_topics(kafka: &KafkaConfig) -> Vec<(String, i32)> {
    vec![
        (kafka.topics.quotes.clone(), kafka.topics.partitions),
        (kafka.topics.dlq.clone(), 1),
        (kafka.topics.lake_commits.clone(), 1),
    ]
}

/// Creates the given topics if they do not exist (brokers such as tansu do not auto-create).
///
/// A topic that already exists is left as it is; when all exist, no admin request is made (so a
/// principal without `CreateTopics` permission, common on MSK, works with pre-created topics).
pub async fn ensure_topics(kafka: &KafkaConfig, topics: &[(String, i32)]) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = client_config(kafka, "admin")
        .create()
        .map_err(|error| Error::kafka("creating the admin client", error))?;
    let existing: std::collections::BTreeSet<String> = {
        let metadata = admin
            .inner()
            .fetch_metadata(None, ADMIN_TIMEOUT)
            .map_err(|error| Error::kafka("fetching cluster metadata", error))?;
        metadata
            .topics()
            .iter()
            .filter(|topic| topic.error().is_none() && !topic.partitions().is_empty())
            .map(|topic| topic.name().to_string())
            .collect()
    };
    let missing: Vec<&(String, i32)> = topics
        .iter()
        .filter(|(name, _)| !existing.contains(name))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let new_topics: Vec<NewTopic<'_>> = missing
        .iter()
        .map(|(name, partitions)| {
            NewTopic::new(
                name,
                *partitions,
                TopicReplication::Fixed(kafka.topics.replication_factor),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
    let results = admin
        .create_topics(new_topics.iter(), &options)
        .await
        .map_err(|error| Error::kafka("creating topics", error))?;
    for result in results {
        match result {
            Ok(topic) => tracing::info!(%topic, "created topic"),
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                tracing::debug!(%topic, "topic exists")
            }
            Err((topic, code)) => {
                return Err(Error::TopicCreation {
                    topic,
                    reason: code.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Number of records currently held by `topic`: the sum over partitions of high minus low watermark.
pub fn topic_record_count(kafka: &KafkaConfig, topic: &str, timeout: Duration) -> Result<i64> {
    Ok(topic_watermarks(kafka, topic, timeout)?
        .iter()
        .map(|(_, low, high)| high - low)
        .sum())
}

/// `(partition, low, high)` watermarks of every partition of `topic`.
pub fn topic_watermarks(
    kafka: &KafkaConfig,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<(i32, i64, i64)>> {
    let consumer: BaseConsumer = client_config(kafka, "watermarks")
        .create()
        .map_err(|error| Error::kafka("creating a watermark client", error))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|error| Error::kafka(format!("fetching metadata of `{topic}`"), error))?;
    let mut watermarks = Vec::new();
    for found in metadata
        .topics()
        .iter()
        .filter(|found| found.name() == topic)
    {
        for partition in found.partitions() {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition.id(), timeout)
                .map_err(|error| {
                    Error::kafka(
                        format!("fetching watermarks of `{topic}` [{}]", partition.id()),
                        error,
                    )
                })?;
            watermarks.push((partition.id(), low, high));
        }
    }
    watermarks.sort_unstable();
    Ok(watermarks)
}

/// Builds message headers from name/value pairs.
pub fn headers(pairs: &[(&str, &str)]) -> rdkafka::message::OwnedHeaders {
    pairs.iter().fold(
        rdkafka::message::OwnedHeaders::new_with_capacity(pairs.len()),
        |headers, (key, value)| {
            headers.insert(rdkafka::message::Header {
                key,
                value: Some(value.as_bytes()),
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Amazon MSK needs TLS (port 9094) and SASL/SCRAM over TLS (port 9096): the linked
    /// librdkafka must be built with them, or `kafka.options` naming them fail at start.
    #[test]
    fn librdkafka_supports_what_msk_needs() {
        let native = ClientConfig::new()
            .create_native_config()
            .expect("a native configuration");
        let features = native.get("builtin.features").expect("builtin.features");
        let features: Vec<&str> = features.split(',').collect();
        for needed in ["ssl", "sasl_scram", "sasl_oauthbearer", "zstd", "lz4"] {
            assert!(
                features.contains(&needed),
                "librdkafka lacks {needed}: {features:?}"
            );
        }
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", "127.0.0.1:9")
            .set("security.protocol", "SASL_SSL")
            .set("sasl.mechanism", "SCRAM-SHA-512")
            .set("sasl.username", "stockstream")
            .set("sasl.password", "secret");
        let consumer: std::result::Result<BaseConsumer, _> = config.create();
        assert!(consumer.is_ok(), "SASL_SSL with SCRAM-SHA-512 is accepted");
    }

    fn kafka_with(options: &[(&str, &str)]) -> KafkaConfig {
        KafkaConfig {
            bootstrap_servers: "127.0.0.1:9".into(),
            client_id: "test".into(),
            topics: crate::config::TopicsConfig {
                quotes: "q".into(),
                dlq: "d".into(),
                lake_commits: "c".into(),
                partitions: 1,
                replication_factor: 1,
            },
            options: options.iter().copied().collect(),
        }
    }

    #[test]
    fn client_settings_debug_names_secret_keys_but_not_their_values() {
        let kafka = kafka_with(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.password", "hunter2-a"),
            ("sasl.oauthbearer.client.secret", "hunter2-b"),
            ("ssl.key.pem", "hunter2-c"),
            ("ssl.keystore.password", "hunter2-d"),
        ]);
        let settings = consumer_config(&kafka, "role", "group", &[]);
        assert_eq!(settings.get("sasl.password"), Some("hunter2-a"));
        let shown = format!("{settings:?} {settings:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("\"sasl.password\": ***"), "{shown}");
        assert!(shown.contains("\"ssl.key.pem\": ***"), "{shown}");
        assert!(shown.contains("\"group.id\": \"group\""), "{shown}");
    }

    /// Errors about options (here a misspelt `sasl.password`) reach logs and `/v1/status`.
    #[test]
    fn client_creation_errors_do_not_quote_secret_or_unknown_option_values() {
        let kafka = kafka_with(&[("sasl.pasword", "hunter2-typo")]);
        let Err(error) = client_config(&kafka, "role").create::<BaseConsumer>() else {
            panic!("an unknown option is refused");
        };
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("sasl.pasword"), "{shown}");

        // librdkafka quotes an invalid value in its description, too.
        let raw = KafkaError::ClientConfig(
            RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
            "Invalid value \"hunter2-pem\" for configuration property \"ssl.key.pem\"".into(),
            "ssl.key.pem".into(),
            "hunter2-pem".into(),
        );
        let error = Error::kafka("creating a consumer", raw);
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("ssl.key.pem"), "{shown}");
        // A non-secret option's value stays: it is what the operator has to fix.
        let raw = KafkaError::ClientConfig(
            RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
            "Invalid value \"al\" for configuration property \"acks\"".into(),
            "acks".into(),
            "al".into(),
        );
        assert!(Error::kafka("x", raw).to_string().contains("\"al\""));
    }

    /// What a service logs when it stops on such an error (`run_service`'s `failed` line, in JSON
    /// as under journald, with the error's `Debug` too).
    #[test]
    fn the_failure_log_line_does_not_hold_the_secret() {
        #[derive(Clone, Default)]
        struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0
                    .lock()
                    .map_err(|_| std::io::Error::other("poisoned"))?
                    .extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .finish();
        let kafka = kafka_with(&[
            ("sasl.password", "hunter2-a"),
            ("ssl.key.passwd", "hunter2-b"),
        ]);
        let settings = producer_config(&kafka, "role", &[]);
        let error = Producer::new(&settings).expect_err("unknown option");
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(service = "test", %error, debug = ?error, ?settings, ?kafka, "failed");
        });
        let logged = String::from_utf8(buffer.0.lock().expect("lock").clone()).expect("utf-8");
        assert!(logged.contains("ssl.key.passwd"), "{logged}");
        assert!(logged.contains("sasl.password"), "{logged}");
        assert!(!logged.contains("hunter2"), "{logged}");
    }
}
