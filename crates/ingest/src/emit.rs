//! Sending rows to Kafka with their origin, and reading back what a crashed run already sent.
//!
//! Every record ingest produces carries its origin in headers: the source (the first 16 hex
//! digits of the file's fingerprint, or `generator:<seed>`), the pass, the source line and, when
//! it differs from the line, the row's position in the order of the mode. Dead letters carry the
//! same headers plus the reason, stage and file name.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedHeaders, Headers as _};
use rdkafka::{Offset, TopicPartitionList};
use stockstream_common::config::KafkaConfig;
use stockstream_common::headers::{
    ERROR_HEADER, SCHEMA_VERSION_HEADER, SOURCE_FILE_HEADER, SOURCE_HEADER, SOURCE_LINE_HEADER,
    SOURCE_PASS_HEADER, SOURCE_POSITION_HEADER, STAGE_HEADER,
};
use stockstream_common::kafka::{
    ADMIN_TIMEOUT, Producer, client_config_with, headers, producer_config, topic_watermarks,
};
use stockstream_common::record::{Quote, SCHEMA_VERSION};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::{Error, Result};

/// How long reading back the previous run's records may take.
const READ_BACK_DEADLINE: Duration = Duration::from_secs(300);

/// Where records come from, stamped on each of them.
#[derive(Debug, Clone)]
pub struct Origin {
    /// Source id (see [`SOURCE_HEADER`]).
    pub source: String,
    /// File name for dead letters.
    pub file: String,
    /// Pass number.
    pub pass: u64,
}

impl Origin {
    /// The pass, the line and (when it differs from the line) the position, as header text.
    fn numbers(&self, line: u64, position: u64) -> (String, String, Option<String>) {
        (
            self.pass.to_string(),
            line.to_string(),
            (position != line).then(|| position.to_string()),
        )
    }

    /// `leading` headers followed by the origin headers.
    fn pairs<'a>(
        &'a self,
        leading: &[(&'a str, &'a str)],
        pass: &'a str,
        line: &'a str,
        position: Option<&'a str>,
    ) -> Vec<(&'a str, &'a str)> {
        let mut pairs = leading.to_vec();
        pairs.extend([
            (SOURCE_HEADER, self.source.as_str()),
            (SOURCE_PASS_HEADER, pass),
            (SOURCE_LINE_HEADER, line),
        ]);
        if let Some(position) = position {
            pairs.push((SOURCE_POSITION_HEADER, position));
        }
        pairs
    }
}

/// Produces quotes and dead letters with their origin; ids are row positions.
#[derive(Debug)]
pub struct Emitter {
    producer: Producer,
    quotes_topic: String,
    dlq_topic: String,
}

impl Emitter {
    /// An idempotent producer with ingest's batch settings.
    pub fn new(config: &Config) -> Result<Self> {
        let linger = config.ingest.linger.as_millis().to_string();
        let batch = config.ingest.batch_bytes.to_string();
        let timeout = config.ingest.delivery_timeout.as_millis().to_string();
        let client = producer_config(
            &config.kafka,
            "ingest-producer",
            &[
                ("compression.type", config.ingest.compression.as_str()),
                ("linger.ms", &linger),
                ("batch.size", &batch),
                ("message.timeout.ms", &timeout),
            ],
        );
        Ok(Self {
            producer: Producer::tracking_offsets(&client)?,
            quotes_topic: config.kafka.topics.quotes.clone(),
            dlq_topic: config.kafka.topics.dlq.clone(),
        })
    }

    /// The producer (for checkpoints: what is in flight, where records landed).
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// The topics records of a pass can land in.
    pub fn topics(&self) -> [&str; 2] {
        [&self.quotes_topic, &self.dlq_topic]
    }

    /// Queues a quote, keyed by its symbol.
    pub fn quote(&self, origin: &Origin, quote: &Quote, line: u64, position: u64) -> Result<()> {
        let (pass, line_text, position_text) = origin.numbers(line, position);
        let pairs = origin.pairs(
            &[(SCHEMA_VERSION_HEADER, SCHEMA_VERSION)],
            &pass,
            &line_text,
            position_text.as_deref(),
        );
        self.producer.send(
            &self.quotes_topic,
            quote.symbol.as_bytes(),
            &quote.to_json(),
            headers(&pairs),
            position,
        )?;
        metrics::counter!("stockstream_ingest_records_produced_total").increment(1);
        Ok(())
    }

