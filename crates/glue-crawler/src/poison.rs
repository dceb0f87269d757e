//! Events the catalog cannot take are set aside, never retried forever.
//!
//! A `lake.commits` message that is not an event, an event that contradicts itself (a file
//! outside its table, partition values that are not its path), or one whose file is missing or
//! unreadable when the catalog needs it, would otherwise stop the service: its batch fails, is
//! retried, fails again, and every later commit waits behind it. Such a message goes to the
//! dead-letter topic (`kafka.topics.dlq`) with the reason and its origin — the sink's dead-letter
//! headers with stage `glue-crawler` — and is counted
//! (`stockstream_catalog_events_dead_lettered_total`); the rest of its batch is applied, and the
//! offsets are committed only after the dead letters are delivered, so nothing is lost.
//! When Glue refuses a batch as invalid (`InvalidInputException`, say a partition value it does not
//! take) without naming the event, the events are applied one at a time and each one Glue refuses
//! on its own is set aside the same way. Failures of the catalog itself (the lake or Glue
//! unreachable, throttling, missing permissions, a deleted database) are not the event's fault and
//! are retried as before.

use std::time::Duration;

use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use stockstream_common::aws_error::AwsErrorKind;
use stockstream_common::config::KafkaConfig;
use stockstream_common::events::{LAKE_COMMIT_VERSION, LakeCommitEvent};
use stockstream_common::headers::{
    ERROR_HEADER, SOURCE_OFFSET_HEADER, SOURCE_PARTITION_HEADER, SOURCE_TOPIC_HEADER, STAGE_HEADER,
};
use stockstream_common::kafka::{headers, producer_config};
use stockstream_common::lake::parse_partition_path;

use crate::error::{Error, Result};
use crate::metrics;

/// How long a dead letter's delivery may take before the batch is retried.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a message of `lake.commits` came from, and its bytes (what a dead letter carries).
#[derive(Debug, Clone)]
pub(crate) struct Received {
    /// Topic, partition and offset it was read from.
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
}

impl Received {
    /// Copies `message` and decodes its event, or says why it holds none that can be applied.
    pub(crate) fn decode(
        message: &BorrowedMessage<'_>,
    ) -> (Self, std::result::Result<LakeCommitEvent, String>) {
        let payload = message.payload().unwrap_or_default().to_vec();
        let event = if payload.is_empty() {
            Err("the message has no payload".to_string())
        } else {
            serde_json::from_slice::<LakeCommitEvent>(&payload)
                .map_err(|error| format!("not a lake commit event: {error}"))
                .and_then(|event| match check_event(&event) {
                    Some(reason) => Err(reason),
                    None => Ok(event),
                })
        };
        let received = Self {
            topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload,
        };
        (received, event)
    }
}

/// A message set aside, with the reason.
#[derive(Debug, Clone)]
pub(crate) struct SetAside {
    pub message: Received,
    pub reason: String,
}

/// One batch of `lake.commits`: the events to apply (with their messages, index for index) and
/// the messages set aside so far.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    events: Vec<LakeCommitEvent>,
    messages: Vec<Received>,
    pub set_aside: Vec<SetAside>,
}

impl Batch {
    /// Adds a decoded message: its event to apply, or the message set aside with the reason.
    pub(crate) fn push(
        &mut self,
        (message, event): (Received, std::result::Result<LakeCommitEvent, String>),
    ) {
        match event {
            Ok(event) => {
                self.events.push(event);
                self.messages.push(message);
            }
            Err(reason) => self.set_aside.push(SetAside { message, reason }),
        }
    }

    /// Messages in the batch, applicable or not.
    pub(crate) fn len(&self) -> usize {
        self.events.len() + self.set_aside.len()
    }

    /// The events to apply.
    pub(crate) fn events(&self) -> &[LakeCommitEvent] {
        &self.events
    }

    /// Sets aside every event naming `key`, with `reason`; returns whether there was one.
    pub(crate) fn blame(&mut self, key: &str, reason: &str) -> bool {
        let before = self.set_aside.len();
        let mut index = 0;
        while index < self.events.len() {
            if self.events[index].object_key == key {
                self.events.remove(index);
                let message = self.messages.remove(index);
                self.set_aside.push(SetAside {
                    message,
                    reason: reason.to_string(),
                });
            } else {
                index += 1;
            }
        }
        self.set_aside.len() > before
    }
}

