//! Trade dates as files write them, and how a file's date format is told.
//!
//! Dates are recognised by their shape: `2010-01-04` (also `/` and `.`), `20100104`,
//! `04.01.2010`, `04-Jan-2010`, `4 Jan 2010`, `Jan 4, 2010`, with an optional time of midnight
//! (`2010-01-04 00:00:00`, as pandas writes dates). Numeric day/month dates (`03/07/1979`,
//! `03-07-1979`) read both ways when day and month are both ≤ 12; which way a file means is
//! settled per file from its other dates ([`crate::sniff`]), or given with `--date-format`.

use chrono::format::{Item, StrftimeItems};
use chrono::{Datelike, NaiveDate};

/// Which number comes first in a numeric day/month date such as `03/07/1979`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// `03/07/1979` is 3 July (European, Canadian, most of the world).
    DayFirst,
    /// `03/07/1979` is 7 March (United States).
    MonthFirst,
}

/// The shape of one date's text: what a file's dates are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Form {
    /// Year, month, day separated by `-`, `/` or `.` (`%Y-%m-%d`).
    YearFirst(u8),
    /// `%Y%m%d`.
    Compact,
    /// `%d.%m.%Y`: dots are written day first.
    DayDotMonth,
    /// `03/07/1979` or `03-07-1979` (separator kept): day or month first.
    DayMonth(u8),
    /// A month name: `04-Jan-2010`, `4 Jan 2010`, `Jan 4, 2010`.
    Named,
}

impl Form {
    /// The form in strftime notation (for numeric day/month forms, in `order`).
    pub fn pattern(self, order: Option<Order>) -> String {
        let separator = |byte: u8| char::from(byte);
        match (self, order) {
            (Form::YearFirst(sep), _) => {
                format!("%Y{0}%m{0}%d", separator(sep))
            }
            (Form::Compact, _) => "%Y%m%d".into(),
            (Form::DayDotMonth, _) => "%d.%m.%Y".into(),
            (Form::DayMonth(sep), Some(Order::DayFirst)) => format!("%d{0}%m{0}%Y", separator(sep)),
            (Form::DayMonth(sep), Some(Order::MonthFirst)) => {
                format!("%m{0}%d{0}%Y", separator(sep))
            }
            (Form::DayMonth(sep), None) => {
                format!("%d{0}%m{0}%Y or %m{0}%d{0}%Y", separator(sep))
            }
            (Form::Named, _) => "%d-%b-%Y, %d %b %Y or %b %d, %Y".into(),
        }
    }
}

/// A date's text taken apart by [`classify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Three numbers in a known order.
    Numbers {
        /// Form of the text.
        form: Form,
        /// Year.
        year: i32,
        /// For [`Form::DayMonth`] the first number, otherwise the month.
        first: u32,
        /// For [`Form::DayMonth`] the second number, otherwise the day.
        second: u32,
    },
    /// A month name (parsed by chrono).
    Named,
    /// A time of day other than midnight.
    TimeOfDay,
    /// Nothing known.
    Unknown,
}

/// Months whose names are accepted (chrono's `%b` takes English abbreviations and full names).
const NAMED_FORMATS: [&str; 4] = ["%d-%b-%Y", "%d %b %Y", "%b %d, %Y", "%b %d %Y"];

/// Takes a date's text apart by its shape, without deciding day/month order.
pub fn classify(text: &str) -> Shape {
    let date = match strip_midnight(text) {
        Some(date) => date,
        None => return Shape::TimeOfDay,
    };
    let bytes = date.as_bytes();
    if bytes.len() == 8 && bytes.iter().all(u8::is_ascii_digit) {
        return Shape::Numbers {
            form: Form::Compact,
            year: number(&bytes[..4]) as i32,
            first: number(&bytes[4..6]),
            second: number(&bytes[6..8]),
        };
    }
    if bytes.iter().any(u8::is_ascii_alphabetic) {
        return Shape::Named;
    }
    let Some(separator) = bytes
        .iter()
        .copied()
        .find(|byte| matches!(byte, b'-' | b'/' | b'.'))
    else {
        return Shape::Unknown;
    };
    let mut parts = date.split(char::from(separator));
    let (Some(a), Some(b), Some(c), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Shape::Unknown;
    };
    let digits = |part: &str, lengths: std::ops::RangeInclusive<usize>| {
        lengths.contains(&part.len()) && part.bytes().all(|byte| byte.is_ascii_digit())
    };
    if digits(a, 4..=4) && digits(b, 1..=2) && digits(c, 1..=2) {
        return Shape::Numbers {
            form: Form::YearFirst(separator),
            year: number(a.as_bytes()) as i32,
            first: number(b.as_bytes()),
            second: number(c.as_bytes()),
        };
    }
    if digits(a, 1..=2) && digits(b, 1..=2) && digits(c, 4..=4) {
        let form = if separator == b'.' {
            Form::DayDotMonth
        } else {
            Form::DayMonth(separator)
        };
        return Shape::Numbers {
            form,
            year: number(c.as_bytes()) as i32,
            first: number(a.as_bytes()),
            second: number(b.as_bytes()),
        };
    }
    Shape::Unknown
}