    /// Queues a dead letter: the raw row, with the reason and its origin.
    pub fn dead_letter(
        &self,
        origin: &Origin,
        raw: &str,
        reason: &str,
        line: u64,
        position: u64,
    ) -> Result<()> {
        tracing::warn!(file = %origin.file, line, %reason, "dead-lettering a bad row");
        let (pass, line_text, position_text) = origin.numbers(line, position);
        let pairs = origin.pairs(
            &[
                (ERROR_HEADER, reason),
                (STAGE_HEADER, "ingest"),
                (SOURCE_FILE_HEADER, origin.file.as_str()),
            ],
            &pass,
            &line_text,
            position_text.as_deref(),
        );
        self.producer.send(
            &self.dlq_topic,
            b"",
            raw.as_bytes(),
            headers(&pairs),
            position,
        )?;
        metrics::counter!("stockstream_ingest_dead_letters_total").increment(1);
        Ok(())
    }
}

/// Current end offsets of every partition of `topics`, as `topic/partition` → offset: where the
/// records of a new pass will start.
pub fn log_ends(kafka: &KafkaConfig, topics: &[&str]) -> Result<BTreeMap<String, i64>> {
    let mut ends = BTreeMap::new();
    for topic in topics {
        for (partition, _low, high) in topic_watermarks(kafka, topic, ADMIN_TIMEOUT)? {
            ends.insert(format!("{topic}/{partition}"), high);
        }
    }
    Ok(ends)
}

/// What a crashed run of a pass had already put on the log beyond its last checkpoint.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Positions found (records and dead letters).
    pub positions: HashSet<u64>,
    /// Of which records on the quotes topic.
    pub produced: u64,
    /// Of which dead letters.
    pub dead_lettered: u64,
}

impl Recovered {
    /// Counts the record at `position` once, as a dead letter or a produced quote.
    fn count(&mut self, position: u64, dead_letter: bool) {
        if !self.positions.insert(position) {
            return;
        }
        if dead_letter {
            self.dead_lettered += 1;
        } else {
            self.produced += 1;
        }
    }
}

/// Reads every partition in `scan_from` from its offset to its current end and collects the
/// positions beyond `after` of records stamped with `source` and `pass`; `None` if `shutdown`
/// fired first.
///
/// Uses its own consumer without a group (nothing is committed) and stops at the end offsets
/// read at the start, so it never waits on a broker holding fetches at the end of the log.
pub fn recover(
    kafka: &KafkaConfig,
    scan_from: &BTreeMap<String, i64>,
    source: &str,
    pass: u64,
    after: u64,
    dlq_topic: &str,
    shutdown: &CancellationToken,
) -> Result<Option<Recovered>> {
    let mut recovered = Recovered::default();
    let ReadBackPlan {
        assignment,
        mut ends,
    } = ReadBackPlan::new(kafka, scan_from)?;
    if ends.is_empty() {
        return Ok(Some(recovered));
    }
    let to_read: i64 = ends
        .iter()
        .map(|((topic, partition), high)| high - scan_from[&format!("{topic}/{partition}")])
        .sum();
    tracing::info!(
        partitions = ends.len(),
        records = to_read,
        "reading back what the previous run sent after its last checkpoint"
    );
    let consumer = read_back_consumer(kafka, &assignment)?;
    let stamp = PassStamp {
        source,
        pass: pass.to_string(),
    };
    let deadline = Instant::now() + READ_BACK_DEADLINE;
    while !ends.is_empty() {
        if shutdown.is_cancelled() {
            return Ok(None);
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout {
                what: format!(
                    "reading back the previous run's records ({} partition(s) left)",
                    ends.len()
                ),
                after: READ_BACK_DEADLINE,
            });
        }
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message =
            message.map_err(|error| Error::kafka("reading back the previous run", error))?;
        let key = (message.topic().to_string(), message.partition());
        if let Some(end) = ends.get(&key)
            && message.offset() + 1 >= *end
        {
            ends.remove(&key);
        }
        if let Some(position) = message.headers().and_then(|found| stamp.position_in(found))
            && position > after
        {
            recovered.count(position, message.topic() == dlq_topic);
        }
    }
    Ok(Some(recovered))
}

