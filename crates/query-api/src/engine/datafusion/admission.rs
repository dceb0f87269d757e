//! The scan budget: how many scanned files the running queries may hold at once.
//!
//! DataFusion keeps state for every file a scan opens until the query ends, outside the memory
//! pool: a set of about twenty metrics per file (`ParquetFileMetrics`) and the file's place in
//! the plan. heaptrack put it at about 5 KB a file: 190 MB for a full scan of the 39,000-file
//! bench lake, and eight such scans at once took the process from 1.6 GB to 4.9 GB. So a query
//! takes one unit per file it scans (`query.max_scan_files` in all) before it executes, and
//! waits — counted in its time limit, shown as `queue_ms` — while running scans hold them.
//! Selective queries take a few units and pass. A query scanning more than three quarters of the
//! budget takes three quarters: two such scans never run at once, and the last quarter stays for
//! the queries beside them, which a full scan would otherwise hold up for its whole run.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Units of the scan budget, one per scanned file.
#[derive(Debug, Clone)]
pub(crate) struct ScanBudget {
    units: Arc<Semaphore>,
    total: u32,
}

/// A running query's share of the budget, given back when dropped.
#[derive(Debug)]
pub(crate) struct ScanAdmission {
    _permit: OwnedSemaphorePermit,
    files: u32,
}

impl ScanBudget {
    /// A budget of `max_files` scanned files.
    pub(crate) fn new(max_files: u32) -> Self {
        Self {
            units: Arc::new(Semaphore::new(max_files as usize)),
            total: max_files,
        }
    }

    /// Waits until a scan of `files` files fits (at most three quarters of the budget), then
    /// holds its share (none for a scan of no file).
    pub(crate) async fn admit(&self, files: u64) -> ScanAdmission {
        let largest = (self.total - self.total / 4).max(1);
        let files = u32::try_from(files).unwrap_or(u32::MAX).min(largest);
        let permit = self
            .units
            .clone()
            .acquire_many_owned(files)
            .await
            .expect("the scan budget's semaphore is never closed");
        crate::metrics::scan_files_admitted(f64::from(files));
        ScanAdmission {
            _permit: permit,
            files,
        }
    }
}

impl Drop for ScanAdmission {
    fn drop(&mut self) {
        crate::metrics::scan_files_admitted(-f64::from(self.files));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// `budget.admit(files)` in a task of its own, to see whether it waits.
    fn admit_in_background(
        budget: &ScanBudget,
        files: u64,
    ) -> tokio::task::JoinHandle<ScanAdmission> {
        let budget = budget.clone();
        tokio::spawn(async move { budget.admit(files).await })
    }

    #[tokio::test]
    async fn scans_wait_while_running_ones_hold_the_budget() {
        let budget = ScanBudget::new(100);
        let full = budget.admit(70).await;
        // 20 more fit beside the 70; 20 after that do not, until the first scan ends.
        let small = budget.admit(20).await;
        let waiting = admit_in_background(&budget, 20);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "admitted past the budget");
        drop(full);
        let admitted = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("admitted once the budget was given back")
            .expect("task");
        drop((small, admitted));
        // A scan larger than three quarters of the budget takes three quarters: queries that fit
        // in the last quarter still run beside it, another large scan waits.
        let huge = tokio::time::timeout(Duration::from_secs(5), budget.admit(1_000))
            .await
            .expect("a scan larger than the budget runs");
        assert_eq!(huge.files, 75);
        let beside = tokio::time::timeout(Duration::from_secs(5), budget.admit(25))
            .await
            .expect("a small scan runs beside the large one");
        drop(beside);
        let second = admit_in_background(&budget, 1_000);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!second.is_finished(), "two large scans ran at once");
        drop(huge);
        let second = tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .expect("the second large scan runs once the first ends")
            .expect("task");
        drop(second);
        assert_eq!(budget.units.available_permits(), 100);
        // Scanning no file takes nothing.
        let none = budget.admit(0).await;
        assert_eq!(budget.units.available_permits(), 100);
        drop(none);
    }
}
