//! Turns a batch of consumed rows into the Parquet files of their partitions.

use std::collections::HashMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use stockstream_common::events::{LAKE_COMMIT_VERSION, LakeCommitEvent};
use stockstream_common::lake::{
    LakeRow, PartitionTemplate, QUOTES_TABLE, data_object_key, encode_quotes,
};

use crate::error::Result;

/// Bytes per buffered row a flush needs besides the rows themselves (two `u32` per row to group
/// them); the sink counts them in its memory budget.
pub(crate) const FLUSH_WORKSPACE_PER_ROW: usize = 2 * std::mem::size_of::<u32>();

/// One file to write: its key, its announcement and its bytes.
#[derive(Debug)]
pub(crate) struct EncodedFile {
    pub(crate) event: LakeCommitEvent,
    pub(crate) bytes: Bytes,
}

/// Groups rows of one Kafka partition by lake partition and encodes one file per group.
///
/// Deterministic: the same rows (in offset order) and `ingested_at` give the same keys and bytes.
pub(crate) fn encode_files(
    template: &PartitionTemplate,
    topic: &str,
    kafka_partition: i32,
    mut rows: Vec<LakeRow>,
    ingested_at: DateTime<Utc>,
    row_group_size: usize,
    schema_fingerprint: &str,
) -> Result<Vec<EncodedFile>> {
    let run_lengths = group_by_path(template, &mut rows);
    let encoder = FileEncoder {
        template,
        topic,
        kafka_partition,
        ingested_at,
        row_group_size,
        schema_fingerprint,
    };
    let mut files = Vec::with_capacity(run_lengths.len());
    let mut start = 0;
    for length in run_lengths {
        let run = &rows[start..start + length];
        start += length;
        if let Some(file) = encoder.encode(run)? {
            files.push(file);
        }
    }
    Ok(files)
}

/// Groups the rows in place, without copying the buffer (the memory budget counts it once, plus
/// [`FLUSH_WORKSPACE_PER_ROW`]): number the partition paths, order the numbers by path (files
/// come out in path order), then permute the rows so that each path's rows, in offset order, are
/// one contiguous run. Returns the length of each path's run, in path order.
fn group_by_path(template: &PartitionTemplate, rows: &mut [LakeRow]) -> Vec<usize> {
    if !rows.is_sorted_by_key(|row| row.kafka_offset) {
        rows.sort_by_key(|row| row.kafka_offset);
    }
    let mut groups = PathGroups::number(template, rows);
    let target = groups.destinations();
    apply_permutation(rows, target);
    debug_assert!(is_grouped(template, rows, &groups.order));
    groups.run_lengths()
}

/// The distinct partition paths of a batch, numbered in order of first appearance.
struct PathGroups {
    /// Each path with its number, in path order.
    order: Vec<(String, u32)>,
    /// Rows per path number.
    counts: Vec<usize>,
    /// The path number of each row.
    group_of: Vec<u32>,
}

impl PathGroups {
    /// Numbers the partition path of every row.
    fn number(template: &PartitionTemplate, rows: &[LakeRow]) -> Self {
        let mut path = String::new();
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut counts: Vec<usize> = Vec::new();
        let mut group_of: Vec<u32> = Vec::with_capacity(rows.len());
        for row in rows {
            path.clear();
            template.write_path(&row.quote, &mut path);
            let id = match ids.get(&path) {
                Some(id) => *id,
                None => {
                    let id = counts.len() as u32;
                    ids.insert(path.clone(), id);
                    counts.push(0);
                    id
                }
            };
            counts[id as usize] += 1;
            group_of.push(id);
        }
        let mut order: Vec<(String, u32)> = ids.into_iter().collect();
        order.sort_unstable();
        Self {
            order,
            counts,
            group_of,
        }
    }

    /// `target[i]`: where row `i` goes once the rows are grouped; filling each run in offset
    /// order keeps it in offset order. Reuses the per-row path numbers' memory.
    fn destinations(&mut self) -> Vec<u32> {
        // Where each group's run starts once the rows are grouped.
        let mut next_slot = vec![0u32; self.counts.len()];
        let mut start = 0;
        for (_, id) in &self.order {
            next_slot[*id as usize] = start as u32;
            start += self.counts[*id as usize];
        }
        let mut target = std::mem::take(&mut self.group_of);
        for slot in target.iter_mut() {
            let id = *slot as usize;
            *slot = next_slot[id];
            next_slot[id] += 1;
        }
        target
    }

