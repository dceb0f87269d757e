//! `sample` mode: the original tutorial's producer — a random row of the files every
//! `--interval`, forever or `--count` times. Nothing is remembered between runs.

use std::time::Duration;

use rand::{Rng, SeedableRng};

use super::checkpoint::Pass;
use super::run::Run;
use super::{Member, Unit};
use crate::error::{Error, Result};
use crate::reader::Row;

impl Run<'_> {
    /// Sends random rows of `members` until `--count` or a shutdown.
    pub(super) fn sample(&mut self, members: &[Member]) -> Result<()> {
        let mut rows: Vec<(usize, Row)> = Vec::new();
        for (index, member) in members.iter().enumerate() {
            let (source, _) = member.rows()?;
            for row in source {
                rows.push((index, row?));
            }
        }
        if rows.is_empty() {
            return Err(Error::Format {
                path: members
                    .iter()
                    .map(|member| member.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
                    .into(),
                message: "has no data rows to sample".into(),
            });
        }
        let seed = self.options.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_nanos() as u64)
        });
        tracing::info!(seed, rows = rows.len(), interval = ?self.options.interval, "sampling");
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut pacer = crate::emit::Pacer::new(Some(1.0 / self.options.interval.as_secs_f64()));
        self.start_progress(self.options.count, "rows");
        let unit = Unit {
            fingerprint: members[0].fingerprint.clone(),
            members: members.to_vec(),
        };
        let mut pass = Pass::unrecorded(&unit);
        // Each sampled row carries its own file's identity.
        for (origin, member) in pass.origins.iter_mut().zip(members) {
            origin.source = member.fingerprint[..16].to_string();
        }
        let mut sent = 0;
        while self.options.count.is_none_or(|count| sent < count) {
            if !pacer.wait(self.shutdown) {
                self.summary.interrupted = true;
                break;
            }
            let (member, row) = &rows[rng.random_range(0..rows.len())];
            sent += 1;
            if !self.row(&members[*member], *member, row, sent, &mut pass)? {
                break;
            }
            self.bar.set_position(sent);
            self.collect_failures();
        }
        if let Some(emitter) = self.emitter {
            emitter
                .producer()
                .flush(self.config.ingest.delivery_timeout + Duration::from_secs(5))?;
            self.collect_failures();
        }
        Ok(())
    }

    fn collect_failures(&mut self) {
        let Some(emitter) = self.emitter else {
            return;
        };
        for failure in emitter.producer().take_failures() {
            self.summary.failed += 1;
            self.summary
                .first_failure
                .get_or_insert(failure.error.clone());
            tracing::error!(error = %failure.error, "a sampled record was not delivered");
        }
    }
}
