//! Lakes written without a broker: quotes encoded by the sink's own encoder into the sink's
//! layout and file names, then catalogued by the catalog service's own crawl. For tests and
//! benchmarks that need a lake, not a pipeline.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use chrono::{DateTime, Utc};
use stockstream_common::lake::{
    LakeRow, LakeStore, LocalStore, PartitionTemplate, QUOTES_TABLE, data_object_key, encode_quotes,
};
use stockstream_common::record::Quote;

/// How [`write_lake`] cuts files.
#[derive(Debug, Clone, Copy)]
pub struct LakeShape {
    /// Kafka partitions the quotes are spread over (by symbol, as the producer's key does).
    pub kafka_partitions: i32,
    /// Rows of one Kafka partition per flush: each flush writes one file per partition path it
    /// touches, as the sink does (a large number gives one file per path).
    pub rows_per_flush: usize,
}

/// Writes `quotes` (in the order a replay would produce them) into a local lake at `root` with
/// `template`, flush by flush, and returns the number of files written.
pub async fn write_lake(
    root: &Path,
    topic: &str,
    quotes: &[Quote],
    template: &PartitionTemplate,
    shape: LakeShape,
    ingested_at: DateTime<Utc>,
) -> Result<usize> {
    let store = LocalStore::new(root)?;
    let mut by_partition: BTreeMap<i32, Vec<LakeRow>> = BTreeMap::new();
    for quote in quotes {
        let partition = kafka_partition(&quote.symbol, shape.kafka_partitions);
        let rows = by_partition.entry(partition).or_default();
        let offset = rows.len() as i64;
        rows.push(LakeRow {
            quote: quote.clone(),
            kafka_partition: partition,
            kafka_offset: offset,
        });
    }
    let mut files = 0;
    for (partition, rows) in by_partition {
        for flush in rows.chunks(shape.rows_per_flush.max(1)) {
            let mut by_path: BTreeMap<String, Vec<&LakeRow>> = BTreeMap::new();
            for row in flush {
                let mut path = String::new();
                template.write_path(&row.quote, &mut path);
                by_path.entry(path).or_default().push(row);
            }
            for group in by_path.values() {
                let first = group.first().map_or(0, |row| row.kafka_offset);
                let last = group.last().map_or(0, |row| row.kafka_offset);
                let values = template.partition(&group[0].quote);
                let key = data_object_key(QUOTES_TABLE, &values, topic, partition, first, last);
                let bytes = encode_quotes(template, group, ingested_at, 131_072)?;
                store.put(&key, bytes).await?;
                files += 1;
            }
        }
    }
    Ok(files)
}

/// The Kafka partition of a symbol: a stable hash of the key, like a keyed producer.
fn kafka_partition(symbol: &str, partitions: i32) -> i32 {
    let hash = symbol.bytes().fold(2_166_136_261_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(16_777_619)
    });
    (hash % partitions.max(1) as u32) as i32
}

/// Builds the local catalog of the lake at `root` the way `stockstream-glue-crawler crawl` does.
pub async fn catalog_lake(root: &Path, database: &str) -> Result<()> {
    let store = LocalStore::new(root)?;
    let (catalog, _report) = stockstream_glue_crawler::crawl(&store, database, None).await?;
    catalog.save(&store).await?;
    Ok(())
}

/// The quotes of an `indexProcessed.csv`-shaped file, read by plain splitting.
pub fn quotes_of(csv: &Path) -> Result<Vec<Quote>> {
    let text = std::fs::read_to_string(csv)?;
    text.lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            anyhow::ensure!(fields.len() == 9, "{line}: expected 9 fields");
            Ok(Quote {
                symbol: fields[0].to_string(),
                trade_date: chrono::NaiveDate::parse_from_str(fields[1], "%Y-%m-%d")?,
                open: fields[2].parse()?,
                high: fields[3].parse()?,
                low: fields[4].parse()?,
                close: fields[5].parse()?,
                adj_close: fields[6].parse()?,
                volume: fields[7].parse::<f64>()? as i64,
                close_usd: Some(fields[8].parse()?),
            })
        })
        .collect()
}