/// The date part of `text`, or `None` when it carries a time of day other than midnight.
fn strip_midnight(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let year_first =
        bytes.len() > 10 && bytes[..4].iter().all(u8::is_ascii_digit) && !bytes[4].is_ascii_digit();
    if !year_first {
        return Some(text);
    }
    let Some((date, time)) = text.split_once(['T', ' ']) else {
        return Some(text);
    };
    let time = time.trim().trim_end_matches('Z').trim_end_matches("+00:00");
    time.trim_start_matches(['0', ':', '.'])
        .is_empty()
        .then_some(date)
}

fn number(digits: &[u8]) -> u32 {
    digits
        .iter()
        .fold(0, |value, digit| value * 10 + u32::from(digit - b'0'))
}

/// How a file writes its dates.
#[derive(Debug, Clone, PartialEq)]
pub enum DateFormat {
    /// Inferred from the file: `primary` is the form most of its dates use; dates in other forms
    /// are read too as long as they are unambiguous, and numeric day/month dates in `order`
    /// (when the file settled it).
    Inferred {
        /// The file's usual form.
        primary: Form,
        /// Day/month order of numeric dates, if settled.
        order: Option<Order>,
    },
    /// Given with `--date-format`: every date must match `pattern` exactly.
    Explicit {
        /// strftime pattern.
        pattern: String,
        /// Whether the pattern has a four-digit year (`%Y`), so a two-digit one is refused.
        full_year: bool,
    },
}

impl DateFormat {
    /// Checks a `--date-format` pattern: strftime items that write and read back a date.
    pub fn explicit(pattern: &str) -> Result<Self, String> {
        let items: Vec<Item<'_>> = StrftimeItems::new(pattern).collect();
        if items.iter().any(|item| matches!(item, Item::Error)) {
            return Err(format!(
                "--date-format `{pattern}` is not a strftime pattern"
            ));
        }
        let probe = NaiveDate::from_ymd_opt(2001, 2, 23).unwrap_or_default();
        let written = probe.format_with_items(items.iter()).to_string();
        if NaiveDate::parse_from_str(&written, pattern) != Ok(probe) {
            return Err(format!(
                "--date-format `{pattern}` does not give a whole date (it needs a year, a month and a day, e.g. %d/%m/%Y)"
            ));
        }
        Ok(DateFormat::Explicit {
            pattern: pattern.to_string(),
            full_year: pattern.contains("%Y"),
        })
    }

    /// The format in strftime notation.
    pub fn pattern(&self) -> String {
        match self {
            DateFormat::Inferred { primary, order } => primary.pattern(*order),
            DateFormat::Explicit { pattern, .. } => pattern.clone(),
        }
    }

    /// Parses one date; the error is the reason for the dead letter.
    pub fn parse(&self, text: &str) -> Result<NaiveDate, String> {
        match self {
            DateFormat::Explicit { pattern, full_year } => {
                match NaiveDate::parse_from_str(text, pattern) {
                    Ok(date) if !full_year || date.year() >= 1000 => Ok(date),
                    _ => Err(format!(
                        "column `Date`: `{text}` does not match --date-format {pattern}"
                    )),
                }
            }
            DateFormat::Inferred { primary, order } => {
                if *primary == Form::YearFirst(b'-')
                    && let Some(date) = iso_date(text)
                {
                    return Ok(date);
                }
                parse_inferred(text, *primary, *order)
            }
        }
    }
}

/// Fast path for `YYYY-MM-DD` exactly.
fn iso_date(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| {
        bytes[range.clone()]
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| number(&bytes[range]))
    };
    NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)
}

fn parse_inferred(text: &str, primary: Form, order: Option<Order>) -> Result<NaiveDate, String> {
    let unparseable = |expected: &str| format!("column `Date`: `{text}` is not {expected}");
    match classify(text) {
        Shape::TimeOfDay => Err(unparseable("a date (a daily quote has no time of day)")),
        Shape::Unknown => Err(unparseable("a date (e.g. YYYY-MM-DD)")),
        Shape::Named => {
            let date_part = strip_midnight(text).unwrap_or(text);
            NAMED_FORMATS
                .iter()
                .find_map(|format| NaiveDate::parse_from_str(date_part, format).ok())
                .filter(|date| date.year() >= 1000)
                .ok_or_else(|| unparseable("a date (e.g. 04-Jan-2010)"))
        }
        Shape::Numbers {
            form,
            year,
            first,
            second,
        } => {
            let (month, day) = match form {
                Form::YearFirst(_) | Form::Compact => (first, second),
                Form::DayDotMonth => (second, first),
                Form::Named => return Err(unparseable("a date")),
                Form::DayMonth(_) => day_month(text, primary, order, first, second)?,
            };
            NaiveDate::from_ymd_opt(year, month, day)
                .ok_or_else(|| unparseable("a valid calendar date"))
        }
    }
}

