//! Real-time SQL (`query.live_tail`): table `quotes` is the lake plus the records of the live
//! view's tail that the query does not read from the lake.
//!
//! The boundary is exact, per record: a tail record (Kafka partition `P`, offset `O`) is left out
//! when a file the query can see — same snapshot of the catalog and file index as the scan — lies
//! in the record's Hive partition and is named for a range of `P` holding `O` (file names carry the
//! Kafka range: `quotes+P+first+last.parquet`). So a record is counted once whether its flush and
//! its partition's catalog entry happened before the query or not. Before taking the tail, the
//! query waits (up to `query.live_tail_wait`) until the tail has read up to the topic's high
//! watermarks: every record acknowledged before the query started is in it.
//!
//! The tail is the live view's history (`live.history` quotes); records that leave it before their
//! file is visible would be missed, so the history must cover what the sink holds unflushed
//! (`stockstream_live_tail_gaps_total` counts queries where it did not).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arrow::array::{
    ArrayRef, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray, new_null_array,
};
use arrow::datatypes::SchemaRef;
use chrono::Datelike;
use rdkafka::consumer::{BaseConsumer, Consumer};
use stockstream_common::config::KafkaConfig;
use stockstream_common::kafka::client_config;
use stockstream_common::lake::PartitionTemplate;

use stockstream_common::catalog::columns_of;
use stockstream_common::lake::QUOTES_TABLE;

use super::files::{TableFiles, empty_table};
use crate::catalog::{CatalogTable, Partitions, TableDef};
use crate::live::{LiveFeed, LiveQuote};

/// Days from 0001-01-01 (CE) to 1970-01-01, for `Date32`.
const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// Rows of a query that came from the tail (a per-query session extension).
#[derive(Debug, Default)]
pub(crate) struct TailRows(pub(crate) AtomicU64);

/// The live tail as the engine uses it.
pub struct LiveTail {
    feed: LiveFeed,
    template: PartitionTemplate,
    topic: String,
    wait: Duration,
    /// A client of its own for watermarks (never the tail's consumer: see `live/tail.rs`).
    client: Option<Arc<BaseConsumer>>,
    /// Table `quotes` before the catalog has it: the sink's schema, no partitions.
    uncatalogued: Arc<TableFiles>,
}

impl std::fmt::Debug for LiveTail {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("LiveTail")
            .field("topic", &self.topic)
            .field("template", &self.template.to_string())
            .field("wait", &self.wait)
            .finish()
    }
}

impl LiveTail {
    /// The tail of `feed`, laid out in the lake by `template`, catching up with `kafka`'s quotes
    /// topic for up to `wait` before each query.
    pub fn new(
        feed: LiveFeed,
        template: PartitionTemplate,
        kafka: &KafkaConfig,
        wait: Duration,
    ) -> Self {
        let client = client_config(kafka, "query-api-watermarks")
            .create::<BaseConsumer>()
            .map_err(|error| tracing::warn!(%error, "no watermark client; queries do not wait for the tail"))
            .ok()
            .map(Arc::new);
        let columns = columns_of(&template.file_schema()).unwrap_or_default();
        let table = CatalogTable {
            def: Arc::new(TableDef {
                name: QUOTES_TABLE.to_string(),
                location_url: format!("{QUOTES_TABLE}/"),
                lake_location: Some(format!("{QUOTES_TABLE}/")),
                columns,
                partition_keys: template.partition_keys(),
                parameters: Default::default(),
            }),
            partitions: Partitions::Registered(Arc::default()),
        };
        Self {
            feed,
            template,
            topic: kafka.topics.quotes.clone(),
            wait,
            client,
            uncatalogued: Arc::new(empty_table(&table)),
        }
    }

    /// Table `quotes` while the catalog does not have it yet (only the tail answers).
    pub(crate) fn uncatalogued(&self) -> Arc<TableFiles> {
        self.uncatalogued.clone()
    }

