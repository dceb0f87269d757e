//! Fuzzing both JSON wire formats of a quote: stockstream's own ([`Quote::to_json`]) and the
//! tutorial producer's (`{"Index": …, "Date": …, …, "CloseUSD": …}`), both decoded by
//! [`Quote::from_any_json`].
//!
//! Properties: no input panics the decoders; a decoded quote is always valid and a refusal always
//! has a reason; every valid quote survives each format unchanged (to the bit, floats included).
//! The corpus is `tests/data/fuzz-corpus/quote-json/`. `make fuzz` runs this with
//! `PROPTEST_CASES=20000`.

#[path = "support/corpus.rs"]
mod corpus;
#[path = "support/quotes.rs"]
mod quotes;

use proptest::prelude::*;
use stockstream_common::record::{Quote, WireFormat};

/// Cases per property in `cargo test` (see [`corpus::config`]).
const CASES: u32 = 256;

/// Decodes `payload` and checks what any outcome must satisfy.
fn decode(payload: &[u8]) -> Result<(Quote, WireFormat), String> {
    let own = Quote::from_json(payload);
    match Quote::from_any_json(payload) {
        Ok((quote, format)) => {
            assert_eq!(quote.validate(), Ok(()), "a decoded quote is valid");
            if format == WireFormat::Stockstream {
                assert_eq!(
                    own.as_ref(),
                    Ok(&quote),
                    "from_json agrees with from_any_json"
                );
            }
            Ok((quote, format))
        }
        Err(error) => {
            let reason = error.to_string();
            assert!(!reason.trim().is_empty(), "{error:?} has no reason");
            assert!(
                own.is_err(),
                "from_json accepted what from_any_json refused"
            );
            Err(reason)
        }
    }
}

/// Python's `repr` of a float, as the tutorial's `json.dumps` writes it: the shortest digits that
/// read back exactly, positional from 1e-4 to 1e16, else `d.ddde+XX`.
fn python_float(value: f64) -> String {
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific.split_once('e').expect("{:e} has an exponent");
    let exponent: i32 = exponent.parse().expect("exponent");
    if (-4..16).contains(&exponent) {
        let positional = value.to_string();
        if positional.contains('.') {
            positional
        } else {
            format!("{positional}.0")
        }
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    }
}

/// How the tutorial producer may have written a quote's volume and date.
#[derive(Debug, Clone, Copy)]
struct TutorialStyle {
    volume_as_float: bool,
    date_suffix: &'static str,
    spaced: bool,
}

fn tutorial_style() -> impl Strategy<Value = TutorialStyle> {
    (
        any::<bool>(),
        prop::sample::select(vec![
            "",
            " 00:00:00",
            "T00:00:00",
            "T00:00:00Z",
            "T00:00:00.000",
        ]),
        any::<bool>(),
    )
        .prop_map(|(volume_as_float, date_suffix, spaced)| TutorialStyle {
            volume_as_float,
            date_suffix,
            spaced,
        })
}

/// The fields of a tutorial-format message as (key, raw JSON value).
fn tutorial_fields(quote: &Quote, style: TutorialStyle) -> Vec<(String, String)> {
    let volume = if style.volume_as_float && quote.volume.unsigned_abs() <= 1 << 53 {
        python_float(quote.volume as f64)
    } else {
        quote.volume.to_string()
    };
    let close_usd = quote.close_usd.map_or("null".to_string(), python_float);
    vec![
        ("Index".into(), format!("\"{}\"", quote.symbol)),
        (
            "Date".into(),
            format!(
                "\"{}{}\"",
                quote.trade_date.format("%Y-%m-%d"),
                style.date_suffix
            ),
        ),
        ("Open".into(), python_float(quote.open)),
        ("High".into(), python_float(quote.high)),
        ("Low".into(), python_float(quote.low)),
        ("Close".into(), python_float(quote.close)),
        ("Adj Close".into(), python_float(quote.adj_close)),
        ("Volume".into(), volume),
        ("CloseUSD".into(), close_usd),
    ]
}

