//! Starting a query: an execution slot (`query.max_concurrent`, waiting at most
//! `query.queue_timeout`), the start on the engine, the registry entry, and the metrics recorded
//! when the engine is done.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::DropGuard;

use crate::engine::{Output, QueryRequest};
use crate::error::{Error, Result};
use crate::http::AppState;
use crate::metrics;
use crate::registry::Entry;

/// A started query.
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) entry: Arc<Entry>,
    pub(crate) output: mpsc::Receiver<Output>,
    pub(crate) max_rows: usize,
    /// Cancels the query if dropped while armed (a client that went away).
    pub(crate) cancel_on_drop: DropGuard,
}

/// Takes an execution slot and starts `request` on the engine.
pub(crate) async fn submit(app: &AppState, request: QueryRequest) -> Result<Running> {
    let permit =
        match tokio::time::timeout(app.config.queue_timeout, app.slots.clone().acquire_owned())
            .await
        {
            Ok(Ok(permit)) => permit,
            Ok(Err(_closed)) => return Err(Error::Internal("execution slots closed".into())),
            Err(_elapsed) => {
                return Err(Error::Overloaded {
                    running: app.config.max_concurrent.get(),
                    retry_after: Duration::from_secs(1),
                });
            }
        };
    let max_rows = request.max_rows;
    let id = request.id.clone();
    let sql = request.sql.clone();
    let execution = app.engine.start(request).await?;
    let entry = app
        .registry
        .insert(id, sql, execution.status.clone(), execution.cancel.clone());
    let engine = app.engine.kind().name();
    metrics::in_flight(engine, 1.0);
    let mut status = execution.status.clone();
    tokio::spawn(async move {
        // The slot is held until the engine is done with the query.
        let _permit = permit;
        let final_status = status
            .wait_for(|status| status.state.is_terminal())
            .await
            .map(|status| status.clone());
        metrics::in_flight(engine, -1.0);
        if let Ok(final_status) = final_status {
            let outcome = match &final_status.error {
                Some(error) => error.kind(),
                None => "ok",
            };
            metrics::query_finished(
                engine,
                outcome,
                execution.started.elapsed(),
                final_status.stats.bytes_scanned,
            );
        }
    });
    Ok(Running {
        entry,
        output: execution.output,
        max_rows,
        cancel_on_drop: execution.cancel.drop_guard(),
    })
}
