//! Lakes written without a broker: quotes encoded by the sink's own encoder into the sink's
//! layout and file names, then catalogued by the catalog service's own crawl. For tests and
//! benchmarks that need a lake, not a pipeline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use stockstream_common::lake::{
    LakeRow, LocalStore, PartitionTemplate, QUOTES_TABLE, data_object_key, encode_quotes,
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
    let mut writer = LakeWriter::new(root, topic, template.clone(), shape, ingested_at);
    for quote in quotes {
        writer.push(quote.clone())?;
    }
    Ok(writer.finish()?.files)
}

/// What a [`LakeWriter`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LakeWritten {
    /// Data files.
    pub files: usize,
    /// Rows in them.
    pub rows: u64,
    /// Bytes in them.
    pub bytes: u64,
}

/// Writes quotes that arrive in replay order into a local lake, flush by flush, the way the sink
/// does: each Kafka partition's rows are buffered, and a flush writes one file per partition path
/// it touches, encoded by the sink's encoder and named by the sink's key scheme. Nothing is held
/// beyond one flush per Kafka partition, so lakes of any size can be written.
///
/// Files are written plainly (no fsync, no staging): a lake for tests and benchmarks, which the
/// sink's own durability tests do not need.
#[derive(Debug)]
pub struct LakeWriter {
    root: PathBuf,
    topic: String,
    template: PartitionTemplate,
    shape: LakeShape,
    ingested_at: DateTime<Utc>,
    buffers: BTreeMap<i32, Vec<LakeRow>>,
    next_offsets: BTreeMap<i32, i64>,
    written: LakeWritten,
}

impl LakeWriter {
    /// A writer into the lake at `root` (created as needed).
    pub fn new(
        root: &Path,
        topic: &str,
        template: PartitionTemplate,
        shape: LakeShape,
        ingested_at: DateTime<Utc>,
    ) -> Self {
        Self {
            root: root.to_path_buf(),
            topic: topic.to_string(),
            template,
            shape,
            ingested_at,
            buffers: BTreeMap::new(),
            next_offsets: BTreeMap::new(),
            written: LakeWritten::default(),
        }
    }

    /// Adds the next quote; flushes its Kafka partition once `rows_per_flush` rows are buffered.
    pub fn push(&mut self, quote: Quote) -> Result<()> {
        let partition = kafka_partition(&quote.symbol, self.shape.kafka_partitions);
        let offset = self.next_offsets.entry(partition).or_insert(0);
        let row = LakeRow {
            quote,
            kafka_partition: partition,
            kafka_offset: *offset,
        };
        *offset += 1;
        let rows = self.buffers.entry(partition).or_default();
        rows.push(row);
        if rows.len() >= self.shape.rows_per_flush.max(1) {
            let rows = std::mem::take(rows);
            self.flush(partition, &rows)?;
        }
        Ok(())
    }

    /// Flushes every Kafka partition's buffered rows now (as a flush interval would).
    pub fn flush_all(&mut self) -> Result<()> {
        for (partition, rows) in std::mem::take(&mut self.buffers) {
            self.flush(partition, &rows)?;
        }
        Ok(())
    }

    /// What was written so far (buffered rows not included).
    pub fn written(&self) -> LakeWritten {
        self.written
    }

    /// Flushes what is left and says what was written.
    pub fn finish(mut self) -> Result<LakeWritten> {
        self.flush_all()?;
        Ok(self.written)
    }

    fn flush(&mut self, partition: i32, rows: &[LakeRow]) -> Result<()> {
        let mut by_path: BTreeMap<String, Vec<&LakeRow>> = BTreeMap::new();
        for row in rows {
            let mut path = String::new();
            self.template.write_path(&row.quote, &mut path);
            by_path.entry(path).or_default().push(row);
        }
        for group in by_path.values() {
            let first = group.first().map_or(0, |row| row.kafka_offset);
            let last = group.last().map_or(0, |row| row.kafka_offset);
            let values = self.template.partition(&group[0].quote);
            let key = data_object_key(QUOTES_TABLE, &values, &self.topic, partition, first, last);
            let bytes = encode_quotes(&self.template, group, self.ingested_at, 131_072)?;
            let path = self.root.join(&key);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).with_context(|| parent.display().to_string())?;
            }
            std::fs::write(&path, &bytes).with_context(|| path.display().to_string())?;
            self.written.files += 1;
            self.written.rows += group.len() as u64;
            self.written.bytes += bytes.len() as u64;
        }
        Ok(())
    }
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
