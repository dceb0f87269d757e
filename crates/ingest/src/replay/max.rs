//! `max` mode: every row of a file in file order, as fast as the broker takes them (or at
//! `--rate` rows per second). A row's position is its line.

use super::checkpoint::Pass;
use super::run::Run;
use super::{Tally, Unit};
use crate::emit::Pacer;
use crate::error::{Error, Result};

impl Run<'_> {
    /// One pass over the unit's single file; returns whether it reached the end.
    pub(super) fn max_pass(&mut self, unit: &Unit, pass: &mut Pass) -> Result<bool> {
        let [member] = unit.members.as_slice() else {
            return Err(Error::Usage(
                "internal: max mode replays one file at a time".to_string(),
            ));
        };
        let resume_after = pass.state.position;
        let mut last_position = resume_after;
        let mut stopped = false;
        let (mut rows, total_bytes) = member.rows()?;
        self.start_progress(total_bytes, "bytes");
        let mut pacer = Pacer::new(self.options.rate);
        while let Some(row) = rows.next_row()? {
            self.bar.set_position(rows.bytes_read());
            let position = row.line;
            if pass.already_sent(position, resume_after, &row.outcome) {
                self.count(member, Tally::AlreadyReplayed, 1);
                last_position = position;
                continue;
            }
            if !pacer.wait(self.shutdown) {
                self.summary.interrupted = true;
                stopped = true;
                break;
            }
            if !self.row(member, 0, &row, position, pass)? {
                stopped = true;
                break;
            }
            last_position = position;
            self.maybe_checkpoint(pass, last_position)?;
        }
        self.finish(pass, last_position, !stopped)
    }
}
