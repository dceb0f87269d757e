//! Passes and checkpoints: where a unit's replay resumes, what a crashed run already put on the
//! log (read back, not sent again), and the checkpoints that record how far every row is
//! acknowledged (see docs/ingest.md).

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use chrono::Utc;

use super::run::Run;
use super::{Mode, Tally, Unit};
use crate::emit::{Emitter, Origin, log_ends, recover};
use crate::error::{Error, Result};
use crate::offsets::{OffsetStore, SourceOffset};
use crate::reader::RowOutcome;

/// How often progress is checkpointed into the source-offset store.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// Progress of the pass being replayed.
pub(super) struct Pass {
    /// The offset recorded for the unit.
    pub(super) state: SourceOffset,
    /// The fingerprint it is recorded under; `None` for passes that record nothing (dry runs).
    recorded_as: Option<String>,
    /// Positions beyond the checkpoint already on the log.
    pub(super) skip: HashSet<u64>,
    /// The origin stamped on the rows of each file of the unit.
    pub(super) origins: Vec<Origin>,
    last_checkpoint: Instant,
    /// The rows counted in `state` whose position is beyond its checkpoint, in position order:
    /// a checkpoint records the counts of the rows up to its position only, so a run that resumes
    /// from it (and counts those rows again, sent or found on the log) counts each row once.
    beyond: VecDeque<(u64, Counted)>,
}

/// Which of `SourceOffset`'s counters a row went to.
#[derive(Debug, Clone, Copy)]
enum Counted {
    Produced,
    DeadLettered,
    SkippedEmpty,
}

impl Pass {
    /// A pass that records nothing (dry runs, sample mode).
    pub(super) fn unrecorded(unit: &Unit) -> Self {
        Self::new(unit, blank_offset(), None)
    }

    fn new(unit: &Unit, state: SourceOffset, recorded_as: Option<String>) -> Self {
        let origins = unit
            .members
            .iter()
            .map(|member| Origin {
                source: unit.fingerprint[..16].to_string(),
                file: member.name.clone(),
                pass: state.pass,
            })
            .collect();
        Self {
            state,
            recorded_as,
            skip: HashSet::new(),
            origins,
            last_checkpoint: Instant::now(),
            beyond: VecDeque::new(),
        }
    }

    /// Counts row `position` of the pass by its outcome (sent, or found on the log by the read-back).
    pub(super) fn count_row(&mut self, position: u64, outcome: &RowOutcome) {
        let counted = match outcome {
            RowOutcome::Empty => {
                self.state.skipped_empty += 1;
                Counted::SkippedEmpty
            }
            RowOutcome::Quote(_) => {
                self.state.produced += 1;
                Counted::Produced
            }
            RowOutcome::Bad(_) => {
                self.state.dead_lettered += 1;
                Counted::DeadLettered
            }
        };
        self.beyond.push_back((position, counted));
    }

    /// What a checkpoint records: `state` with the counts of rows beyond its position taken out.
    fn checkpointed(&mut self) -> SourceOffset {
        while self
            .beyond
            .front()
            .is_some_and(|(position, _)| *position <= self.state.position)
        {
            self.beyond.pop_front();
        }
        let mut state = self.state.clone();
        for (_, counted) in &self.beyond {
            let counter = match counted {
                Counted::Produced => &mut state.produced,
                Counted::DeadLettered => &mut state.dead_lettered,
                Counted::SkippedEmpty => &mut state.skipped_empty,
            };
            *counter = counter.saturating_sub(1);
        }
        state
    }

    /// Whether row `position` was sent by an earlier run of the pass; one the read-back found
    /// beyond the checkpoint is counted here (those up to it are in the checkpoint's counts).
    pub(super) fn already_sent(
        &mut self,
        position: u64,
        resume_after: u64,
        outcome: &RowOutcome,
    ) -> bool {
        if position <= resume_after {
            return true;
        }
        let found = self.skip.contains(&position);
        if found {
            self.count_row(position, outcome);
        }
        found
    }
}

fn blank_offset() -> SourceOffset {
    SourceOffset {
        file: Default::default(),
        mode: String::new(),
        pass: 0,
        position: 0,
        complete: false,
        produced: 0,
        dead_lettered: 0,
        skipped_empty: 0,
        scan_from: Default::default(),
        updated_at: Utc::now(),
    }
}