/// Why `event` cannot be applied, judged from the event alone; `None` when it is consistent.
pub(crate) fn check_event(event: &LakeCommitEvent) -> Option<String> {
    if event.version != LAKE_COMMIT_VERSION {
        return Some(format!(
            "event version {} is not {LAKE_COMMIT_VERSION}, the version this service reads",
            event.version
        ));
    }
    let valid_name = !event.table.is_empty()
        && event.table.len() <= 255
        && event
            .table
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid_name {
        return Some(format!(
            "table name `{}` is not a catalog name (lowercase letters, digits, `_`)",
            event.table
        ));
    }
    let location = &event.table_location;
    if location.is_empty()
        || !location.ends_with('/')
        || location.starts_with('/')
        || location.split('/').any(|segment| segment == "..")
    {
        return Some(format!(
            "table location `{location}` is not a relative lake prefix ending in `/`"
        ));
    }
    if !event.object_key.starts_with(location.as_str()) {
        return Some(format!(
            "file `{}` is not below its table's location `{location}`",
            event.object_key
        ));
    }
    if !event.object_key.ends_with(".parquet")
        || event.object_key.split('/').any(|segment| segment == "..")
    {
        return Some(format!(
            "file `{}` is not a Parquet data file key",
            event.object_key
        ));
    }
    let key_names: Vec<&str> = event
        .partition_keys
        .iter()
        .map(|key| key.name.as_str())
        .collect();
    let value_names: Vec<&str> = event
        .partition
        .iter()
        .map(|value| value.name.as_str())
        .collect();
    if key_names != value_names {
        return Some(format!(
            "partition values {value_names:?} do not match the partition keys {key_names:?}"
        ));
    }
    // A late file's copy into a compacted generation sits below `_compacted/<path>/g<id>/`.
    let home = stockstream_common::lake::home_key(location, &event.object_key);
    let in_path = parse_partition_path(location.trim_end_matches('/'), &home);
    if in_path.as_ref() != Some(&event.partition) {
        return Some(format!(
            "file `{}` is not in the directory of its partition values",
            event.object_key
        ));
    }
    None
}

/// The lake key an apply error blames, when the error is that key's fault (the file is missing
/// or is not readable Parquet) rather than the catalog's.
pub(crate) fn blamed_key(error: &Error) -> Option<&str> {
    match error {
        Error::Schema { key, .. } => Some(key),
        Error::Common(stockstream_common::Error::NotFound { key }) => Some(key),
        _ => None,
    }
}

/// Whether `error` is the catalog refusing the request itself as invalid (Glue's
/// `InvalidInputException` and other 4xx answers that are not about throttling, permissions or a
/// missing database): retrying the same events would be refused again, so one of them is at
/// fault, not the catalog. Throttling, outages, access denied and a missing database or table
/// are the catalog's state and are retried.
pub(crate) fn rejected_by_catalog(error: &Error) -> bool {
    matches!(
        error,
        Error::Glue {
            kind: AwsErrorKind::Rejected,
            ..
        }
    )
}

/// Judges `outcome`, the result of applying `event` on its own after the catalog refused the
/// batch together ([`rejected_by_catalog`]): an event the catalog refuses on its own, or whose
/// file is at fault ([`blamed_key`]), is set aside with the reason; any other failure is returned,
/// for the caller to retry the batch. (Applying is idempotent, so events the refused batch
/// applied before the refusal are applied again harmlessly.)
pub(crate) fn judge_alone(
    batch: &mut Batch,
    event: &LakeCommitEvent,
    outcome: Result<()>,
) -> Result<()> {
    match outcome {
        Ok(()) => Ok(()),
        Err(error) if rejected_by_catalog(&error) || blamed_key(&error).is_some() => {
            tracing::warn!(%error, key = %event.object_key, "the catalog refused one event; it is set aside");
            batch.blame(
                &event.object_key,
                &format!("the catalog refused the event: {error}"),
            );
            Ok(())
        }
        Err(error) => Err(error),
    }
}

/// The dead-letter topic's producer.
pub(crate) struct DeadLetters {
    producer: FutureProducer,
    topic: String,
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("DeadLetters")
            .field("topic", &self.topic)
            .finish()
    }
}

