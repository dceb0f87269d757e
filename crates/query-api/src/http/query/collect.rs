//! Rows collected for a JSON answer, within the row and response-size limits.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::engine::Output;
use crate::http::formats::{columns_of, json_rows};
use crate::http::model::ColumnInfo;

/// Rows collected for a JSON answer.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub(crate) schema: Option<SchemaRef>,
    pub(crate) rows: Vec<Vec<Value>>,
    pub(crate) bytes: usize,
    pub(crate) truncated: bool,
}

impl Collected {
    /// Columns of the answer.
    pub(crate) fn columns(&self) -> Vec<ColumnInfo> {
        self.schema
            .as_ref()
            .map(|schema| columns_of(schema))
            .unwrap_or_default()
    }

    fn add(&mut self, batch: &RecordBatch, max_rows: usize, max_bytes: usize) {
        if self.truncated {
            return;
        }
        for row in json_rows(batch) {
            if self.rows.len() >= max_rows {
                self.truncated = true;
                return;
            }
            let size = serde_json::to_vec(&row).map_or(0, |encoded| encoded.len() + 1);
            if self.bytes + size > max_bytes {
                self.truncated = true;
                return;
            }
            self.bytes += size;
            self.rows.push(row);
        }
    }
}

/// Reads `output` into `collected` until it closes (`true`) or `until` passes (`false`).
pub(crate) async fn collect_until(
    output: &mut mpsc::Receiver<Output>,
    collected: &mut Collected,
    until: tokio::time::Instant,
    max_rows: usize,
    max_bytes: usize,
) -> bool {
    loop {
        match tokio::time::timeout_at(until, output.recv()).await {
            Ok(Some(Output::Schema(schema))) => collected.schema = Some(schema),
            Ok(Some(Output::Batch(batch))) => collected.add(&batch, max_rows, max_bytes),
            Ok(None) => return true,
            Err(_elapsed) => return false,
        }
    }
}
