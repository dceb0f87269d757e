//! Queries the API remembers: their state for `GET /v1/queries/{id}`, their cancellation for
//! `DELETE`, and — for queries answered with `202` — their results for
//! `GET /v1/queries/{id}/results`.
//!
//! Bounded on every side: at most `query.max_stored_queries` entries (finished ones are forgotten
//! `query.result_ttl` after they end, the oldest first when full) and at most
//! `query.max_stored_result_bytes` of results held for all queries together; a query whose
//! results do not fit keeps what fits and is marked `truncated`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use stockstream_common::sync::MutexExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::engine::{QueryStats, QueryStatus};

/// Results kept for a query answered with `202`.
#[derive(Debug, Default)]
pub struct StoredResults {
    /// Result schema, once known.
    pub schema: Option<SchemaRef>,
    /// Rows collected as JSON before the query was handed over to the registry, ahead of
    /// `batches`.
    pub prefix_rows: Vec<Vec<serde_json::Value>>,
    /// Batches in order.
    pub batches: Vec<RecordBatch>,
    /// Rows held.
    pub rows: usize,
    /// Bytes held (counted against the registry's budget).
    pub bytes: usize,
    /// Whether rows were cut (row limit, size budget).
    pub truncated: bool,
}

/// One remembered query.
#[derive(Debug)]
pub struct Entry {
    /// Query id.
    pub id: String,
    /// The SQL as sent (for `GET /v1/queries/{id}`).
    pub sql: String,
    /// When the API accepted it.
    pub submitted_at: DateTime<Utc>,
    /// The engine's view of its state.
    pub status: watch::Receiver<QueryStatus>,
    /// Cancels it.
    pub cancel: CancellationToken,
    /// Statistics as the client saw them (rows returned, truncation), once answered.
    pub answered: Mutex<Option<QueryStats>>,
    /// Results of an asynchronous query.
    pub results: Mutex<Option<StoredResults>>,
    registered: Instant,
}

impl Entry {
    /// The status now.
    pub fn status(&self) -> QueryStatus {
        self.status.borrow().clone()
    }

    /// Records the statistics the client's answer carried.
    pub fn set_answered(&self, stats: QueryStats) {
        *self.answered.locked() = Some(stats);
    }

    /// Statistics to report: the answer's when answered, else the engine's.
    pub fn stats(&self) -> QueryStats {
        let answered = self.answered.locked().clone();
        answered.unwrap_or_else(|| self.status().stats)
    }
}

/// Entries by id, and their ids in the order they arrived.
#[derive(Debug, Default)]
struct Entries {
    by_id: HashMap<String, Arc<Entry>>,
    order: VecDeque<String>,
}

/// The remembered queries.
#[derive(Debug)]
pub struct Registry {
    entries: Mutex<Entries>,
    ttl: Duration,
    max_entries: usize,
    result_budget: usize,
    result_bytes: AtomicUsize,
}

impl Registry {
    /// An empty registry with these bounds.
    pub fn new(ttl: Duration, max_entries: usize, result_budget: usize) -> Self {
        Self {
            entries: Mutex::new(Entries::default()),
            ttl,
            max_entries,
            result_budget,
            result_bytes: AtomicUsize::new(0),
        }
    }

    /// Remembers a query.
    pub fn insert(
        &self,
        id: String,
        sql: String,
        status: watch::Receiver<QueryStatus>,
        cancel: CancellationToken,
    ) -> Arc<Entry> {
        let entry = Arc::new(Entry {
            id: id.clone(),
            sql,
            submitted_at: Utc::now(),
            status,
            cancel,
            answered: Mutex::new(None),
            results: Mutex::new(None),
            registered: Instant::now(),
        });
        let mut entries = self.entries.locked();
        let Entries { by_id, order } = &mut *entries;
        self.evict(by_id, order);
        by_id.insert(id.clone(), entry.clone());
        order.push_back(id);
        drop(entries);
        entry
    }

    /// The query `id`, if remembered.
    pub fn get(&self, id: &str) -> Option<Arc<Entry>> {
        self.entries.locked().by_id.get(id).cloned()
    }

    /// Number of remembered queries.
    pub fn len(&self) -> usize {
        self.entries.locked().by_id.len()
    }

    /// Whether no query is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reserves `bytes` of the results budget; `false` when they do not fit.
    pub fn reserve(&self, bytes: usize) -> bool {
        self.result_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                let total = held.checked_add(bytes)?;
                (total <= self.result_budget).then_some(total)
            })
            .is_ok()
    }

    fn release(&self, bytes: usize) {
        self.result_bytes.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Drops expired finished queries, then the oldest ones while over the size bound.
    fn evict(&self, entries: &mut HashMap<String, Arc<Entry>>, order: &mut VecDeque<String>) {
        let now = Instant::now();
        let expired = |entry: &Entry| {
            entry.status().state.is_terminal() && now.duration_since(entry.registered) > self.ttl
        };
        order.retain(|id| match entries.get(id) {
            Some(entry) if expired(entry) => {
                self.forget(entries.remove(id));
                false
            }
            Some(_) => true,
            None => false,
        });
        while entries.len() >= self.max_entries {
            let Some(oldest) = order.pop_front() else {
                break;
            };
            self.forget(entries.remove(&oldest));
        }
    }

    fn forget(&self, entry: Option<Arc<Entry>>) {
        if let Some(entry) = entry {
            if !entry.status().state.is_terminal() {
                entry.cancel.cancel();
            }
            if let Some(results) = entry.results.locked().as_ref() {
                self.release(results.bytes);
            }
        }
    }
}