/// The fields of a stockstream-format message as (key, raw JSON value), as `to_json` writes them.
fn own_fields(quote: &Quote) -> Vec<(String, String)> {
    let value = serde_json::to_value(quote).expect("serializes");
    let object = value.as_object().expect("an object");
    object
        .iter()
        .map(|(key, value)| (key.clone(), value.to_string()))
        .collect()
}

fn render(fields: &[(String, String)], spaced: bool) -> String {
    let (colon, comma) = if spaced { (": ", ", ") } else { (":", ",") };
    let body: Vec<String> = fields
        .iter()
        .map(|(key, value)| format!("\"{key}\"{colon}{value}"))
        .collect();
    format!("{{{}}}", body.join(comma))
}

/// Raw JSON values that break a field: wrong types, non-finite and huge numbers, odd strings.
fn nasty_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "null",
            "true",
            "[]",
            "{}",
            "\"\"",
            "\" \"",
            "0",
            "-0",
            "-0.0",
            "-1",
            "1.5",
            "1e309",
            "-1e309",
            "1e-400",
            "NaN",
            "Infinity",
            "-Infinity",
            "nan",
            "\"NaN\"",
            "\"inf\"",
            "\"2540.1\"",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775809",
            "18446744073709551616",
            "9007199254740993.0",
            "1.7976931348623157e308",
            "5e-324",
            "0x10",
            "01",
            "+1",
            ".5",
            "5.",
            "1e",
            "\"HSI\"",
            "\"\\u0000\"",
            "\"\\ud800\"",
            "\"日本\"",
            "\"a\\\"b\"",
            "\"1987-02-29\"",
            "\"1987-13-01\"",
            "\"0000-01-01\"",
            "\"+10000-01-01\"",
            "\"1987-01-02 09:30:00\"",
            "\"1987-01-02T\"",
            "\"02.01.1987\"",
            "\"1799-12-31\"",
            "\"2201-01-01\"",
            "[1,[2,[3]]]",
            "{\"a\":{\"b\":1}}",
        ])
        .prop_map(str::to_string),
        "[0-9]{1,400}(\\.[0-9]{1,40})?(e[+-]?[0-9]{1,4})?",
        any::<String>().prop_map(|text| serde_json::Value::String(text).to_string()),
        (1usize..100_000).prop_map(|length| format!("\"{}\"", "A".repeat(length))),
        (1usize..300).prop_map(|depth| format!("{}1{}", "[".repeat(depth), "]".repeat(depth))),
    ]
}

/// How one valid message is broken.
#[derive(Debug, Clone)]
enum Mutation {
    /// One field gets a nasty value.
    Value(usize, String),
    /// One field is left out.
    Remove(usize),
    /// One field appears twice.
    Duplicate(usize),
    /// An unknown field is added.
    Unknown(String),
    /// One key changes case (`symbol` → `Symbol`).
    KeyCase(usize),
    /// The text is cut at a byte.
    Truncate(usize),
    /// The message is wrapped in an array.
    Array,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        6 => (0usize..9, nasty_value()).prop_map(|(field, value)| Mutation::Value(field, value)),
        1 => (0usize..9).prop_map(Mutation::Remove),
        1 => (0usize..9).prop_map(Mutation::Duplicate),
        1 => "[A-Za-z_ ]{1,12}".prop_map(Mutation::Unknown),
        1 => (0usize..9).prop_map(Mutation::KeyCase),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => Just(Mutation::Array),
    ]
}

