//! Lake maintenance inside the catalog service and as the one-shot `compact` command: the lease,
//! the compaction task, and the lock shared with the event loop (which copies late files into
//! generations and writes the local catalog).

use std::sync::Arc;
use std::time::Duration;

use stockstream_common::lake::{LakeStore, open_store};
use tokio_util::sync::CancellationToken;

use crate::compaction::{
    Compactor, Exclusive, Generations, Lease, LocalPartitions, PartitionCatalog, RoundReport,
};
use crate::config::{CatalogMode, Config};
use crate::error::{Error, Result};
use crate::glue::GlueCatalog;
use crate::metrics;

/// Shortest lease the service holds; it renews at least three times per lease, and before each
/// swap, so one partition's merge must fit in it.
const MIN_LEASE: Duration = Duration::from_secs(60);
/// The one-shot command's lease (renewed before each swap). Long, because a holder that dies on
/// this host is taken over at once anyway; on another host it bounds the wait.
const ONE_SHOT_LEASE: Duration = Duration::from_secs(600);

/// What the event loop shares with maintenance.
#[derive(Debug, Clone)]
pub(crate) struct Maintenance {
    /// Held while the catalog or a generation changes.
    pub(crate) lock: Arc<tokio::sync::Mutex<()>>,
    /// Where compacted partitions are read from.
    pub(crate) generations: Generations,
}

/// The catalog compaction swaps locations in, or why it cannot.
async fn partition_catalog(
    config: &Config,
    store: Arc<dyn LakeStore>,
) -> Result<Box<dyn PartitionCatalog>> {
    let database = config.crawler.database.as_str();
    Ok(match &config.crawler.mode {
        CatalogMode::Local => Box::new(LocalPartitions::new(store, database)),
        CatalogMode::Glue(settings) => {
            let glue = GlueCatalog::connect(settings.clone(), database, store).await?;
            if let Some(reason) = glue.compaction_refusal() {
                return Err(Error::CompactionRefused(reason));
            }
            Box::new(glue)
        }
    })
}

fn busy(holder: crate::compaction::LeaseRecord) -> Error {
    Error::LeaseBusy {
        purpose: holder.purpose,
        pid: holder.pid,
        host: holder.host,
        expires_at: holder.expires_at.to_rfc3339(),
    }
}

impl Maintenance {
    /// Takes the maintenance lease (waiting for a one-shot `compact` to finish), learns which
    /// partitions are compacted, and starts the compaction task when it is enabled. The task
    /// stops, and gives the lease up, when `shutdown` is cancelled.
    pub(crate) async fn start(
        config: &Config,
        store: Arc<dyn LakeStore>,
        shutdown: &CancellationToken,
    ) -> Result<(Self, tokio::task::JoinHandle<()>)> {
        let settings = config.compaction.clone();
        let ttl = MIN_LEASE.max(settings.interval * 3);
        // An unreachable lake delays the start (reported on /health/readyz) instead of failing it.
        let mut backoff = Duration::from_secs(1);
        let lease = loop {
            match Lease::acquire(store.as_ref(), "catalog service", ttl, true).await {
                Ok(Ok(lease)) => break lease,
                Ok(Err(holder)) => return Err(busy(holder)),
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, "taking the maintenance lease failed");
                    tokio::select! {
                        () = shutdown.cancelled() => return Err(error),
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        };
        let generations = Generations::default();
        let maintenance = Self {
            lock: Arc::new(tokio::sync::Mutex::new(())),
            generations: generations.clone(),
        };
        let wanted = settings.enabled || settings.retention.is_some();
        let catalog = match partition_catalog(config, store.clone()).await {
            Ok(mut catalog) => {
                // Learned again by every round; a catalog that does not answer now is no reason
                // not to start.
                match catalog.partitions().await {
                    Ok(partitions) => generations.reset(&partitions),
                    Err(error) => {
                        tracing::warn!(%error, "reading partition locations failed; late files wait for the first compaction round")
                    }
                }
                Some(catalog)
            }
            Err(Error::CompactionRefused(reason)) => {
                if wanted {
                    tracing::warn!(
                        reason,
                        "lake.compaction / lake.retention are set but cannot run with this catalog"
                    );
                }
                None
            }
            Err(error) => return Err(error),
        };
        let catalog = catalog.filter(|_| wanted);
        let compactor = Compactor::new(store.clone(), settings, generations);
        let task = tokio::spawn(maintain(
            compactor,
            catalog,
            lease,
            maintenance.lock.clone(),
            store,
            shutdown.clone(),
        ));
        Ok((maintenance, task))
    }
}

/// Renews the lease, and runs compaction rounds every `interval` when there is a catalog to
/// compact; gives the lease up on shutdown.
async fn maintain(
    compactor: Compactor,
    mut catalog: Option<Box<dyn PartitionCatalog>>,
    mut lease: Lease,
    lock: Arc<tokio::sync::Mutex<()>>,
    store: Arc<dyn LakeStore>,
    shutdown: CancellationToken,
) {
    let interval = compactor.config().interval;
    let renew_every = (lease.ttl() / 3).min(interval);
    let mut next_round = tokio::time::Instant::now() + interval;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(renew_every.min(next_round.saturating_duration_since(tokio::time::Instant::now()))) => {}
        }
        match lease.renew(store.as_ref()).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::error!(
                    "the maintenance lease was taken over; taking it back before changing anything"
                );
                match Lease::acquire(store.as_ref(), "catalog service", lease.ttl(), true).await {
                    Ok(Ok(renewed)) => lease = renewed,
                    Ok(Err(_)) => continue,
                    Err(error) => {
                        tracing::warn!(%error, "taking the maintenance lease failed");
                        continue;
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "renewing the maintenance lease failed");
                continue;
            }
        }
        let Some(catalog) = catalog.as_deref_mut() else {
            continue;
        };
        if tokio::time::Instant::now() < next_round {
            continue;
        }
        next_round = tokio::time::Instant::now() + interval;
        let exclusive = Exclusive {
            catalog,
            lease: &mut lease,
            lock: &lock,
        };
        match compactor.round(exclusive, false).await {
            Ok(report) => log_round(&report),
            Err(error) => {
                metrics::compaction_failures(1);
                tracing::warn!(%error, "compaction round failed; the next round finishes or undoes it");
            }
        }
    }
    if let Err(error) = lease.release(store.as_ref()).await {
        tracing::warn!(%error, "giving the maintenance lease up failed; it expires by itself");
    }
}

