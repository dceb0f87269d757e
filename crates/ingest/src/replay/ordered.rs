//! `ordered` mode: a market replay. The rows of every file are merged in trade-date order and
//! paced by `--speed` (trading days per second) or `--rate` (rows per second). A row's position
//! is its rank in that order, which depends only on the files' contents.

use chrono::NaiveDate;

use super::checkpoint::Pass;
use super::run::Run;
use super::{Member, Tally, Unit};
use crate::emit::Pacer;
use crate::error::Result;
use crate::reader::{Row, RowOutcome};

/// A row and the file (its place in the unit) it comes from.
#[derive(Debug, Clone)]
pub struct OrderedRow {
    /// Index of the file in the unit.
    pub member: usize,
    /// The row.
    pub row: Row,
}

/// Every row of the files in `ordered` mode's order: rows that are not quotes first (in file
/// order; they are dead-lettered or skipped at once), then quotes by trade date, ties in file
/// order (files in the unit's order) — so all indices of one trading day go out together.
pub fn ordered_rows(members: &[Member]) -> Result<Vec<OrderedRow>> {
    let mut rows = Vec::new();
    for (member_index, member) in members.iter().enumerate() {
        let (source, _) = member.rows()?;
        for row in source {
            rows.push(OrderedRow {
                member: member_index,
                row: row?,
            });
        }
    }
    rows.sort_by_key(|ordered| match &ordered.row.outcome {
        RowOutcome::Quote(quote) => (1, quote.trade_date, ordered.member, ordered.row.line),
        _ => (0, NaiveDate::MIN, ordered.member, ordered.row.line),
    });
    Ok(rows)
}

impl Run<'_> {
    /// One pass over the unit's files merged by trade date; returns whether it reached the end.
    pub(super) fn ordered_pass(&mut self, unit: &Unit, pass: &mut Pass) -> Result<bool> {
        let resume_after = pass.state.position;
        let mut last_position = resume_after;
        let mut stopped = false;
        let rows = ordered_rows(&unit.members)?;
        self.start_progress(Some(rows.len() as u64), "rows");
        let mut pacer = Pacer::new(self.options.speed.or(self.options.rate));
        let mut last_day: Option<NaiveDate> = None;
        for (rank, ordered) in rows.iter().enumerate() {
            let member = &unit.members[ordered.member];
            let position = rank as u64 + 1;
            self.bar.set_position(position);
            if pass.already_sent(position, resume_after, &ordered.row.outcome) {
                self.count(member, Tally::AlreadyReplayed, 1);
                last_position = position;
                continue;
            }
            let day = match &ordered.row.outcome {
                RowOutcome::Quote(quote) => Some(quote.trade_date),
                _ => None,
            };
            let paced_unit = if self.options.speed.is_some() {
                day.is_some() && day != last_day
            } else {
                true
            };
            if day.is_some() {
                last_day = day;
            }
            if paced_unit && !pacer.wait(self.shutdown) {
                self.summary.interrupted = true;
                stopped = true;
                break;
            }
            if !self.row(member, ordered.member, &ordered.row, position, pass)? {
                stopped = true;
                break;
            }
            last_position = position;
            self.maybe_checkpoint(pass, last_position)?;
        }
        self.finish(pass, last_position, !stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sniff::{FormatOptions, infer};
    use crate::sources::Source;

    fn member(dir: &std::path::Path, name: &str, content: &str, index: usize) -> Member {
        let path = dir.join(name);
        std::fs::write(&path, content).expect("write");
        let source = Source::local(&path);
        Member {
            fingerprint: source.fingerprint().expect("fingerprint"),
            format: infer(&source, &FormatOptions::default()).expect("infers"),
            name: name.to_string(),
            source,
            index,
        }
    }

    #[test]
    fn ordered_rows_merge_indices_by_trade_date() {
        let dir = tempfile::tempdir().expect("tempdir");
        let two = member(
            dir.path(),
            "two.csv",
            "Index,Date,Open,High,Low,Close,Adj Close,Volume,CloseUSD\n\
A,2000-01-04,1,1,1,1,1,0,1\n\
A,2000-01-05,1,1,1,1,1,0,1\n\
B,2000-01-03,1,1,1,1,1,0,1\n\
B,bad,1,1,1,1,1,0,1\n\
B,2000-01-04,1,1,1,1,1,0,1\n",
            0,
        );
        let order: Vec<u64> = ordered_rows(std::slice::from_ref(&two))
            .expect("rows")
            .iter()
            .map(|ordered| ordered.row.line)
            .collect();
        assert_eq!(order, vec![5, 4, 2, 6, 3]);

        // Files merge too: a Yahoo export per symbol interleaves with the others by date.
        let yahoo = member(
            dir.path(),
            "C.csv",
            "Date,Open,High,Low,Close,Adj Close,Volume\n2000-01-03,1,1,1,1,1,0\n2000-01-05,1,1,1,1,1,0\n",
            1,
        );
        let merged: Vec<(usize, u64)> = ordered_rows(&[two, yahoo])
            .expect("rows")
            .iter()
            .map(|ordered| (ordered.member, ordered.row.line))
            .collect();
        assert_eq!(
            merged,
            vec![(0, 5), (0, 4), (1, 2), (0, 2), (0, 6), (0, 3), (1, 3)]
        );
    }
}
