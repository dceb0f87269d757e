//! Retention: partitions older than `lake.retention.max_age` are dropped from the catalog, and
//! their files (home directory and generations) go to a trash entry deleted after the grace period.
//!
//! The partition path bounds the dates of its rows (`year=1987` holds nothing after 1987-12-31,
//! `date=1987-10-19` nothing after that day), so retention needs no file read. A layout without a
//! date in its path (say `symbol={symbol}`) gives no bound, and such partitions are kept.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use super::generation::{TrashEntry, encode, trash_key};
use super::{CatalogPartition, Compactor, PartitionCatalog, RoundReport};
use crate::error::Result;
use crate::metrics;

impl Compactor {
    /// Drops partitions whose newest possible trade date is older than `max_age`.
    pub(super) async fn retain(
        &self,
        catalog: &mut dyn PartitionCatalog,
        partitions: &mut Vec<CatalogPartition>,
        max_age: std::time::Duration,
        now: DateTime<Utc>,
        report: &mut RoundReport,
    ) -> Result<()> {
        let cutoff = (now - chrono::Duration::from_std(max_age).unwrap_or_default()).date_naive();
        let (old, kept): (Vec<CatalogPartition>, Vec<CatalogPartition>) =
            std::mem::take(partitions)
                .into_iter()
                .partition(|partition| is_older(partition, cutoff));
        *partitions = kept;
        if old.is_empty() {
            return Ok(());
        }
        catalog.drop_partitions(&old).await?;
        for partition in &old {
            self.generations.set(partition, None);
            self.trash_dropped(partition, max_age, now).await?;
            report
                .dropped
                .push(format!("{}/{}", partition.table, partition.path));
        }
        metrics::partitions_dropped(old.len() as u64);
        tracing::info!(partitions = old.len(), %cutoff, "retention dropped partitions");
        Ok(())
    }

    /// Puts every file of the dropped `partition` (home directory and generations) in a trash
    /// entry due after the grace period.
    async fn trash_dropped(
        &self,
        partition: &CatalogPartition,
        max_age: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut keys: Vec<String> = self
            .home_files(partition)
            .await?
            .into_iter()
            .map(|meta| meta.key)
            .collect();
        keys.extend(
            self.store
                .list(&partition.generations_prefix())
                .await?
                .into_iter()
                .map(|meta| meta.key),
        );
        let entry = TrashEntry {
            reason: format!("retention: older than {}", humanize(max_age)),
            not_before: now + chrono::Duration::from_std(self.config.grace).unwrap_or_default(),
            keys,
        };
        let key = trash_key(&format!(
            "retention:{}:{}",
            partition.home(),
            now.timestamp_millis()
        ));
        self.store
            .put(&key, encode("a trash entry", &entry)?)
            .await?;
        Ok(())
    }
}

/// Whether every date `partition`'s path allows is before `cutoff`.
fn is_older(partition: &CatalogPartition, cutoff: NaiveDate) -> bool {
    let names: Vec<String> = partition
        .path
        .split('/')
        .filter_map(|segment| segment.split_once('=').map(|(name, _)| name.to_string()))
        .collect();
    newest_date(&names, &partition.values).is_some_and(|newest| newest < cutoff)
}

/// `duration` in days, or in seconds when under a day.
fn humanize(duration: std::time::Duration) -> String {
    let days = duration.as_secs() / 86_400;
    if days > 0 {
        format!("{days} days")
    } else {
        format!("{} s", duration.as_secs())
    }
}

/// The last date partition `values` (under keys `names`) can hold, if the path says.
pub(crate) fn newest_date(names: &[String], values: &[String]) -> Option<NaiveDate> {
    let mut year = None;
    let mut month = None;
    let mut day = None;
    for (name, value) in names.iter().zip(values) {
        if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
            return Some(date);
        }
        if let Some((y, m)) = value.split_once('-')
            && let (Ok(y), Ok(m)) = (y.parse::<i32>(), m.parse::<u32>())
            && y > 999
        {
            year = Some(y);
            month = Some(m);
            continue;
        }
        match name.as_str() {
            "year" | "yyyy" => year = value.parse::<i32>().ok(),
            "month" | "mm" => month = value.parse::<u32>().ok(),
            "day" | "dd" => day = value.parse::<u32>().ok(),
            _ => {}
        }
    }
    let year = year?;
    match (month, day) {
        (Some(month), Some(day)) => NaiveDate::from_ymd_opt(year, month, day),
        (Some(month), None) => last_day_of_month(year, month),
        _ => NaiveDate::from_ymd_opt(year, 12, 31),
    }
}

fn last_day_of_month(year: i32, month: u32) -> Option<NaiveDate> {
    let first_of_next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    first_of_next
        .pred_opt()
        .filter(|date| date.month() == month)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn paths_bound_their_dates() {
        let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d);
        assert_eq!(
            newest_date(&names(&["symbol", "year"]), &names(&["HSI", "1987"])),
            date(1987, 12, 31)
        );
        assert_eq!(
            newest_date(&names(&["date"]), &names(&["1987-10-19"])),
            date(1987, 10, 19)
        );
        assert_eq!(
            newest_date(&names(&["year", "month"]), &names(&["1988", "2"])),
            date(1988, 2, 29)
        );
        assert_eq!(
            newest_date(&names(&["ym"]), &names(&["1987-11"])),
            date(1987, 11, 30)
        );
        assert_eq!(newest_date(&names(&["symbol"]), &names(&["HSI"])), None);
    }
}
