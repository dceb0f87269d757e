//! Retention: the newest trade date a partition can hold, from its partition values.
//!
//! The partition path bounds the dates of its rows (`year=1987` holds nothing after 1987-12-31,
//! `date=1987-10-19` nothing after that day), so retention needs no file read. A layout without a
//! date in its path (say `symbol={symbol}`) gives no bound, and such partitions are kept.

use chrono::{Datelike, NaiveDate};

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
