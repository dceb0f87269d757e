//! Query engines behind one small trait, and the execution model they share.
//!
//! An engine takes a [`QueryRequest`] (SQL that passed the [guard](crate::guard), parameters,
//! limits) and returns an [`Execution`]: a bounded channel of [`Output`] (the schema, then record
//! batches as they are produced) and a [`watch`] of the query's [`QueryStatus`]. The HTTP layer
//! streams the batches to the client, collects them into one JSON answer, or — for a query not
//! done within `query.sync_wait` — keeps them for `GET /v1/queries/{id}/results`. Cancelling the
//! execution's token stops the query (DataFusion drops its plan; Athena gets `StopQueryExecution`).
//!
//! - [`datafusion`]: Apache DataFusion in the process over the lake (local disk or S3), with the
//!   tables of the local catalog or AWS Glue;
//! - [`athena`]: Amazon Athena.

pub mod athena;
pub mod datafusion;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::config::EngineKind;
use crate::error::{Error, Result};
use crate::guard::CheckedSql;

/// Batches buffered between an engine and the HTTP response: small, so a slow client slows the
/// query down instead of growing memory.
pub const OUTPUT_BUFFER: usize = 4;

/// A value bound to a `?` placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string (also how dates and timestamps are passed: `CAST(? AS DATE)`).
    Text(String),
}

impl Param {
    /// Reads a JSON scalar; arrays and objects are refused.
    pub fn from_json(position: usize, value: &serde_json::Value) -> Result<Self> {
        use serde_json::Value;
        Ok(match value {
            Value::Null => Param::Null,
            Value::Bool(flag) => Param::Bool(*flag),
            Value::Number(number) => match number.as_i64() {
                Some(integer) => Param::Int(integer),
                None => Param::Float(number.as_f64().ok_or_else(|| {
                    Error::BadRequest(format!("params[{position}]: {number} is out of range"))
                })?),
            },
            Value::String(text) => Param::Text(text.clone()),
            Value::Array(_) | Value::Object(_) => {
                return Err(Error::BadRequest(format!(
                    "params[{position}]: only null, booleans, numbers and strings can be bound"
                )));
            }
        })
    }
}

/// A query that passed the guard, ready for an engine.
#[derive(Debug, Clone)]
pub struct QueryRequest {
    /// The id the API gave the query (also Athena's `ClientRequestToken` source).
    pub id: String,
    /// The SQL text as the client sent it.
    pub sql: String,
    /// The parsed, checked statement.
    pub checked: CheckedSql,
    /// Values of the `?` placeholders, in order.
    pub params: Vec<Param>,
    /// Most rows the client will read; an engine may stop after `max_rows + 1`.
    pub max_rows: usize,
    /// Longest the query may run.
    pub timeout: Duration,
}

/// One item an execution produces.
#[derive(Debug)]
pub enum Output {
    /// The result's schema, always first.
    Schema(SchemaRef),
    /// A batch of rows.
    Batch(RecordBatch),
}

/// Lifecycle of a query, named as Athena names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QueryState {
    /// Accepted, waiting for the engine.
    Queued,
    /// Executing.
    Running,
    /// Done; every row was produced.
    Succeeded,
    /// Failed; `error` says why.
    Failed,
    /// Stopped by a client, a disconnect or a timeout.
    Cancelled,
}

impl QueryState {
    /// Whether the query will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            QueryState::Succeeded | QueryState::Failed | QueryState::Cancelled
        )
    }

    /// The state's name as serialized.
    pub fn name(self) -> &'static str {
        match self {
            QueryState::Queued => "QUEUED",
            QueryState::Running => "RUNNING",
            QueryState::Succeeded => "SUCCEEDED",
            QueryState::Failed => "FAILED",
            QueryState::Cancelled => "CANCELLED",
        }
    }
}