impl DeadLetters {
    /// A producer for `kafka.topics.dlq`.
    pub(crate) fn new(kafka: &KafkaConfig) -> Result<Self> {
        let producer = producer_config(kafka, "catalog-dead-letters", &[])
            .create()
            .map_err(|error| {
                stockstream_common::Error::kafka("creating the dead-letter producer", error)
            })?;
        Ok(Self {
            producer,
            topic: kafka.topics.dlq.clone(),
        })
    }

    /// Sends every message of `set_aside` and waits for each delivery.
    pub(crate) async fn send(&self, set_aside: &[SetAside]) -> Result<()> {
        for item in set_aside {
            let message = &item.message;
            let partition = message.partition.to_string();
            let offset = message.offset.to_string();
            let record_headers = headers(&[
                (ERROR_HEADER, item.reason.as_str()),
                (STAGE_HEADER, "glue-crawler"),
                (SOURCE_TOPIC_HEADER, message.topic.as_str()),
                (SOURCE_PARTITION_HEADER, partition.as_str()),
                (SOURCE_OFFSET_HEADER, offset.as_str()),
            ]);
            let mut record = FutureRecord::to(&self.topic)
                .payload(&message.payload)
                .headers(record_headers);
            if let Some(key) = &message.key {
                record = record.key(key);
            }
            self.producer
                .send(record, DELIVERY_TIMEOUT)
                .await
                .map_err(|(error, _)| {
                    stockstream_common::Error::kafka("sending a dead letter", error)
                })?;
            tracing::warn!(
                partition = message.partition,
                offset = message.offset,
                reason = %item.reason,
                "lake commit event set aside on the dead-letter topic"
            );
            metrics::events_dead_lettered(1);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, Utc};
    use stockstream_common::lake::PartitionValue;

    use super::*;
    use crate::test_lake::partition_keys;

    fn event() -> LakeCommitEvent {
        let day = NaiveDate::from_ymd_opt(1987, 10, 19).expect("date");
        LakeCommitEvent {
            version: LAKE_COMMIT_VERSION,
            table: "quotes".into(),
            table_location: "quotes/".into(),
            object_key: "quotes/symbol=%5EHSI/year=1987/quotes+0+1+2.parquet".into(),
            partition_keys: partition_keys(),
            partition: vec![
                PartitionValue {
                    name: "symbol".into(),
                    value: "^HSI".into(),
                },
                PartitionValue {
                    name: "year".into(),
                    value: "1987".into(),
                },
            ],
            row_count: 2,
            size_bytes: 100,
            min_trade_date: day,
            max_trade_date: day,
            schema_fingerprint: "f".into(),
            source_topic: "quotes".into(),
            source_partition: 0,
            first_offset: 1,
            last_offset: 2,
            committed_at: Utc::now(),
        }
    }

    #[test]
    fn a_sink_event_passes() {
        assert_eq!(check_event(&event()), None);
        // So does the event of a late file's copy into its partition's generation.
        let mut copy = event();
        copy.object_key = copy.object_key.replacen("quotes/", "quotes/_compacted/", 1);
        let (directory, file) = copy.object_key.rsplit_once('/').expect("a key");
        copy.object_key = format!("{directory}/g0001795730437647/{file}");
        assert_eq!(check_event(&copy), None, "{}", copy.object_key);
    }

    #[test]
    fn each_inconsistency_has_its_reason() {
        type Change = fn(&mut LakeCommitEvent);
        let cases: Vec<(Change, &str)> = vec![
            (|e| e.version = 7, "version 7"),
            (|e| e.table = "Quotes; DROP".into(), "not a catalog name"),
            (
                |e| e.table_location = "/etc/".into(),
                "relative lake prefix",
            ),
            (
                |e| e.table_location = "quotes".into(),
                "relative lake prefix",
            ),
            (
                |e| e.object_key = "other/symbol=HSI/year=1987/x.parquet".into(),
                "not below its table",
            ),
            (
                |e| e.object_key = "quotes/symbol=%5EHSI/year=1987/x.json".into(),
                "not a Parquet data file",
            ),
            (
                |e| e.object_key = "quotes/../symbol=%5EHSI/year=1987/x.parquet".into(),
                "not a Parquet data file",
            ),
            (
                |e| e.partition.truncate(1),
                "do not match the partition keys",
            ),
            (
                |e| e.partition[1].value = "1988".into(),
                "not in the directory of its partition values",
            ),
            (
                |e| {
                    e.object_key =
                        "quotes/_compacted/symbol=%5EHSI/year=1988/g0000000000001/x.parquet".into()
                },
                "not in the directory of its partition values",
            ),
        ];
        for (change, reason) in cases {
            let mut broken = event();
            change(&mut broken);
            let found = check_event(&broken).unwrap_or_default();
            assert!(found.contains(reason), "`{found}` should say `{reason}`");
        }
    }

    #[test]
    fn missing_and_unreadable_files_are_the_event_s_fault() {
        let missing = Error::Common(stockstream_common::Error::NotFound {
            key: "quotes/a.parquet".into(),
        });
        assert_eq!(blamed_key(&missing), Some("quotes/a.parquet"));
        let unreadable = Error::Schema {
            key: "quotes/b.parquet".into(),
            reason: "no footer".into(),
        };
        assert_eq!(blamed_key(&unreadable), Some("quotes/b.parquet"));
        let outage = Error::Glue {
            operation: "BatchCreatePartition",
            kind: stockstream_common::aws_error::AwsErrorKind::Throttled,
            message: "ThrottlingException".into(),
        };
        assert_eq!(blamed_key(&outage), None);
        assert!(!rejected_by_catalog(&outage));
    }

    fn received(offset: i64) -> Received {
        Received {
            topic: "lake.commits".into(),
            partition: 0,
            offset,
            key: None,
            payload: b"{}".to_vec(),
        }
    }

    fn glue_error(kind: stockstream_common::aws_error::AwsErrorKind) -> Error {
        Error::Glue {
            operation: "BatchCreatePartition",
            kind,
            message: "InvalidInputException: a value is too long".into(),
        }
    }

    /// A batch of three events whose second one names `bad`.
    fn batch_with(bad: &str) -> Batch {
        let mut batch = Batch::default();
        for (offset, key) in [
            (1, "quotes/symbol=%5EHSI/year=1987/a.parquet"),
            (2, bad),
            (3, "quotes/symbol=%5EHSI/year=1987/c.parquet"),
        ] {
            let mut each = event();
            each.object_key = key.into();
            batch.push((received(offset), Ok(each)));
        }
        batch
    }

    #[test]
    fn an_event_the_catalog_refuses_is_set_aside_and_the_others_applied() {
        use stockstream_common::aws_error::AwsErrorKind;
        let bad = "quotes/symbol=%5EHSI/year=1987/b.parquet";
        let mut batch = batch_with(bad);
        let mut applied = Vec::new();
        for event in batch.events().to_vec() {
            let outcome = if event.object_key == bad {
                Err(glue_error(AwsErrorKind::Rejected))
            } else {
                applied.push(event.object_key.clone());
                Ok(())
            };
            judge_alone(&mut batch, &event, outcome).expect("judged");
        }
        assert_eq!(applied.len(), 2, "{applied:?}");
        assert!(!applied.iter().any(|key| key == bad));
        assert_eq!(batch.events().len(), 2);
        assert_eq!(batch.set_aside.len(), 1);
        assert_eq!(batch.set_aside[0].message.offset, 2);
        assert!(
            batch.set_aside[0].reason.contains("InvalidInputException"),
            "{}",
            batch.set_aside[0].reason
        );
    }

    #[test]
    fn an_outage_while_isolating_is_returned_for_the_batch_to_be_retried() {
        use stockstream_common::aws_error::AwsErrorKind;
        let mut batch = batch_with("quotes/symbol=%5EHSI/year=1987/b.parquet");
        let first = batch.events()[0].clone();
        let outcome = judge_alone(&mut batch, &first, Err(glue_error(AwsErrorKind::Throttled)));
        assert!(outcome.is_err_and(|error| error.is_retryable()));
        assert!(batch.set_aside.is_empty(), "nothing is blamed on an outage");
        assert_eq!(batch.events().len(), 3);
        assert!(rejected_by_catalog(&glue_error(AwsErrorKind::Rejected)));
        assert!(!rejected_by_catalog(&glue_error(
            AwsErrorKind::AccessDenied
        )));
        assert!(!rejected_by_catalog(&glue_error(AwsErrorKind::NotFound)));
    }
}
