//! One partition's compaction: its inputs merged per Kafka partition into a new generation
//! (`<table>/_compacted/<path>/g<id>/`), the manifest written, then the swap ([`super::swap`]).

use std::time::Instant;

use bytes::Bytes;
use chrono::Utc;

use super::generation::{FileRecord, MANIFEST, Manifest, encode};
use super::plan::{self, Candidate, Input};
use super::{CatalogPartition, Compactor, Exclusive, PartitionReport, merge};
use crate::error::{Error, Result};

impl Compactor {
    /// Merges one partition into a new generation and swaps the catalog to it; `None` when the
    /// partition changed meanwhile (it waits for the next round).
    pub(super) async fn compact(
        &self,
        candidate: Candidate,
        exclusive: &mut Exclusive<'_>,
    ) -> Result<Option<PartitionReport>> {
        let started = Instant::now();
        let partition = &candidate.partition;
        let location = partition.generation_location(new_generation_id(partition));
        let Some((outputs, rows)) = self.merge_into(&candidate.inputs, &location).await? else {
            return Ok(None);
        };
        let mut manifest = Manifest {
            table: partition.table.clone(),
            path: partition.path.clone(),
            previous_location: partition.location.clone(),
            created_at: Utc::now(),
            inputs: candidate
                .inputs
                .iter()
                .map(|input| FileRecord {
                    key: input.key.clone(),
                    size: input.size,
                    rows: None,
                })
                .collect(),
            outputs,
        };
        self.write_manifest(&location, &manifest).await?;
        let Some(late_files) = self
            .swap(partition, &location, &mut manifest, exclusive)
            .await?
        else {
            return Ok(None);
        };
        let report = PartitionReport {
            table: partition.table.clone(),
            path: partition.path.clone(),
            generation: location,
            files_in: candidate.inputs.len(),
            files_out: manifest.outputs.len(),
            bytes_in: candidate.inputs.iter().map(|input| input.size).sum(),
            bytes_out: manifest.outputs.iter().map(|output| output.size).sum(),
            rows,
            late_files,
            seconds: started.elapsed().as_secs_f64(),
        };
        tracing::info!(
            table = %report.table,
            partition = %report.path,
            files_in = report.files_in,
            files_out = report.files_out,
            bytes_in = report.bytes_in,
            bytes_out = report.bytes_out,
            late_files,
            "partition compacted"
        );
        Ok(Some(report))
    }

    /// Writes one merged file per group of `inputs` into the generation at `location`; returns
    /// the files written and their rows, or `None` (and nothing left behind) if an input vanished.
    async fn merge_into(
        &self,
        inputs: &[Input],
        location: &str,
    ) -> Result<Option<(Vec<FileRecord>, u64)>> {
        let mut outputs = Vec::new();
        let mut rows = 0;
        for (span, files) in plan::group(inputs, self.config.target_file_bytes) {
            let Some(contents) = self.read_inputs(&files, location).await? else {
                return Ok(None);
            };
            let (bytes, count) = self.merge_group(contents).await?;
            rows += count.unwrap_or(0);
            let key = format!("{location}{}", span.file_name());
            let size = bytes.len() as u64;
            self.store.put(&key, bytes).await?;
            outputs.push(FileRecord {
                key,
                size,
                rows: count,
            });
        }
        Ok(Some((outputs, rows)))
    }

    /// The contents of `files`; `None` once the generation at `location` is deleted because one
    /// of them vanished.
    async fn read_inputs(
        &self,
        files: &[Input],
        location: &str,
    ) -> Result<Option<Vec<(String, Bytes)>>> {
        let mut contents = Vec::with_capacity(files.len());
        for input in files {
            match self.store.get(&input.key).await {
                Ok(bytes) => contents.push((input.key.clone(), bytes)),
                // Deleted under us (a crawl, a person): try again next round.
                Err(stockstream_common::Error::NotFound { key }) => {
                    tracing::warn!(%key, "a file to compact vanished; the partition waits for the next round");
                    self.delete_prefix(location).await?;
                    return Ok(None);
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(Some(contents))
    }

    /// One merged file from `contents` and its row count (a single file is kept as it is, rows
    /// uncounted).
    async fn merge_group(
        &self,
        mut contents: Vec<(String, Bytes)>,
    ) -> Result<(Bytes, Option<u64>)> {
        if contents.len() == 1 {
            return Ok((contents.remove(0).1, None));
        }
        let sort = self.config.sort_by_trade_date;
        let (bytes, count) =
            tokio::task::spawn_blocking(move || merge::merge_files(&contents, sort))
                .await
                .map_err(|join| Error::Merge(join.to_string()))??;
        Ok((bytes, Some(count)))
    }

    /// Writes (or rewrites) the manifest of the generation at `location`.
    pub(super) async fn write_manifest(&self, location: &str, manifest: &Manifest) -> Result<()> {
        self.store
            .put(
                &format!("{location}{MANIFEST}"),
                encode("a manifest", manifest)?,
            )
            .await?;
        Ok(())
    }
}

/// A generation id newer than `partition`'s current one: the time in milliseconds, or one more
/// than the current id if that is larger.
fn new_generation_id(partition: &CatalogPartition) -> u64 {
    (Utc::now().timestamp_millis().max(0) as u64)
        .max(partition.current_generation().map_or(0, |id| id + 1))
}