fn log_round(report: &RoundReport) {
    if report.compacted.is_empty()
        && report.recovered.is_empty()
        && report.discarded.is_empty()
        && report.files_deleted == 0
        && report.dropped.is_empty()
    {
        return;
    }
    tracing::info!(
        partitions = report.compacted.len(),
        rows = report.rows(),
        waiting = report.waiting,
        recovered = report.recovered.len(),
        discarded = report.discarded.len(),
        files_deleted = report.files_deleted,
        files_kept_for_sink = report.files_kept_for_sink,
        dropped = report.dropped.len(),
        "compaction round"
    );
}

/// What the one-shot `compact` command did, round by round.
#[derive(Debug, Default, serde::Serialize)]
pub struct CompactReport {
    /// Rounds run (each compacts up to `max_partitions` partitions).
    pub rounds: Vec<RoundReport>,
    /// Partitions compacted in all.
    pub partitions: usize,
    /// Files merged in all.
    pub files_in: usize,
    /// Files written in all.
    pub files_out: usize,
    /// Rows merged in all.
    pub rows: u64,
    /// Seconds taken.
    pub seconds: f64,
    /// Rows merged per second.
    pub rows_per_second: f64,
}

/// Runs compaction rounds until no partition qualifies (one planning round with `dry_run`),
/// holding the maintenance lease; refuses while another process holds it unless `wait`.
pub async fn compact_once(config: &Config, dry_run: bool, wait: bool) -> Result<CompactReport> {
    let started = std::time::Instant::now();
    let store = open_store(&config.lake).await?;
    let mut catalog = partition_catalog(config, store.clone()).await?;
    let mut lease = match Lease::acquire(store.as_ref(), "compact", ONE_SHOT_LEASE, wait).await? {
        Ok(lease) => lease,
        Err(holder) => return Err(busy(holder)),
    };
    let lock = tokio::sync::Mutex::new(());
    let compactor = Compactor::new(
        store.clone(),
        config.compaction.clone(),
        Generations::default(),
    );
    let mut report = CompactReport::default();
    let outcome = loop {
        let exclusive = Exclusive {
            catalog: catalog.as_mut(),
            lease: &mut lease,
            lock: &lock,
        };
        let round = match compactor.round(exclusive, dry_run).await {
            Ok(round) => round,
            Err(error) => break Err(error),
        };
        let done = dry_run || round.compacted.is_empty();
        report.partitions += round.compacted.len();
        report.files_in += round.compacted.iter().map(|p| p.files_in).sum::<usize>();
        report.files_out += round.compacted.iter().map(|p| p.files_out).sum::<usize>();
        report.rows += round.rows();
        eprintln!(
            "compact: round {}: {} partitions, {} files into {}, {} waiting",
            report.rounds.len() + 1,
            round.compacted.len(),
            round.compacted.iter().map(|p| p.files_in).sum::<usize>(),
            round.compacted.iter().map(|p| p.files_out).sum::<usize>(),
            round.waiting
        );
        report.rounds.push(round);
        if done {
            break Ok(());
        }
    };
    lease.release(store.as_ref()).await?;
    outcome?;
    report.seconds = started.elapsed().as_secs_f64();
    report.rows_per_second = report.rows as f64 / report.seconds.max(1e-9);
    Ok(report)
}