/// How a query ran. Engine-specific fields are absent when they do not apply.
#[derive(Debug, Clone, Default, Serialize, PartialEq, ToSchema)]
pub struct QueryStats {
    /// Engine that answered (`datafusion` or `athena`).
    pub engine: &'static str,
    /// Rows returned to the client.
    pub rows: usize,
    /// Whether rows were cut at the row or response-size limit.
    pub truncated: bool,
    /// Time from request to the last row, in milliseconds.
    pub elapsed_ms: f64,
    /// Bytes the engine read from the lake (Athena: `DataScannedInBytes`).
    pub bytes_scanned: u64,
    /// DataFusion: data files the plan read after partition pruning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files_scanned: Option<u64>,
    /// DataFusion: catalogued partitions the plan kept after pruning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions_scanned: Option<u64>,
    /// DataFusion with `query.live_tail`: rows read from the live tail rather than the lake.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tail_rows: Option<u64>,
    /// Athena: the `QueryExecutionId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub athena_query_id: Option<String>,
    /// Athena: `EngineExecutionTimeInMillis`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine_execution_ms: Option<u64>,
    /// Athena: `QueryQueueTimeInMillis`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_ms: Option<u64>,
    /// Athena: whether a previous query's results were reused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_reused: Option<bool>,
}

/// The current state of a query, published by its engine.
#[derive(Debug, Clone)]
pub struct QueryStatus {
    /// Lifecycle state.
    pub state: QueryState,
    /// Statistics so far (final once the state is terminal).
    pub stats: QueryStats,
    /// Why it failed or was cancelled.
    pub error: Option<Arc<Error>>,
}

impl QueryStatus {
    /// A new status in `state` for `engine`.
    pub fn new(engine: EngineKind, state: QueryState) -> Self {
        Self {
            state,
            stats: QueryStats {
                engine: engine.name(),
                ..QueryStats::default()
            },
            error: None,
        }
    }
}

/// A running query.
#[derive(Debug)]
pub struct Execution {
    /// Schema, then batches; closed when the query ended. The engine publishes the final state
    /// (and the error of a failed query) in `status` before it closes the channel.
    pub output: mpsc::Receiver<Output>,
    /// State and statistics, updated by the engine.
    pub status: watch::Receiver<QueryStatus>,
    /// Cancels the query.
    pub cancel: CancellationToken,
    /// When the engine accepted it.
    pub started: Instant,
}

/// Executes read-only SQL over the catalogued tables.
#[async_trait::async_trait]
pub trait QueryEngine: Send + Sync + std::fmt::Debug {
    /// Which engine this is.
    fn kind(&self) -> EngineKind;

    /// Starts `request`; returns once the engine accepted it (Athena: `StartQueryExecution`
    /// answered). Errors found before execution (planning, a refused request) are returned here.
    async fn start(&self, request: QueryRequest) -> Result<Execution>;

    /// Data files of `table` the engine would read (the embedded engine's index), if it knows.
    fn visible_files(&self, _table: &str) -> Option<u64> {
        None
    }
}

/// Publishes status changes and output of one execution; engines drive it from their task.
#[derive(Debug)]
pub(crate) struct ExecutionSink {
    pub(crate) output: mpsc::Sender<Output>,
    pub(crate) status: watch::Sender<QueryStatus>,
    pub(crate) cancel: CancellationToken,
}

impl ExecutionSink {
    /// A sink and the [`Execution`] it feeds.
    pub(crate) fn channel(engine: EngineKind) -> (Self, Execution) {
        let (output_tx, output_rx) = mpsc::channel(OUTPUT_BUFFER);
        let (status_tx, status_rx) = watch::channel(QueryStatus::new(engine, QueryState::Queued));
        let cancel = CancellationToken::new();
        (
            Self {
                output: output_tx,
                status: status_tx,
                cancel: cancel.clone(),
            },
            Execution {
                output: output_rx,
                status: status_rx,
                cancel,
                started: Instant::now(),
            },
        )
    }

    /// Updates the published status.
    pub(crate) fn update(&self, change: impl FnOnce(&mut QueryStatus)) {
        self.status.send_modify(change);
    }

    /// Sends one output item; `false` when the receiver is gone (the client left).
    pub(crate) async fn send(&self, item: Output) -> bool {
        self.output.send(item).await.is_ok()
    }

    /// Publishes the final state: succeeded, or failed/cancelled with `error`. Consumes the sink,
    /// so the output channel closes after the final state is visible.
    pub(crate) fn finish(self, outcome: Result<()>) {
        match outcome {
            Ok(()) => self.update(|status| status.state = QueryState::Succeeded),
            Err(error) => {
                let state = match error {
                    Error::Cancelled(_) | Error::Timeout(_) => QueryState::Cancelled,
                    _ => QueryState::Failed,
                };
                let shared = Arc::new(error);
                self.update(|status| {
                    status.state = state;
                    status.error = Some(shared);
                });
            }
        }
    }
}