impl Run<'_> {
    /// Replays `unit` once: resumes its unfinished pass, or starts a new one when it is complete
    /// and this is a later round of `--loop` or `--from-start` asked for one. Returns `false`
    /// when the replay must stop.
    pub(super) fn unit(&mut self, unit: &Unit, first_round: bool) -> Result<bool> {
        if self.shutdown.is_cancelled() {
            self.summary.interrupted = true;
            return Ok(false);
        }
        let Some(emitter) = self.emitter else {
            let mut pass = Pass::unrecorded(unit);
            return self.pass(unit, &mut pass);
        };
        let topic = self.config.kafka.topics.quotes.clone();
        if self.store.is_none() {
            self.store = Some(OffsetStore::open(&self.config.ingest.state_dir)?);
        }
        let previous = self
            .store
            .as_ref()
            .and_then(|store| store.get(&topic, &unit.fingerprint).cloned());
        let new_pass = self.options.from_start || !first_round;
        let state = match previous {
            Some(previous) if !new_pass && !previous.complete => {
                if previous.mode != self.options.mode.as_str() {
                    return Err(Error::Usage(format!(
                        "{} was partly replayed in {} mode (pass {}, up to position {}); resume it with --mode {} or start over with --from-start",
                        unit.names(),
                        previous.mode,
                        previous.pass,
                        previous.position,
                        previous.mode
                    )));
                }
                previous
            }
            Some(previous) if !new_pass && !self.options.looping => {
                self.already_complete(unit, &previous);
                return Ok(true);
            }
            previous => {
                let pass = previous.map_or(1, |previous| previous.pass + 1);
                if pass > 1 {
                    tracing::info!(files = %unit.names(), pass, "starting a new pass");
                }
                self.fresh_state(unit, emitter, pass)?
            }
        };
        let mut pass = Pass::new(unit, state, Some(unit.fingerprint.clone()));
        if !self.read_back(unit, &mut pass)? {
            self.summary.interrupted = true;
            return Ok(false);
        }
        self.summary.pass = self.summary.pass.max(pass.state.pass);
        for member in &unit.members {
            if let Some(file) = self.summary.files.get_mut(member.index) {
                file.pass = pass.state.pass;
                file.resumed_after = pass.state.position;
            }
        }
        self.store_state(&mut pass)?;
        let complete = self.pass(unit, &mut pass)?;
        if complete {
            self.summary.passes_completed += 1;
        }
        if self.shutdown.is_cancelled() {
            // A signal that lands between passes (or files) still stops the run as interrupted.
            self.summary.interrupted = true;
            return Ok(false);
        }
        Ok(complete)
    }

    /// Counts a completed pass that is not replayed again.
    fn already_complete(&mut self, unit: &Unit, previous: &SourceOffset) {
        self.summary.pass = self.summary.pass.max(previous.pass);
        let rows = previous.produced + previous.dead_lettered + previous.skipped_empty;
        if let [member] = unit.members.as_slice() {
            self.count(member, Tally::AlreadyReplayed, rows);
            if let Some(file) = self.summary.files.get_mut(member.index) {
                file.pass = previous.pass;
                file.resumed_after = previous.position;
            }
        } else {
            self.summary.skipped_already_replayed += rows;
        }
    }

    fn fresh_state(&self, unit: &Unit, emitter: &Emitter, pass: u64) -> Result<SourceOffset> {
        Ok(SourceOffset {
            file: unit.names().into(),
            mode: self.options.mode.as_str().to_string(),
            pass,
            scan_from: log_ends(&self.config.kafka, &emitter.topics())?,
            ..blank_offset()
        })
    }

    /// Reads back what a crashed run of the pass sent after its checkpoint; `false` if stopped.
    fn read_back(&mut self, unit: &Unit, pass: &mut Pass) -> Result<bool> {
        let state = &mut pass.state;
        if state.position == 0 && state.scan_from.is_empty() {
            return Ok(true);
        }
        let Some(recovered) = recover(
            &self.config.kafka,
            &state.scan_from,
            &unit.fingerprint[..16],
            state.pass,
            state.position,
            &self.config.kafka.topics.dlq,
            self.shutdown,
        )?
        else {
            return Ok(false);
        };
        if !recovered.positions.is_empty() {
            tracing::info!(
                files = %unit.names(),
                records = recovered.produced,
                dead_letters = recovered.dead_lettered,
                after_position = state.position,
                "found records the previous run sent after its last checkpoint; they are not sent again"
            );
        }
        // Their rows are counted when the pass reaches their positions (`Pass::count_row`).
        self.summary.recovered_from_log += recovered.positions.len() as u64;
        if let [member] = unit.members.as_slice()
            && let Some(file) = self.summary.files.get_mut(member.index)
        {
            file.recovered_from_log += recovered.positions.len() as u64;
        }
        pass.skip = recovered.positions;
        Ok(true)
    }

    /// Checkpoints at most once per [`CHECKPOINT_INTERVAL`].
    pub(super) fn maybe_checkpoint(&mut self, pass: &mut Pass, last_position: u64) -> Result<()> {
        if pass.recorded_as.is_some() && pass.last_checkpoint.elapsed() >= CHECKPOINT_INTERVAL {
            pass.last_checkpoint = Instant::now();
            self.checkpoint(pass, last_position, false)?;
        }
        Ok(())
    }

    /// Records the highest position up to which every row is acknowledged, and from where later
    /// rows of the pass may be on the log.
    fn checkpoint(&mut self, pass: &mut Pass, last_position: u64, at_end: bool) -> Result<()> {
        let Some(emitter) = self.emitter else {
            return Ok(());
        };
        let producer = emitter.producer();
        let mut acknowledged = producer
            .lowest_in_flight()
            .map_or(last_position, |lowest| lowest.saturating_sub(1));
        let failed = producer.lowest_failed();
        if let Some(failed) = failed {
            acknowledged = acknowledged.min(failed.saturating_sub(1));
        }
        for ((topic, partition), offset) in producer.take_landed_through(acknowledged) {
            pass.state
                .scan_from
                .insert(format!("{topic}/{partition}"), offset + 1);
        }
        let complete = at_end && failed.is_none() && acknowledged == last_position;
        if acknowledged < pass.state.position
            || (acknowledged == pass.state.position && complete == pass.state.complete)
        {
            return Ok(());
        }
        pass.state.position = acknowledged;
        pass.state.complete = complete;
        self.store_state(pass)
    }

    fn store_state(&mut self, pass: &mut Pass) -> Result<()> {
        if self.store.is_none() || pass.recorded_as.is_none() {
            return Ok(());
        }
        pass.state.updated_at = Utc::now();
        let checkpointed = pass.checkpointed();
        let (Some(store), Some(fingerprint)) = (self.store.as_mut(), &pass.recorded_as) else {
            return Ok(());
        };
        store.record(&self.config.kafka.topics.quotes, fingerprint, checkpointed)
    }

    /// Waits for everything in flight, records the final checkpoint and collects failures;
    /// returns whether the pass is complete.
    pub(super) fn finish(
        &mut self,
        pass: &mut Pass,
        last_position: u64,
        reached_end: bool,
    ) -> Result<bool> {
        let Some(emitter) = self.emitter else {
            return Ok(reached_end);
        };
        let producer = emitter.producer();
        let flushed = producer.flush(self.config.ingest.delivery_timeout + Duration::from_secs(5));
        self.checkpoint(pass, last_position, reached_end && flushed.is_ok())?;
        let failures = producer.take_failures();
        if let Some(first) = failures.iter().min_by_key(|failure| failure.id) {
            self.summary.failed += failures.len() as u64;
            self.summary.produced = self.summary.produced.saturating_sub(failures.len() as u64);
            self.summary.first_failure = Some(format!("position {}: {}", first.id, first.error));
            metrics::counter!("stockstream_ingest_delivery_failures_total")
                .increment(failures.len() as u64);
            tracing::error!(
                count = failures.len(),
                first_position = first.id,
                error = %first.error,
                files = %pass.state.file.display(),
                "records were not delivered"
            );
        }
        flushed?;
        Ok(pass.state.complete)
    }

    /// One pass over the unit in the mode's order; returns whether it reached the end.
    pub(super) fn pass(&mut self, unit: &Unit, pass: &mut Pass) -> Result<bool> {
        match self.options.mode {
            Mode::Max => self.max_pass(unit, pass),
            Mode::Ordered => self.ordered_pass(unit, pass),
            Mode::Sample => Err(Error::Usage(
                "internal: sample mode has no passes".to_string(),
            )),
        }
    }
}