    /// The number of rows of each path, in path order.
    fn run_lengths(&self) -> Vec<usize> {
        self.order
            .iter()
            .map(|(_, id)| self.counts[*id as usize])
            .collect()
    }
}

/// Moves row `i` to `target[i]`, in place, cycle by cycle.
fn apply_permutation(rows: &mut [LakeRow], mut target: Vec<u32>) {
    for index in 0..rows.len() {
        while target[index] as usize != index {
            let destination = target[index] as usize;
            rows.swap(index, destination);
            target.swap(index, destination);
        }
    }
}

/// Whether the rows come in path order (`order` lists the paths sorted), each path's rows in
/// offset order.
fn is_grouped(template: &PartitionTemplate, rows: &[LakeRow], order: &[(String, u32)]) -> bool {
    let mut path = String::new();
    rows.is_sorted_by_key(|row| {
        path.clear();
        template.write_path(&row.quote, &mut path);
        (
            order
                .binary_search_by(|(other, _)| other.as_str().cmp(&path))
                .ok(),
            row.kafka_offset,
        )
    })
}

/// Encodes one run of rows (one partition path, in offset order) into a file and its
/// announcement.
struct FileEncoder<'a> {
    template: &'a PartitionTemplate,
    topic: &'a str,
    kafka_partition: i32,
    ingested_at: DateTime<Utc>,
    row_group_size: usize,
    schema_fingerprint: &'a str,
}

