//! Prices and volumes as files write them: a decimal point (`2540.1`) or a decimal comma
//! (`2540,1`, with `.` allowed only as a thousands separator: `1.234.567,89`), and the markers
//! exports use for a missing value (`null`, `NaN`, `N/A`, `-`).

use stockstream_common::record::whole_volume;

/// The decimal separator of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Decimal {
    /// `2540.1`.
    Point,
    /// `2540,1` (most of continental Europe; usually with `;` as the delimiter).
    Comma,
}

impl Decimal {
    /// The separator character.
    pub fn as_char(self) -> char {
        match self {
            Decimal::Point => '.',
            Decimal::Comma => ',',
        }
    }
}

/// Why a field is not a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberError {
    /// The field is empty.
    Empty,
    /// The field holds a missing-value marker such as `null`.
    Missing,
    /// The field is something else.
    Unparseable,
}

/// Whether `text` is one of the markers exports write for "no value".
pub fn is_missing_marker(text: &str) -> bool {
    ["null", "nan", "n/a", "na", "none", "-", "#n/a"]
        .iter()
        .any(|marker| text.eq_ignore_ascii_case(marker))
}

/// Parses a price.
pub fn parse_number(text: &str, decimal: Decimal) -> Result<f64, NumberError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(NumberError::Empty);
    }
    let parsed = match decimal {
        Decimal::Point => text.parse::<f64>().ok(),
        Decimal::Comma => comma_to_point(text).and_then(|text| text.parse::<f64>().ok()),
    };
    match parsed {
        // Rust parses `NaN` and `inf`; neither is a price.
        Some(value) if value.is_finite() => Ok(value),
        _ if is_missing_marker(text) => Err(NumberError::Missing),
        _ => Err(NumberError::Unparseable),
    }
}

/// Parses a volume: a whole number, written as an integer or as a float (`1200.0`).
///
/// A float written with decimals (`1200.0`, `1.200,0`) is read from its digits, not through an
/// `f64`: a float rounds the digits of a large volume (`9007199254740993.0` would read as
/// `…992`) and turns a fraction beyond its precision (`4503599627370496.5`) into a whole number.
/// Other forms (`1.2e3`) go through an `f64` and must be whole and at most 2^53.
pub fn parse_volume(text: &str, decimal: Decimal) -> Result<i64, NumberError> {
    let trimmed = text.trim();
    if let Ok(volume) = trimmed.parse::<i64>() {
        return Ok(volume);
    }
    let normalized = match decimal {
        Decimal::Point => Some(trimmed.to_string()),
        Decimal::Comma => comma_to_point(trimmed),
    };
    if let Some((whole, fraction)) = normalized.as_deref().and_then(|text| text.split_once('.'))
        && let Ok(volume) = whole.parse::<i64>()
        && fraction.bytes().all(|byte| byte.is_ascii_digit())
    {
        return if fraction.bytes().all(|byte| byte == b'0') {
            Ok(volume)
        } else {
            Err(NumberError::Unparseable)
        };
    }
    let value = parse_number(trimmed, decimal)?;
    whole_volume(value).ok_or(NumberError::Unparseable)
}

/// `1.234,5` → `1234.5`; `None` when the dots are not thousands groups.
fn comma_to_point(text: &str) -> Option<String> {
    let (whole, fraction) = match text.split_once(',') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    if whole.contains('.') {
        let digits = whole.trim_start_matches(['-', '+']);
        let mut groups = digits.split('.');
        let first = groups.next()?;
        let grouped = (1..=3).contains(&first.len())
            && groups.all(|group| group.len() == 3 && group.bytes().all(|b| b.is_ascii_digit()));
        if !grouped {
            return None;
        }
    }
    let mut out = whole.replace('.', "");
    if let Some(fraction) = fraction {
        if fraction.contains([',', '.']) {
            return None;
        }
        out.push('.');
        out.push_str(fraction);
    }
    Some(out)
}

/// Whether a sample value is written with a decimal comma (`2540,1`, `1.234,5`).
pub fn looks_like_decimal_comma(text: &str) -> bool {
    let text = text.trim();
    let Some((whole, fraction)) = text.split_once(',') else {
        return false;
    };
    !whole.is_empty()
        && !fraction.is_empty()
        && fraction.bytes().all(|byte| byte.is_ascii_digit())
        && whole
            .trim_start_matches(['-', '+'])
            .bytes()
            .all(|byte| byte.is_ascii_digit() || byte == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_commas_and_missing_values() {
        assert_eq!(parse_number("2540.1", Decimal::Point), Ok(2540.1));
        assert_eq!(parse_number(" 2913. ", Decimal::Point), Ok(2913.0));
        assert_eq!(parse_number("2540,1", Decimal::Comma), Ok(2540.1));
        assert_eq!(parse_number("1.234.567,5", Decimal::Comma), Ok(1_234_567.5));
        assert_eq!(parse_number("2540", Decimal::Comma), Ok(2540.0));
        assert_eq!(
            parse_number("2.54", Decimal::Comma),
            Err(NumberError::Unparseable)
        );
        assert_eq!(
            parse_number("2540,1", Decimal::Point),
            Err(NumberError::Unparseable)
        );
        assert_eq!(
            parse_number("null", Decimal::Point),
            Err(NumberError::Missing)
        );
        assert_eq!(
            parse_number("NaN", Decimal::Comma),
            Err(NumberError::Missing)
        );
        assert_eq!(
            parse_number("inf", Decimal::Point),
            Err(NumberError::Unparseable)
        );
        assert_eq!(parse_number(" ", Decimal::Point), Err(NumberError::Empty));
    }

    #[test]
    fn volumes_are_whole() {
        assert_eq!(parse_volume("1200", Decimal::Point), Ok(1200));
        assert_eq!(parse_volume("1200.0", Decimal::Point), Ok(1200));
        assert_eq!(parse_volume("1.200", Decimal::Comma), Ok(1200));
        assert_eq!(parse_volume("1200,0", Decimal::Comma), Ok(1200));
        assert_eq!(
            parse_volume("12.5", Decimal::Point),
            Err(NumberError::Unparseable)
        );
        assert_eq!(
            parse_volume("null", Decimal::Point),
            Err(NumberError::Missing)
        );
        assert_eq!(parse_volume("1.2e3", Decimal::Point), Ok(1200));
        assert_eq!(parse_volume("-0.0", Decimal::Point), Ok(0));
    }

    /// Through an `f64` these read as 2^53 and 2^52, silently (found by `tests/fuzz_csv.rs`).
    #[test]
    fn large_float_volumes_are_read_from_their_digits() {
        assert_eq!(
            parse_volume("9007199254740993.0", Decimal::Point),
            Ok(9_007_199_254_740_993)
        );
        assert_eq!(
            parse_volume("9223372036854775807.00", Decimal::Point),
            Ok(i64::MAX)
        );
        assert_eq!(
            parse_volume("4503599627370496.5", Decimal::Point),
            Err(NumberError::Unparseable)
        );
        assert_eq!(
            parse_volume("9.007.199.254.740.993,0", Decimal::Comma),
            Ok(9_007_199_254_740_993)
        );
        assert_eq!(
            parse_volume("9223372036854775808.0", Decimal::Point),
            Err(NumberError::Unparseable)
        );
    }

    #[test]
    fn decimal_commas_are_recognised() {
        assert!(looks_like_decimal_comma("2540,1"));
        assert!(looks_like_decimal_comma("1.234,56"));
        assert!(!looks_like_decimal_comma("2540.1"));
        assert!(!looks_like_decimal_comma("a,b"));
        assert!(!looks_like_decimal_comma("1,"));
    }
}