/// (month, day) of a numeric day/month date.
fn day_month(
    text: &str,
    primary: Form,
    order: Option<Order>,
    first: u32,
    second: u32,
) -> Result<(u32, u32), String> {
    match order {
        Some(order) => {
            let (day, month) = match order {
                Order::DayFirst => (first, second),
                Order::MonthFirst => (second, first),
            };
            if month > 12 {
                let file_form = match primary {
                    Form::DayMonth(_) => primary,
                    _ => Form::DayMonth(b'/'),
                };
                return Err(format!(
                    "column `Date`: `{text}` contradicts the file's date format {} ({}); give --date-format if the file mixes both",
                    file_form.pattern(Some(order)),
                    match order {
                        Order::DayFirst => "day first",
                        Order::MonthFirst => "month first",
                    }
                ));
            }
            Ok((month, day))
        }
        None if first == second || (first > 12 && second <= 12) => Ok((second, first)),
        None if second > 12 && first <= 12 => Ok((first, second)),
        None => Err(format!(
            "column `Date`: `{text}` is not an unambiguous date (both day-first and month-first readings are valid and the file does not settle which it means; use YYYY-MM-DD or --date-format)"
        )),
    }
}

/// Whether an observed numeric day/month date settles the order.
pub fn evidence(first: u32, second: u32) -> Option<Order> {
    match (first > 12, second > 12) {
        (true, false) if second >= 1 => Some(Order::DayFirst),
        (false, true) if first >= 1 => Some(Order::MonthFirst),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).expect("date")
    }

    fn lenient() -> DateFormat {
        DateFormat::Inferred {
            primary: Form::YearFirst(b'-'),
            order: None,
        }
    }

    #[test]
    fn accepts_common_unambiguous_date_formats() {
        let expected = day(2010, 1, 4);
        for text in [
            "2010-01-04",
            "2010/01/04",
            "2010.01.04",
            "20100104",
            "04.01.2010",
            "04-Jan-2010",
            "4 Jan 2010",
            "Jan 4, 2010",
            "2010-01-04 00:00:00",
            "2010-01-04T00:00:00Z",
            "2010-01-04T00:00:00.000",
        ] {
            assert_eq!(lenient().parse(text), Ok(expected), "{text}");
        }
        let error = lenient().parse("1/4/2010").expect_err("ambiguous");
        assert!(error.contains("unambiguous"), "{error}");
        assert_eq!(lenient().parse("24/01/2010"), Ok(day(2010, 1, 24)));
        assert_eq!(lenient().parse("01/24/2010"), Ok(day(2010, 1, 24)));
        assert!(lenient().parse("2010-01-04 09:30:00").is_err());
        assert!(lenient().parse("10-01-04").is_err());
        assert!(lenient().parse("2010-13-40").is_err());
        assert!(lenient().parse("2010-02-30").is_err());
    }

    #[test]
    fn a_settled_order_reads_ambiguous_dates_and_names_contradictions() {
        let day_first = DateFormat::Inferred {
            primary: Form::DayMonth(b'/'),
            order: Some(Order::DayFirst),
        };
        assert_eq!(day_first.parse("03/07/1979"), Ok(day(1979, 7, 3)));
        assert_eq!(day_first.parse("1979-07-03"), Ok(day(1979, 7, 3)));
        let error = day_first.parse("07/13/1979").expect_err("contradicts");
        assert!(error.contains("contradicts"), "{error}");
        assert!(error.contains("%d/%m/%Y"), "{error}");
        let month_first = DateFormat::Inferred {
            primary: Form::DayMonth(b'-'),
            order: Some(Order::MonthFirst),
        };
        assert_eq!(month_first.parse("03-07-1979"), Ok(day(1979, 3, 7)));
        assert_eq!(month_first.pattern(), "%m-%d-%Y");
    }

    #[test]
    fn explicit_formats_are_strict_and_checked() {
        let format = DateFormat::explicit("%d/%m/%Y").expect("valid");
        assert_eq!(format.parse("03/07/1979"), Ok(day(1979, 7, 3)));
        let error = format.parse("1979-07-03").expect_err("strict");
        assert!(
            error.contains("does not match --date-format %d/%m/%Y"),
            "{error}"
        );
        assert!(format.parse("03/07/79").is_err(), "no century is guessed");
        let short = DateFormat::explicit("%d/%m/%y").expect("valid");
        assert_eq!(short.parse("03/07/79"), Ok(day(1979, 7, 3)));
        assert!(DateFormat::explicit("%d/%m").is_err());
        assert!(DateFormat::explicit("%Q").is_err());
    }

    #[test]
    fn shapes_and_evidence() {
        assert_eq!(
            classify("03/07/1979"),
            Shape::Numbers {
                form: Form::DayMonth(b'/'),
                year: 1979,
                first: 3,
                second: 7
            }
        );
        assert_eq!(classify("Jan 4, 2010"), Shape::Named);
        assert_eq!(classify("2010-01-04 09:30"), Shape::TimeOfDay);
        assert_eq!(evidence(13, 7), Some(Order::DayFirst));
        assert_eq!(evidence(7, 13), Some(Order::MonthFirst));
        assert_eq!(evidence(7, 3), None);
        assert_eq!(evidence(13, 13), None);
    }
}
