//! The `partitions` strategy: new partitions registered with `BatchCreatePartition`, at most
//! [`BATCH_LIMIT`] per call; `AlreadyExistsException` counts as success, other per-partition
//! errors are retried, then reported.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use aws_sdk_glue::types::PartitionInput;
use stockstream_common::aws_error::AwsErrorKind;
use stockstream_common::catalog::Column;
use stockstream_common::events::LakeCommitEvent;
use stockstream_common::lake::partition_path;

use super::{GlueCatalog, GlueOutcome, TableState, glue_error, storage_descriptor};
use crate::error::{Error, Result};
use crate::tables::{file_columns, require_file};

/// Most partitions per `BatchCreatePartition` call (Glue's limit).
const BATCH_LIMIT: usize = 100;
/// Attempts for partitions that fail with a retryable error.
const PARTITION_ATTEMPTS: u32 = 3;

/// A partition to register: its values and its location.
type Wanted = (Vec<String>, String);

/// Glue's answer to one `BatchCreatePartition` call, by partition values.
#[derive(Debug, Default)]
struct ChunkAnswer {
    /// Partitions that already existed (a success).
    existing: HashSet<Vec<String>>,
    /// Partitions that failed otherwise (retried).
    failed: HashSet<Vec<String>>,
    /// Those failures, in words.
    errors: Vec<String>,
    /// The kind of the last failure (by its error code), if any.
    kind: Option<AwsErrorKind>,
}

impl GlueCatalog {
    /// Registers the partitions of `events` that `table` lacks in Glue.
    pub(super) async fn register_partitions(
        &mut self,
        table: &str,
        events: &[&LakeCommitEvent],
        outcome: &mut GlueOutcome,
    ) -> Result<()> {
        let Some(state) = self.tables.get(table) else {
            return Ok(());
        };
        let wanted = self.wanted_partitions(state, events).await?;
        if wanted.is_empty() {
            return Ok(());
        }
        // The table's columns are known; only a table registered by someone else without any
        // makes the footer of a file necessary.
        let columns = if state.columns.is_empty() {
            let key = events
                .last()
                .map(|event| event.object_key.clone())
                .unwrap_or_default();
            file_columns(self.store.as_ref(), &key).await?
        } else {
            state.columns.clone()
        };
        self.create_partitions(table, wanted.into_iter().collect(), &columns, outcome)
            .await
    }

    /// The partitions of `events` the table (`state`) lacks, with their locations; each one's
    /// file must exist in the lake.
    async fn wanted_partitions(
        &self,
        state: &TableState,
        events: &[&LakeCommitEvent],
    ) -> Result<BTreeMap<Vec<String>, String>> {
        let mut wanted: BTreeMap<Vec<String>, String> = BTreeMap::new();
        for event in events {
            let values: Vec<String> = event
                .partition
                .iter()
                .map(|value| value.value.clone())
                .collect();
            if !state.partitions.contains(&values) && !wanted.contains_key(&values) {
                require_file(self.store.as_ref(), &event.object_key).await?;
                let location = format!(
                    "{}{}/",
                    self.location(&event.table_location),
                    partition_path(&event.partition)
                );
                wanted.insert(values, location);
            }
        }
        Ok(wanted)
    }

    /// Creates `pending` in chunks of [`BATCH_LIMIT`], retrying the partitions that fail up to
    /// [`PARTITION_ATTEMPTS`] times; counts registered and already existing ones in `outcome`.
    async fn create_partitions(
        &mut self,
        table: &str,
        mut pending: Vec<Wanted>,
        columns: &[Column],
        outcome: &mut GlueOutcome,
    ) -> Result<()> {
        let mut attempt = 0;
        while !pending.is_empty() {
            attempt += 1;
            let mut retry = Vec::new();
            let mut last_errors = Vec::new();
            let mut last_kind = None;
            for chunk in pending.chunks(BATCH_LIMIT) {
                let answer = self.create_chunk(table, chunk, columns).await?;
                for (values, location) in chunk {
                    if answer.failed.contains(values) {
                        retry.push((values.clone(), location.clone()));
                        continue;
                    }
                    if let Some(state) = self.tables.get_mut(table) {
                        state.partitions.insert(values.clone());
                    }
                    if answer.existing.contains(values) {
                        outcome.partitions_existing += 1;
                    } else {
                        outcome.partitions_registered += 1;
                    }
                }
                last_errors.extend(answer.errors);
                last_kind = answer.kind.or(last_kind);
            }
            if retry.is_empty() {
                break;
            }
            if attempt >= PARTITION_ATTEMPTS {
                return Err(Error::Glue {
                    operation: "BatchCreatePartition",
                    kind: last_kind.unwrap_or(AwsErrorKind::Rejected),
                    message: format!(
                        "{} partition(s) still failing after {attempt} attempts: {}",
                        retry.len(),
                        last_errors.join("; ")
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            pending = retry;
        }
        Ok(())
    }

    /// One `BatchCreatePartition` call for `chunk`; `AlreadyExistsException` counts as existing.
    async fn create_chunk(
        &self,
        table: &str,
        chunk: &[Wanted],
        columns: &[Column],
    ) -> Result<ChunkAnswer> {
        let inputs = chunk
            .iter()
            .map(|(values, location)| {
                Ok(PartitionInput::builder()
                    .set_values(Some(values.clone()))
                    .storage_descriptor(storage_descriptor(columns, location)?)
                    .build())
            })
            .collect::<Result<Vec<_>>>()?;
        let answer = self
            .client
            .batch_create_partition()
            .database_name(&self.database)
            .table_name(table)
            .set_partition_input_list(Some(inputs))
            .send()
            .await
            .map_err(|error| glue_error("BatchCreatePartition", error))?;
        let mut chunk_answer = ChunkAnswer::default();
        for error in answer.errors() {
            let values = error.partition_values().to_vec();
            let code = error
                .error_detail()
                .and_then(|detail| detail.error_code())
                .unwrap_or("");
            if code == "AlreadyExistsException" {
                chunk_answer.existing.insert(values);
            } else {
                let message = error
                    .error_detail()
                    .and_then(|detail| detail.error_message())
                    .unwrap_or("");
                chunk_answer
                    .errors
                    .push(format!("{values:?}: {code} {message}"));
                chunk_answer.kind = Some(AwsErrorKind::from_response(Some(code), None));
                chunk_answer.failed.insert(values);
            }
        }
        Ok(chunk_answer)
    }
}
