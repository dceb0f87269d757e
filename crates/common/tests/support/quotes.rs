//! Generators of valid quotes for the fuzz tests' round trips (included by path, like
//! `corpus.rs`): every value they produce passes `Quote::validate`.

use chrono::{Days, NaiveDate};
use proptest::prelude::*;
use stockstream_common::record::Quote;

/// A valid symbol: 1-32 characters of `A-Z a-z 0-9 . ^ _ -`.
pub(crate) fn symbol() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("HSI".to_string()),
        Just("^GSPC".to_string()),
        "[A-Za-z0-9.^_-]{1,32}",
    ]
}

/// A trading day of the years 1800-2200.
pub(crate) fn trade_date() -> impl Strategy<Value = NaiveDate> {
    let first = NaiveDate::from_ymd_opt(1800, 1, 1).expect("date");
    let last = NaiveDate::from_ymd_opt(2200, 12, 31).expect("date");
    let days = last.signed_duration_since(first).num_days() as u64;
    (0..=days).prop_map(move |offset| first + Days::new(offset))
}

/// A positive finite price: as the dataset writes them (up to 6 decimals), any positive finite
/// float (subnormals too), or an extreme.
pub(crate) fn price() -> impl Strategy<Value = f64> {
    use proptest::num::f64::{NORMAL, POSITIVE, SUBNORMAL};
    prop_oneof![
        4 => (1u64..=100_000_000_000, 0i32..=6)
            .prop_map(|(units, scale)| units as f64 / 10f64.powi(scale)),
        2 => POSITIVE | NORMAL | SUBNORMAL,
        1 => prop::sample::select(vec![
            f64::MIN_POSITIVE,
            f64::MAX,
            5e-324,
            374.27000000000004,
            0.1 + 0.2,
            1e16,
            1e-5,
            9_007_199_254_740_993.0,
        ]),
    ]
}

/// A non-negative volume, up to `i64::MAX`.
pub(crate) fn volume() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => 0i64..=10_000_000_000,
        1 => 0i64..=i64::MAX,
        1 => prop::sample::select(vec![0, 1, 1 << 53, (1 << 53) + 1, i64::MAX]),
    ]
}

/// A valid quote; `close_usd` is known when `with_close_usd`, else known or not.
pub(crate) fn quote(with_close_usd: bool) -> impl Strategy<Value = Quote> {
    let close_usd = if with_close_usd {
        price().prop_map(Some).boxed()
    } else {
        proptest::option::of(price()).boxed()
    };
    (
        symbol(),
        trade_date(),
        (price(), price(), price(), price(), price()),
        volume(),
        close_usd,
    )
        .prop_map(
            |(symbol, trade_date, (open, one, other, close, adj_close), volume, close_usd)| {
                let quote = Quote {
                    symbol,
                    trade_date,
                    open,
                    high: one.max(other),
                    low: one.min(other),
                    close,
                    adj_close,
                    volume,
                    close_usd,
                };
                debug_assert!(quote.validate().is_ok(), "{quote:?}");
                quote
            },
        )
}