/// The partitions a read-back covers: each from its offset in `scan_from` up to the end it had
/// when the read-back started.
struct ReadBackPlan {
    /// Partitions to read, each at its starting offset.
    assignment: TopicPartitionList,
    /// `(topic, partition)` → end offset; a partition is done once the record just before its end
    /// is read.
    ends: BTreeMap<(String, i32), i64>,
}

impl ReadBackPlan {
    /// Every partition of `scan_from` (keys `topic/partition`) whose log now ends past its
    /// offset; partitions with nothing new are left out.
    fn new(kafka: &KafkaConfig, scan_from: &BTreeMap<String, i64>) -> Result<Self> {
        let mut assignment = TopicPartitionList::new();
        let mut ends: BTreeMap<(String, i32), i64> = BTreeMap::new();
        let topics: std::collections::BTreeSet<&str> = scan_from
            .keys()
            .filter_map(|key| key.rsplit_once('/').map(|(topic, _)| topic))
            .collect();
        for topic in topics {
            for (partition, _low, high) in topic_watermarks(kafka, topic, ADMIN_TIMEOUT)? {
                let Some(&from) = scan_from.get(&format!("{topic}/{partition}")) else {
                    continue;
                };
                if high > from {
                    assignment
                        .add_partition_offset(topic, partition, Offset::Offset(from))
                        .map_err(|error| {
                            Error::kafka("assigning a partition to read back", error)
                        })?;
                    ends.insert((topic.to_string(), partition), high);
                }
            }
        }
        Ok(Self { assignment, ends })
    }
}

/// A consumer that commits nothing, assigned to the partitions of `assignment`.
fn read_back_consumer(
    kafka: &KafkaConfig,
    assignment: &TopicPartitionList,
) -> Result<BaseConsumer> {
    let consumer: BaseConsumer = client_config_with(
        kafka,
        "ingest-readback",
        &[
            ("group.id", "stockstream-ingest-readback"),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "false"),
        ],
    )
    .create()
    .map_err(|error| Error::kafka("creating the read-back consumer", error))?;
    consumer
        .assign(assignment)
        .map_err(|error| Error::kafka("assigning partitions to read back", error))?;
    Ok(consumer)
}

/// The origin a read-back looks for: records of one source and pass.
struct PassStamp<'a> {
    /// Source id (see [`SOURCE_HEADER`]).
    source: &'a str,
    /// The pass, as header text.
    pass: String,
}

impl PassStamp<'_> {
    /// The row position a record's headers carry (its position header, else its line) when they
    /// name this source and pass; `None` otherwise. The last of repeated headers counts.
    fn position_in(&self, found: &BorrowedHeaders) -> Option<u64> {
        let mut same_source = false;
        let mut same_pass = false;
        let mut line = None;
        let mut position = None;
        for header in found.iter() {
            let value = header
                .value
                .and_then(|value| std::str::from_utf8(value).ok());
            match header.key {
                SOURCE_HEADER => same_source = value == Some(self.source),
                SOURCE_PASS_HEADER => same_pass = value == Some(self.pass.as_str()),
                SOURCE_LINE_HEADER => line = value.and_then(|value| value.parse::<u64>().ok()),
                SOURCE_POSITION_HEADER => {
                    position = value.and_then(|value| value.parse::<u64>().ok())
                }
                _ => {}
            }
        }
        if same_source && same_pass {
            position.or(line)
        } else {
            None
        }
    }
}

/// Paces sending at a steady rate of units (rows or trading days) per second.
#[derive(Debug)]
pub struct Pacer {
    started: Instant,
    per_unit: Option<Duration>,
    units: u64,
}

impl Pacer {
    /// `per_second` units per second; `None` sends as fast as possible.
    pub fn new(per_second: Option<f64>) -> Self {
        Self {
            started: Instant::now(),
            per_unit: per_second.map(|rate| Duration::from_secs_f64(1.0 / rate)),
            units: 0,
        }
    }

    /// Waits until the next unit is due; returns `false` if `shutdown` fired meanwhile.
    pub fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        let Some(per_unit) = self.per_unit else {
            return !shutdown.is_cancelled();
        };
        let due = self.started + per_unit.mul_f64(self.units as f64);
        self.units += 1;
        loop {
            if shutdown.is_cancelled() {
                return false;
            }
            let now = Instant::now();
            if now >= due {
                return true;
            }
            std::thread::sleep((due - now).min(Duration::from_millis(100)));
        }
    }
}
