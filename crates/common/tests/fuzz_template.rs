//! Fuzzing the partition template parser ([`PartitionTemplate`]'s `FromStr`) and its rendering.
//!
//! Properties: no text panics the parser and every refusal has a reason; a valid template's text
//! parses back to the same template (also with surrounding blanks and slashes); the path a valid
//! template renders for a valid quote is the same through `write_path` and `partition_path`, and
//! reads back to the same partition values. The corpus is `tests/data/fuzz-corpus/template/`.
//! `make fuzz` runs this with `PROPTEST_CASES=20000`.

#[path = "support/corpus.rs"]
mod corpus;
#[path = "support/quotes.rs"]
mod quotes;

use proptest::prelude::*;
use stockstream_common::lake::{
    PartitionTemplate, hive_escape, hive_unescape, parse_partition_path, partition_path,
};

/// Cases per property in `cargo test` (see [`corpus::config`]).
const CASES: u32 = 512;

const PLACEHOLDERS: [&str; 10] = [
    "symbol",
    "year",
    "yyyy",
    "month",
    "mm",
    "day",
    "dd",
    "yyyy-mm",
    "yyyy-mm-dd",
    "date",
];

/// Column names of the files, which no partition key may take.
const FILE_COLUMNS: [&str; 12] = [
    "symbol",
    "trade_date",
    "open",
    "high",
    "low",
    "close",
    "adj_close",
    "volume",
    "close_usd",
    "kafka_partition",
    "kafka_offset",
    "ingested_at",
];

/// Parses `text` and checks what any outcome must satisfy.
fn parse(text: &str) -> Result<PartitionTemplate, String> {
    match text.parse::<PartitionTemplate>() {
        Ok(template) => {
            let again = template.to_string().parse::<PartitionTemplate>();
            assert_eq!(
                again.as_ref(),
                Ok(&template),
                "`{text}` → `{template}` does not parse back to the same template"
            );
            Ok(template)
        }
        Err(reason) => {
            assert!(
                !reason.trim().is_empty(),
                "`{text}` refused without a reason"
            );
            Err(reason)
        }
    }
}

/// Literal text a template value may hold: path-safe ASCII, or any character at all (the parser
/// decides), with blanks and other scripts well represented.
fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z0-9_.~-]{1,6}",
        1 => prop::sample::select(vec![
            "é", "日本", "Ω", "\u{a0}", "\u{3000}", "\u{85}", "\u{200b}", "\u{2028}", "\u{feff}",
        ])
        .prop_map(str::to_string),
        1 => any::<char>().prop_map(String::from),
    ]
}

/// A segment value: literal text and placeholders, at least one placeholder.
fn value() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        prop::sample::select(PLACEHOLDERS.to_vec()).prop_map(|name| format!("{{{name}}}")),
        literal(),
    ];
    (
        prop::collection::vec(part.clone(), 0..3),
        prop::sample::select(PLACEHOLDERS.to_vec()),
        prop::collection::vec(part, 0..3),
    )
        .prop_map(|(before, placeholder, after)| {
            format!("{}{{{placeholder}}}{}", before.concat(), after.concat())
        })
}

/// A template whose segments all look valid (literal text may still be refused).
fn candidate() -> impl Strategy<Value = String> {
    let name = "[a-z][a-z0-9_]{0,10}".prop_filter("a file column", |name| {
        !FILE_COLUMNS.contains(&name.as_str())
    });
    (
        prop::collection::vec((name, value()), 1..5),
        any::<bool>(),
        prop::sample::select(vec!["", "/"]),
        prop::sample::select(vec!["", "/"]),
    )
        .prop_map(|(segments, symbol_first, leading, trailing)| {
            let mut seen = std::collections::HashSet::new();
            let mut parts: Vec<String> = segments
                .into_iter()
                .filter(|(name, _)| seen.insert(name.clone()))
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            if symbol_first {
                parts.insert(0, "symbol={symbol}".into());
            }
            format!("{leading}{}{trailing}", parts.join("/"))
        })
}

/// A valid template without blanks (which surrounding padding could join or split).
fn valid_template() -> impl Strategy<Value = String> {
    candidate().prop_filter("literal text the parser refuses", |text| {
        !text.contains(char::is_whitespace) && text.parse::<PartitionTemplate>().is_ok()
    })
}

/// Text in the template alphabet: names, placeholders, separators, braces, blanks.
fn template_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            prop::sample::select(vec![
                "{",
                "}",
                "=",
                "/",
                "//",
                "{symbol}",
                "{year}",
                "{yyyy-mm-dd}",
                "{sym}",
                "{}",
                "symbol",
                "year",
                "close",
                "trade_date",
                "Symbol",
                "a",
                "_",
                "%",
                "%2F",
                " ",
                "\t",
                "\n",
                "\u{a0}",
                ":",
                "é",
                "{{",
                "}}",
                "{year",
                "year}",
                "\u{0}",
            ])
            .prop_map(str::to_string),
            literal(),
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(corpus::config(CASES))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = parse(&text);
    }

    #[test]
    fn template_shaped_soup_never_panics(text in template_soup()) {
        let _ = parse(&text);
    }

    /// Any literal text in otherwise valid segments: parsed (and round-tripping) or refused
    /// with a reason.
    #[test]
    fn near_valid_templates_parse_or_are_refused_with_a_reason(text in candidate()) {
        let _ = parse(&text);
    }

    /// A valid template reads the same with blanks and slashes around it, and its text parses
    /// back to it.
    #[test]
    fn valid_templates_round_trip(
        text in valid_template(),
        before in prop::sample::select(vec!["", " ", "/", " /", "\t/"]),
        after in prop::sample::select(vec!["", " ", "/", "/ ", "\n"]),
    ) {
        let template = parse(&text).expect("valid");
        let padded = parse(&format!("{before}{text}{after}"));
        prop_assert_eq!(padded, Ok(template.clone()), "`{}{}{}`", before, text, after);
        prop_assert_eq!(template.to_string(), text.trim_matches('/'));
    }

    /// The path of a valid quote under a valid template: `write_path` and `partition_path` agree,
    /// and the path reads back to the partition values.
    #[test]
    fn paths_render_and_read_back(text in valid_template(), quote in quotes::quote(false)) {
        let template = parse(&text).expect("valid");
        let values = template.partition(&quote);
        let keys = template.partition_keys();
        prop_assert_eq!(values.len(), keys.len());
        for (value, key) in values.iter().zip(&keys) {
            prop_assert_eq!(&value.name, &key.name);
        }
        let path = partition_path(&values);
        let mut written = String::new();
        template.write_path(&quote, &mut written);
        prop_assert_eq!(&written, &path);
        let key = format!("quotes/{path}/quotes+0+00000000000000000001+00000000000000000002.parquet");
        prop_assert_eq!(parse_partition_path("quotes", &key), Some(values));
    }

    #[test]
    fn hive_escaping_round_trips(text in any::<String>()) {
        let escaped = hive_escape(&text);
        prop_assert!(!escaped.contains('/'), "{}", escaped);
        prop_assert_eq!(hive_unescape(&escaped), text);
    }
}

/// Every corpus entry is a template's text: `accept-…` parses (and round-trips), `reject-…` is
/// refused with a reason.
#[test]
fn corpus() {
    corpus::run_corpus("template", |input| {
        let text = std::str::from_utf8(input).map_err(|error| format!("not UTF-8: {error}"))?;
        parse(text).map(|_| ())
    });
}