impl FileEncoder<'_> {
    /// The file of `rows`, named by their partition and offset range; `None` for no rows.
    fn encode(&self, rows: &[LakeRow]) -> Result<Option<EncodedFile>> {
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return Ok(None);
        };
        let partition = self.template.partition(&first.quote);
        let object_key = data_object_key(
            QUOTES_TABLE,
            &partition,
            self.topic,
            self.kafka_partition,
            first.kafka_offset,
            last.kafka_offset,
        );
        let (first_offset, last_offset) = (first.kafka_offset, last.kafka_offset);
        let min_trade_date = rows.iter().map(|row| row.quote.trade_date).min();
        let max_trade_date = rows.iter().map(|row| row.quote.trade_date).max();
        let (Some(min_trade_date), Some(max_trade_date)) = (min_trade_date, max_trade_date) else {
            return Ok(None);
        };
        let bytes = encode_quotes(self.template, rows, self.ingested_at, self.row_group_size)?;
        Ok(Some(EncodedFile {
            event: LakeCommitEvent {
                version: LAKE_COMMIT_VERSION,
                table: QUOTES_TABLE.to_string(),
                table_location: format!("{QUOTES_TABLE}/"),
                object_key,
                partition_keys: self.template.partition_keys(),
                partition,
                row_count: rows.len() as u64,
                size_bytes: bytes.len() as u64,
                min_trade_date,
                max_trade_date,
                schema_fingerprint: self.schema_fingerprint.to_string(),
                source_topic: self.topic.to_string(),
                source_partition: self.kafka_partition,
                first_offset,
                last_offset,
                committed_at: self.ingested_at,
            },
            bytes,
        }))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::NaiveDate;
    use stockstream_common::record::Quote;

    /// A quote of `symbol` on 1 March `year`, read at `offset` of Kafka partition 0.
    pub(crate) fn row(offset: i64, symbol: &str, year: i32) -> LakeRow {
        LakeRow {
            quote: Quote {
                symbol: symbol.into(),
                trade_date: NaiveDate::from_ymd_opt(year, 3, 1).expect("date"),
                open: 2.0,
                high: 3.0,
                low: 1.0,
                close: 2.5,
                adj_close: 2.5,
                volume: 7,
                close_usd: Some(0.3),
            },
            kafka_partition: 0,
            kafka_offset: offset,
        }
    }

    #[test]
    fn one_file_per_partition_named_by_its_offsets() {
        let at = Utc::now();
        let rows = vec![
            row(5, "HSI", 1987),
            row(6, "N225", 1987),
            row(7, "HSI", 1988),
            row(8, "HSI", 1987),
        ];
        let template = PartitionTemplate::default();
        let files = encode_files(&template, "quotes", 0, rows, at, 1024, "fp").expect("encodes");
        let keys: Vec<_> = files
            .iter()
            .map(|file| file.event.object_key.as_str())
            .collect();
        assert_eq!(
            keys,
            vec![
                "quotes/symbol=HSI/year=1987/quotes+0+00000000000000000005+00000000000000000008.parquet",
                "quotes/symbol=HSI/year=1988/quotes+0+00000000000000000007+00000000000000000007.parquet",
                "quotes/symbol=N225/year=1987/quotes+0+00000000000000000006+00000000000000000006.parquet",
            ]
        );
        assert_eq!(files[0].event.row_count, 2);
        let again = encode_files(
            &template,
            "quotes",
            0,
            vec![row(5, "HSI", 1987), row(8, "HSI", 1987)],
            at,
            1024,
            "fp",
        )
        .expect("encodes");
        assert_eq!(again[0].bytes, files[0].bytes, "same rows, same bytes");

        // Many interleaved paths (and rows out of offset order) give the same files as the
        // rows of each path encoded on their own.
        let mixed: Vec<LakeRow> = (0..300)
            .rev()
            .map(|offset| {
                row(
                    offset,
                    ["A", "B", "C"][(offset % 3) as usize],
                    1990 + (offset % 7) as i32,
                )
            })
            .collect();
        let grouped =
            encode_files(&template, "quotes", 0, mixed.clone(), at, 1024, "fp").expect("encodes");
        assert_eq!(grouped.len(), 21);
        for file in &grouped {
            let mut own: Vec<LakeRow> = mixed
                .iter()
                .filter(|row| template.partition(&row.quote) == file.event.partition)
                .cloned()
                .collect();
            own.reverse();
            let alone = encode_files(&template, "quotes", 0, own, at, 1024, "fp").expect("encodes");
            assert_eq!(alone.len(), 1);
            assert_eq!(alone[0].event.object_key, file.event.object_key);
            assert_eq!(alone[0].bytes, file.bytes);
        }
    }

    /// Part of `make bench-sink`: the broker-free rate of the sink's own work on one core —
    /// decode JSON messages, build Arrow columns, encode zstd Parquet. Run in release mode.
    #[test]
    #[ignore = "a benchmark: run with `make bench-sink`"]
    fn encode_rate() {
        use stockstream_common::record::Quote;
        const ROWS: usize = 1_000_000;
        let day = chrono::NaiveDate::from_ymd_opt(1990, 1, 1).expect("date");
        let payloads: Vec<Vec<u8>> = (0..ROWS)
            .map(|index| {
                Quote {
                    symbol: format!("SYN{}", index % 40),
                    trade_date: day + chrono::Days::new((index / 40) as u64),
                    open: 100.0 + (index % 97) as f64,
                    high: 210.5,
                    low: 99.25,
                    close: 150.125 + (index % 13) as f64,
                    adj_close: 150.125,
                    volume: index as i64,
                    close_usd: Some(19.5),
                }
                .to_json()
            })
            .collect();
        let started = std::time::Instant::now();
        let rows: Vec<LakeRow> = payloads
            .iter()
            .enumerate()
            .map(|(offset, payload)| LakeRow {
                quote: Quote::from_any_json(payload).expect("decodes").0,
                kafka_partition: 0,
                kafka_offset: offset as i64,
            })
            .collect();
        let template = PartitionTemplate::default();
        let files =
            encode_files(&template, "quotes", 0, rows, Utc::now(), 131_072, "f").expect("encodes");
        let seconds = started.elapsed().as_secs_f64();
        let bytes: u64 = files.iter().map(|file| file.event.size_bytes).sum();
        println!(
            "encode: {ROWS} JSON messages -> {} Parquet files ({bytes} bytes) in {seconds:.2}s: {:.0} rows/s on one core",
            files.len(),
            ROWS as f64 / seconds
        );
    }
}