fn mutate(mut fields: Vec<(String, String)>, mutation: &Mutation, spaced: bool) -> Vec<u8> {
    let count = fields.len();
    match mutation {
        Mutation::Value(field, value) => fields[field % count].1 = value.clone(),
        Mutation::Remove(field) => {
            fields.remove(field % count);
        }
        Mutation::Duplicate(field) => {
            let copy = fields[field % count].clone();
            fields.push(copy);
        }
        Mutation::Unknown(key) => fields.push((key.clone(), "1".into())),
        Mutation::KeyCase(field) => {
            let key = &mut fields[field % count].0;
            *key = if key.chars().next().is_some_and(char::is_uppercase) {
                key.to_lowercase()
            } else {
                key.to_uppercase()
            };
        }
        Mutation::Truncate(at) => {
            let text = render(&fields, spaced).into_bytes();
            return text[..at % (text.len() + 1)].to_vec();
        }
        Mutation::Array => return format!("[{}]", render(&fields, spaced)).into_bytes(),
    }
    render(&fields, spaced).into_bytes()
}

proptest! {
    #![proptest_config(corpus::config(CASES))]

    #[test]
    fn arbitrary_bytes_never_panic(payload in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&payload);
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = decode(text.as_bytes());
    }

    #[test]
    fn json_shaped_soup_never_panics(
        parts in prop::collection::vec(
            prop_oneof![
                prop::sample::select(vec![
                    "{", "}", "[", "]", ",", ":", "\"Index\"", "\"symbol\"", "\"Date\"",
                    "\"trade_date\"", "\"Volume\"", "\"close_usd\"", "\"CloseUSD\"", "null",
                    "1e999", "-0", "\"HSI\"", "\"1987-01-02\"", "2540.1", " ", "\\", "\"",
                ])
                .prop_map(str::to_string),
                nasty_value(),
            ],
            0..40,
        )
    ) {
        let _ = decode(parts.concat().as_bytes());
    }

    /// A valid quote → `to_json` → decode gives the same quote, in the stockstream format.
    #[test]
    fn own_format_round_trips(quote in quotes::quote(false)) {
        let payload = quote.to_json();
        prop_assert_eq!(Quote::from_json(&payload), Ok(quote.clone()));
        prop_assert_eq!(
            decode(&payload),
            Ok((quote, WireFormat::Stockstream)),
            "{}",
            String::from_utf8_lossy(&payload)
        );
    }

    /// A valid quote written as the tutorial's producer writes it (Python floats, a volume as
    /// float or integer, a date with or without a midnight time) decodes to the same quote.
    #[test]
    fn tutorial_format_round_trips(quote in quotes::quote(true), style in tutorial_style()) {
        let payload = render(&tutorial_fields(&quote, style), style.spaced);
        prop_assert_eq!(
            decode(payload.as_bytes()),
            Ok((quote, WireFormat::Tutorial)),
            "{}",
            payload
        );
    }

    /// A valid message of either format with one thing broken: never a panic, never an invalid
    /// quote, never a refusal without a reason.
    #[test]
    fn near_valid_messages_are_decoded_or_refused_with_a_reason(
        quote in quotes::quote(true),
        style in tutorial_style(),
        tutorial in any::<bool>(),
        mutation in mutation(),
    ) {
        let fields = if tutorial { tutorial_fields(&quote, style) } else { own_fields(&quote) };
        let payload = mutate(fields, &mutation, style.spaced);
        let _ = decode(&payload);
    }
}

#[test]
fn python_floats_are_written_as_python_writes_them() {
    assert_eq!(python_float(2568.300049), "2568.300049");
    assert_eq!(python_float(0.0001), "0.0001");
    assert_eq!(python_float(0.00001), "1e-05");
    assert_eq!(python_float(1e16), "1e+16");
    assert_eq!(python_float(123.0), "123.0");
    assert_eq!(python_float(5e-324), "5e-324");
    assert_eq!(
        python_float(1.7976931348623157e308),
        "1.7976931348623157e+308"
    );
}

/// Every corpus entry is a whole message: `accept-…` decodes (and survives a re-encoding in the
/// stockstream format), `reject-…` is refused with a reason.
#[test]
fn corpus() {
    corpus::run_corpus("quote-json", |input| {
        let (quote, _) = decode(input)?;
        assert_eq!(Quote::from_json(&quote.to_json()), Ok(quote));
        Ok(())
    });
}