    /// Waits until the tail has read every record the topic held when this was called, for up
    /// to the configured wait; returns whether it got there.
    pub(crate) async fn catch_up(&self) -> bool {
        let Some(client) = self.client.clone() else {
            return false;
        };
        let topic = self.topic.clone();
        let timeout = self.wait;
        let ends = tokio::task::spawn_blocking(move || -> Option<Vec<(i32, i64)>> {
            let metadata = client.fetch_metadata(Some(&topic), timeout).ok()?;
            let found = metadata
                .topics()
                .iter()
                .find(|found| found.name() == topic)?;
            found
                .partitions()
                .iter()
                .map(|partition| {
                    client
                        .fetch_watermarks(&topic, partition.id(), timeout)
                        .ok()
                        .map(|(_low, high)| (partition.id(), high))
                })
                .collect()
        })
        .await
        .ok()
        .flatten();
        let Some(ends) = ends else {
            return false;
        };
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            let position = self.feed.position();
            let caught_up = ends.iter().all(|(partition, high)| {
                *high == 0
                    || position
                        .next_offset(*partition)
                        .is_some_and(|next| next >= *high)
            });
            if caught_up {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// The tail's records not in a visible file of `table`, as one batch of the table's schema.
    pub(crate) fn batch(&self, table: &TableFiles) -> datafusion::error::Result<RecordBatch> {
        let covered = coverage(table);
        self.check_reach(&covered);
        let names: Vec<&str> = table
            .partition_fields
            .iter()
            .map(|field| field.name().as_str())
            .collect();
        let mut rows: Vec<(Arc<LiveQuote>, Vec<String>)> = Vec::new();
        for live in self.feed.history() {
            let values: Vec<String> = self
                .template
                .partition(&live.quote)
                .into_iter()
                .map(|value| value.value)
                .collect();
            let in_lake = covered
                .get(&(values.clone(), live.partition))
                .is_some_and(|ranges| {
                    ranges
                        .iter()
                        .any(|(first, last)| *first <= live.offset && live.offset <= *last)
                });
            if !in_lake {
                rows.push((live, values));
            }
        }
        build_batch(&table.schema, &names, &rows)
    }
}

impl LiveTail {
    /// Counts a query whose tail no longer reaches back to the lake: for some partition the
    /// history starts after the highest offset a visible file holds plus one, so records between
    /// them may be in neither (the sink holds more unflushed records than `live.history`).
    fn check_reach(&self, covered: &Coverage) {
        let mut lake_end: HashMap<i32, i64> = HashMap::new();
        for ((_, partition), ranges) in covered {
            let highest = ranges.iter().map(|(_, last)| *last).max().unwrap_or(-1);
            let end = lake_end.entry(*partition).or_insert(-1);
            *end = (*end).max(highest);
        }
        for (partition, start) in self.feed.history_start() {
            let end = lake_end.get(&partition).copied().unwrap_or(-1);
            if start > end + 1 && start > 0 {
                crate::metrics::live_tail_gap();
                tracing::warn!(
                    partition,
                    history_starts_at = start,
                    lake_holds_up_to = end,
                    "the live tail's history does not reach back to the lake; raise live.history"
                );
            }
        }
    }
}

/// Kafka offset ranges (`first`, `last`) of the visible files, by (partition values, Kafka
/// partition).
type Coverage = HashMap<(Vec<String>, i32), Vec<(i64, i64)>>;

fn coverage(table: &TableFiles) -> Coverage {
    let mut covered = Coverage::new();
    for (values, partition) in &table.partitions {
        for location in partition.files.keys() {
            if let Some((kafka_partition, first, last)) = kafka_range(location.as_ref()) {
                covered
                    .entry((values.clone(), kafka_partition))
                    .or_default()
                    .push((first, last));
            }
        }
    }
    covered
}

/// `(partition, first, last)` from a data file named `<topic>+<partition>+<first>+<last>.parquet`.
fn kafka_range(location: &str) -> Option<(i32, i64, i64)> {
    let name = location.rsplit('/').next()?.strip_suffix(".parquet")?;
    let mut parts = name.rsplitn(4, '+');
    let last = parts.next()?.parse().ok()?;
    let first = parts.next()?.parse().ok()?;
    let partition = parts.next()?.parse().ok()?;
    parts.next()?;
    Some((partition, first, last))
}

/// One column per field of `schema`, from the quotes' fields and partition values, cast to the
/// field's type.
fn build_batch(
    schema: &SchemaRef,
    partition_names: &[&str],
    rows: &[(Arc<LiveQuote>, Vec<String>)],
) -> datafusion::error::Result<RecordBatch> {
    let float = |value: fn(&LiveQuote) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|(quote, _)| value(quote)),
        ))
    };
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let name = field.name().as_str();
        let array: ArrayRef = if let Some(index) =
            partition_names.iter().position(|key| *key == name)
        {
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|(_, values)| values[index].as_str()),
            ))
        } else {
            match name {
                "symbol" => Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|(live, _)| live.quote.symbol.as_str()),
                )),
                "trade_date" => Arc::new(Date32Array::from_iter_values(rows.iter().map(
                    |(live, _)| live.quote.trade_date.num_days_from_ce() - UNIX_EPOCH_DAYS_FROM_CE,
                ))),
                "open" => float(|live| live.quote.open),
                "high" => float(|live| live.quote.high),
                "low" => float(|live| live.quote.low),
                "close" => float(|live| live.quote.close),
                "adj_close" => float(|live| live.quote.adj_close),
                "volume" => Arc::new(Int64Array::from_iter_values(
                    rows.iter().map(|(live, _)| live.quote.volume),
                )),
                "close_usd" => Arc::new(Float64Array::from_iter(
                    rows.iter().map(|(live, _)| live.quote.close_usd),
                )),
                "kafka_partition" => Arc::new(Int32Array::from_iter_values(
                    rows.iter().map(|(quote, _)| quote.partition),
                )),
                "kafka_offset" => Arc::new(Int64Array::from_iter_values(
                    rows.iter().map(|(quote, _)| quote.offset),
                )),
                "ingested_at" => Arc::new(
                    TimestampMillisecondArray::from_iter_values(
                        rows.iter().map(|(quote, _)| quote.read_at_ms),
                    )
                    .with_timezone("UTC"),
                ),
                _ => new_null_array(field.data_type(), rows.len()),
            }
        };
        let array = if array.data_type() == field.data_type() {
            array
        } else {
            arrow::compute::cast(&array, field.data_type())?
        };
        columns.push(array);
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Adds `rows` to the query's tail counter, if the session carries one.
pub(crate) fn count_rows(counter: Option<Arc<TailRows>>, rows: usize) {
    if let Some(counter) = counter {
        counter.0.fetch_add(rows as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_give_their_kafka_range() {
        assert_eq!(
            kafka_range(
                "quotes/symbol=HSI/year=1987/quotes+2+00000000000000000010+00000000000000000050.parquet"
            ),
            Some((2, 10, 50))
        );
        assert_eq!(
            kafka_range("quotes/x/my+topic+1+3+4.parquet"),
            Some((1, 3, 4))
        );
        assert_eq!(kafka_range("quotes/_stockstream/catalog.json"), None);
    }
}
