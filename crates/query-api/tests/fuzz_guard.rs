//! Fuzzing the read-only SQL guard ([`guard::check`]), which every SQL text passes before an
//! engine sees it.
//!
//! Properties: no text panics the guard (nor overflows its stack) and every refusal has a
//! reason; generated read-only queries over the catalogued tables pass, with their `?`
//! placeholders counted; generated writes, DDL, several statements and reads outside the
//! catalogued tables are refused with a reason. The corpus is
//! `tests/data/fuzz-corpus/sql-guard/` (next to `tests/data/guard-rejected.sql`, which the unit
//! tests and the HTTP tests replay). `make fuzz` runs this with `PROPTEST_CASES=20000`.

#[path = "../../common/tests/support/corpus.rs"]
mod corpus;

use std::collections::HashSet;

use proptest::prelude::*;
use stockstream_query_api::Error;
use stockstream_query_api::guard::{Scope, check};

/// Cases per property in `cargo test` (see [`corpus::config`]).
const CASES: u32 = 128;

fn scope() -> Scope {
    Scope {
        database: "stockstream".into(),
        tables: HashSet::from(["quotes".to_string(), "quotes_1m".to_string()]),
    }
}

/// Checks `sql` and what any outcome must satisfy: the number of placeholders, or the reason.
fn verdict(sql: &str) -> Result<usize, String> {
    match check(sql, &scope()) {
        Ok(checked) => Ok(checked.placeholders),
        Err(error) => {
            let reason = match &error {
                Error::Forbidden(reason)
                | Error::InvalidQuery(reason)
                | Error::BadRequest(reason) => reason.clone(),
                other => panic!("`{sql}`: refused as {other:?}"),
            };
            assert!(
                !reason.trim().is_empty(),
                "`{sql}` refused without a reason"
            );
            Err(error.to_string())
        }
    }
}

/// SQL text and its number of `?` placeholders.
type Sql = (String, usize);

/// Applies a keyword case to everything outside string literals and quoted identifiers (the
/// generated comments hold no quotes, which this does not tell from literals).
fn recase(sql: &str, case: u8) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    for character in sql.chars() {
        match quote {
            Some(open) if character == open => quote = None,
            Some(_) => {}
            None if character == '\'' || character == '"' => quote = Some(character),
            None => {}
        }
        let recased = match (quote, case) {
            (None, 1) => character.to_ascii_lowercase(),
            (None, 2) => character.to_ascii_uppercase(),
            _ => character,
        };
        out.push(recased);
    }
    out
}

/// A catalogued table, as users may name it.
fn table() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "quotes",
        "QUOTES",
        "Quotes",
        "\"quotes\"",
        "stockstream.quotes",
        "STOCKSTREAM.Quotes",
        "\"stockstream\".\"quotes\"",
        "awsdatacatalog.stockstream.quotes",
        "AwsDataCatalog.stockstream.quotes_1m",
        "quotes_1m",
    ])
    .prop_map(str::to_string)
}

fn column() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "symbol",
        "trade_date",
        "open",
        "high",
        "low",
        "close",
        "adj_close",
        "volume",
        "close_usd",
        "year",
        "kafka_offset",
        "ingested_at",
        "\"close\"",
    ])
    .prop_map(str::to_string)
}

/// A string literal with awkward contents: quotes, statement separators, comments, `?`, other
/// scripts, anything.
fn string_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "HSI",
            "it's",
            "; DROP TABLE quotes; --",
            "?",
            "$1",
            "/* x */",
            "--",
            "日本",
            "\\",
            "'",
            "\"",
            "%_",
            "\n",
        ])
        .prop_map(str::to_string),
        any::<String>(),
    ]
    .prop_map(|text| format!("'{}'", text.replace('\'', "''")))
}

fn leaf() -> impl Strategy<Value = Sql> {
    prop_oneof![
        4 => column().prop_map(|column| (column, 0)),
        1 => any::<i64>().prop_map(|value| (value.to_string(), 0)),
        1 => any::<f64>()
            .prop_filter("finite", |value| value.is_finite())
            .prop_map(|value| (format!("{value:?}"), 0)),
        2 => string_literal().prop_map(|text| (text, 0)),
        2 => Just(("?".to_string(), 1)),
        1 => prop::sample::select(vec!["NULL", "TRUE", "FALSE", "DATE '2010-01-04'"])
            .prop_map(|text| (text.to_string(), 0)),
        1 => Just(("CAST(? AS DATE)".to_string(), 1)),
    ]
}

fn expression() -> impl Strategy<Value = Sql> {
    leaf().prop_recursive(4, 32, 3, |inner| {
        let operator = prop::sample::select(vec![
            "+", "-", "*", "/", "%", "=", "<>", "<", "<=", ">", ">=", "AND", "OR", "||", "LIKE",
        ]);
        let function = prop::sample::select(vec![
            "abs", "round", "upper", "lower", "length", "max", "min", "sum", "avg", "count",
        ]);
        prop_oneof![
            (inner.clone(), operator, inner.clone())
                .prop_map(|((a, x), op, (b, y))| (format!("({a} {op} {b})"), x + y)),
            inner.clone().prop_map(|(a, x)| (format!("NOT ({a})"), x)),
            (inner.clone(), any::<bool>()).prop_map(|((a, x), not)| {
                (format!("({a}) IS {}NULL", if not { "NOT " } else { "" }), x)
            }),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|((a, x), (b, y), (c, z))| {
                (format!("({a}) BETWEEN ({b}) AND ({c})"), x + y + z)
            }),
            (inner.clone(), prop::collection::vec(inner.clone(), 1..4)).prop_map(
                |((a, x), list)| {
                    let count: usize = list.iter().map(|(_, n)| n).sum();
                    let items: Vec<String> = list.into_iter().map(|(text, _)| text).collect();
                    (format!("({a}) IN ({})", items.join(", ")), x + count)
                }
            ),
            (function, inner.clone()).prop_map(|(name, (a, x))| (format!("{name}({a})"), x)),
            (inner.clone(), inner.clone())
                .prop_map(|((a, x), (b, y))| { (format!("coalesce({a}, {b})"), x + y) }),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|((a, x), (b, y), (c, z))| {
                (format!("CASE WHEN {a} THEN {b} ELSE {c} END"), x + y + z)
            }),
            (inner.clone(), table()).prop_map(|((a, x), table)| {
                (format!("({a}) IN (SELECT symbol FROM {table})"), x)
            }),
            (inner, table()).prop_map(|((a, x), table)| {
                (format!("EXISTS (SELECT 1 FROM {table} WHERE {a})"), x)
            }),
        ]
    })
}

/// A read-only `SELECT` over a catalogued table.
fn select() -> impl Strategy<Value = Sql> {
    let projection = prop_oneof![
        Just(("*".to_string(), 0)),
        Just(("count(*)".to_string(), 0)),
        prop::collection::vec((expression(), any::<bool>()), 1..4).prop_map(|items| {
            let count = items.iter().map(|((_, n), _)| n).sum();
            let texts: Vec<String> = items
                .into_iter()
                .enumerate()
                .map(|(position, ((text, _), alias))| {
                    if alias {
                        format!("{text} AS \"c{position} \"\"x\"\"\"")
                    } else {
                        text
                    }
                })
                .collect();
            (texts.join(", "), count)
        }),
    ];
    (
        any::<bool>(),
        projection,
        table(),
        proptest::option::of(table()),
        proptest::option::of(expression()),
        proptest::option::of(column()),
        proptest::option::of((column(), any::<bool>())),
        proptest::option::of((0u32..1000, proptest::option::of(0u32..1000))),
    )
        .prop_map(
            |(distinct, (items, p0), table, join, filter, group, order, limit)| {
                let mut sql = format!(
                    "SELECT {}{items} FROM {table} AS a",
                    if distinct { "DISTINCT " } else { "" }
                );
                if let Some(other) = join {
                    sql.push_str(&format!(" JOIN {other} AS b ON a.symbol = b.symbol"));
                }
                let mut count = p0;
                if let Some((condition, p1)) = filter {
                    sql.push_str(&format!(" WHERE {condition}"));
                    count += p1;
                }
                if let Some(column) = group {
                    sql.push_str(&format!(" GROUP BY {column}"));
                }
                if let Some((column, descending)) = order {
                    sql.push_str(&format!(
                        " ORDER BY {column} {}",
                        if descending { "DESC" } else { "ASC" }
                    ));
                }
                if let Some((limit, offset)) = limit {
                    sql.push_str(&format!(" LIMIT {limit}"));
                    if let Some(offset) = offset {
                        sql.push_str(&format!(" OFFSET {offset}"));
                    }
                }
                (sql, count)
            },
        )
}

/// A read-only statement: a `SELECT` in the shapes people write (CTEs, set operations,
/// subqueries, `EXPLAIN`, comments, a final `;`), `VALUES`, `DESCRIBE`, `SHOW`.
fn read_only() -> impl Strategy<Value = Sql> {
    prop_oneof![
        4 => select(),
        1 => (select(), table()).prop_map(|((inner, n), table)| {
            (format!("WITH w AS ({inner}) SELECT w.* FROM w JOIN {table} AS q ON TRUE"), n)
        }),
        1 => (select(), select(), any::<bool>()).prop_map(|((a, x), (b, y), all)| {
            let all = if all { " ALL" } else { "" };
            (format!("SELECT count(*) FROM ({a}) AS l UNION{all} SELECT count(*) FROM ({b}) AS r"), x + y)
        }),
        1 => select().prop_map(|(inner, n)| (format!("SELECT * FROM ({inner}) AS sub"), n)),
        1 => (select(), any::<bool>()).prop_map(|((inner, n), analyze)| {
            (format!("EXPLAIN {}{inner}", if analyze { "ANALYZE " } else { "" }), n)
        }),
        1 => select().prop_map(|(inner, n)| (format!("-- the dashboard query\n{inner};"), n)),
        1 => select().prop_map(|(inner, n)| (format!("/* a */ {inner} /* b */ ;  "), n)),
        1 => prop::collection::vec(expression(), 1..4).prop_map(|items| {
            let count = items.iter().map(|(_, n)| n).sum();
            let texts: Vec<String> = items.into_iter().map(|(text, _)| text).collect();
            (format!("VALUES ({})", texts.join(", ")), count)
        }),
        1 => table().prop_map(|table| (format!("DESCRIBE {table}"), 0)),
        1 => table().prop_map(|table| (format!("SHOW COLUMNS FROM {table}"), 0)),
        1 => prop::sample::select(vec!["SHOW TABLES", "SHOW TABLES FROM stockstream"])
            .prop_map(|sql| (sql.to_string(), 0)),
    ]
}

/// A statement that writes, changes the schema, runs several statements, or reads something
/// other than the catalogued tables.
fn forbidden() -> impl Strategy<Value = String> {
    let write = (table(), expression(), select()).prop_flat_map(|(table, (e, _), (q, _))| {
        prop::sample::select(vec![
            format!("INSERT INTO {table} VALUES ({e})"),
            format!("INSERT INTO {table} {q}"),
            format!("INSERT OVERWRITE TABLE {table} {q}"),
            format!("UPDATE {table} SET close = {e}"),
            format!("UPDATE {table} SET volume = 0 WHERE {e}"),
            format!("DELETE FROM {table} WHERE {e}"),
            format!("DELETE FROM {table}"),
            format!("TRUNCATE TABLE {table}"),
            format!("MERGE INTO {table} AS t USING {table} AS s ON (t.symbol = s.symbol) WHEN MATCHED THEN DELETE"),
            format!("CREATE TABLE copy AS {q}"),
            "CREATE TABLE t2 (a INT, b VARCHAR)".to_string(),
            format!("CREATE OR REPLACE VIEW v AS {q}"),
            "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '/etc/'".to_string(),
            "CREATE SCHEMA other".to_string(),
            "CREATE FUNCTION f() RETURNS INT AS 'select 1'".to_string(),
            format!("DROP TABLE {table}"),
            format!("DROP TABLE IF EXISTS {table}"),
            "DROP VIEW v".to_string(),
            "DROP SCHEMA stockstream CASCADE".to_string(),
            "DROP DATABASE stockstream".to_string(),
            format!("ALTER TABLE {table} ADD COLUMN c INT"),
            format!("ALTER TABLE {table} RENAME TO gone"),
            format!("COPY {table} TO '/tmp/out.csv'"),
            format!("COPY ({q}) TO 's3://bucket/key' STORED AS PARQUET"),
            format!("UNLOAD ({q}) TO 's3://bucket/prefix/'"),
            format!("SELECT * INTO newtable FROM {table}"),
            format!("WITH x AS ({q}) INSERT INTO {table} SELECT * FROM x"),
            format!("EXPLAIN DELETE FROM {table}"),
            format!("EXPLAIN ANALYZE INSERT INTO {table} {q}"),
            format!("GRANT SELECT ON {table} TO PUBLIC"),
            "SET datafusion.execution.target_partitions = 1".to_string(),
            "SET TIME ZONE 'UTC'".to_string(),
            "USE other".to_string(),
            format!("PREPARE p AS {q}"),
            "EXECUTE p".to_string(),
            "DEALLOCATE p".to_string(),
            "CALL f()".to_string(),
            format!("VACUUM {table}"),
            format!("ANALYZE TABLE {table} COMPUTE STATISTICS"),
            format!("CACHE TABLE {table}"),
            format!("{q}; DROP TABLE {table}"),
            format!("{q}; {q}"),
            "SELECT 1; SELECT 2".to_string(),
            "BEGIN".to_string(),
            "COMMIT".to_string(),
            format!("SELECT * FROM {table} FOR UPDATE"),
        ])
    });
    let outside = expression().prop_flat_map(|(e, _)| {
        prop::sample::select(vec![
            format!("SELECT * FROM other.quotes WHERE {e}"),
            "SELECT * FROM awsdatacatalog.other.quotes".to_string(),
            "SELECT * FROM other_catalog.stockstream.quotes".to_string(),
            "SELECT * FROM information_schema.tables".to_string(),
            "SELECT * FROM stockstream.information_schema.columns".to_string(),
            "SELECT * FROM secrets".to_string(),
            "SELECT * FROM quotes JOIN secrets ON TRUE".to_string(),
            "SELECT * FROM read_parquet('/etc/passwd')".to_string(),
            "SELECT * FROM read_csv('s3://bucket/key.csv')".to_string(),
            "SELECT * FROM '/tmp/x.parquet'".to_string(),
            "SELECT * FROM \"s3://bucket/lake/quotes/\"".to_string(),
            "SELECT * FROM \"file:///etc/passwd\"".to_string(),
            "SELECT * FROM \"quotes.parquet\"".to_string(),
            "SELECT * FROM quotes WHERE symbol IN (SELECT symbol FROM other.t)".to_string(),
            "WITH x AS (SELECT * FROM secrets) SELECT * FROM x".to_string(),
            "SELECT * FROM quotes WHERE symbol = $1".to_string(),
            "SELECT * FROM quotes WHERE symbol = :name".to_string(),
            "SHOW TABLES FROM other".to_string(),
            "SHOW TABLES IN information_schema".to_string(),
            "DESCRIBE secrets".to_string(),
            "SHOW COLUMNS FROM other.quotes".to_string(),
            "SHOW FUNCTIONS".to_string(),
            "SHOW ALL".to_string(),
            "TABLE quotes".to_string(),
        ])
    });
    (prop_oneof![3 => write, 2 => outside], 0u8..3)
        .prop_map(|(sql, case): (String, u8)| recase(&sql, case))
}

/// Text in the SQL alphabet: keywords, names, operators, literals, comments, brackets.
fn sql_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(vec![
                "SELECT", "FROM", "WHERE", "WITH", "AS", "(", ")", "[", "]", ",", ";", ".", "*",
                "?", "$1", "quotes", "stockstream", "awsdatacatalog", "symbol", "'x'", "'", "\"",
                "--", "/*", "*/", "\n", " ", "INSERT", "INTO", "DROP", "TABLE", "VALUES",
                "UNION", "JOIN", "ON", "EXPLAIN", "DESCRIBE", "SHOW", "TABLES", "COPY", "TO",
                "LIMIT", "1", "1e999", "-", "+", "::", "||", "=", "NOT", "NULL", "CASE", "END",
                "OVER", "PARTITION", "BY", "LATERAL", "UNNEST", "read_parquet", "\u{0}", "日本",
                "\\", "$$", "@", "#", "`", "{", "}",
            ])
            .prop_map(str::to_string),
            1 => any::<String>(),
        ],
        0..40,
    )
    .prop_map(|parts| parts.join(" "))
}

proptest! {
    #![proptest_config(corpus::config(CASES))]

    #[test]
    fn arbitrary_text_never_panics(sql in any::<String>()) {
        let _ = verdict(&sql);
    }

    #[test]
    fn sql_shaped_soup_never_panics(sql in sql_soup()) {
        let _ = verdict(&sql);
    }

    /// Generated read-only statements over catalogued tables pass, placeholders counted.
    #[test]
    fn read_only_statements_pass((sql, placeholders) in read_only(), case in 0u8..3) {
        let sql = recase(&sql, case);
        prop_assert_eq!(verdict(&sql), Ok(placeholders), "{}", sql);
    }

    /// Generated writes, DDL, several statements and reads outside the catalogued tables are
    /// refused with a reason.
    #[test]
    fn forbidden_statements_are_refused_with_a_reason(sql in forbidden()) {
        prop_assert!(verdict(&sql).is_err(), "passed: {}", sql);
    }

    /// A read-only statement with a forbidden one appended is refused.
    #[test]
    fn a_second_statement_is_refused((sql, _) in read_only(), other in forbidden()) {
        let joined = format!("{};\n{other}", sql.trim_end().trim_end_matches(';'));
        prop_assert!(verdict(&joined).is_err(), "passed: {}", joined);
    }

    /// Deep nesting (of mixed shapes) and long operator chains: refused or passed, never a
    /// crash, and quickly (sqlparser's time doubles per level of some nestings).
    #[test]
    fn deep_and_long_expressions_never_crash(
        shapes in prop::collection::vec(
            prop::sample::select(vec![
                ("(", ")"), ("NOT (", ")"), ("-(", ")"), ("abs(", ")"), ("(SELECT ", ")"),
                ("CAST(", " AS INT)"), ("CASE WHEN TRUE THEN ", " END"), ("NOT ", ""),
                ("coalesce(", ", 1)"), ("1 IN (", ")"), ("EXISTS (SELECT ", ")"), ("[", "]"),
            ]),
            0..60,
        ),
        chain in 0usize..2000,
        operator in prop::sample::select(vec!["+1", " AND 1", " OR 1", "::INT", "||1", " IS NOT NULL", "[1]"]),
    ) {
        let opening: String = shapes.iter().map(|(open, _)| *open).collect();
        let closing: String = shapes.iter().rev().map(|(_, close)| *close).collect();
        let sql = format!("SELECT {opening}1{}{closing} FROM quotes", operator.repeat(chain));
        let started = std::time::Instant::now();
        let outcome = verdict(&sql);
        prop_assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?} for {}", started.elapsed(), sql
        );
        let plain = shapes.iter().all(|(open, _)| !open.starts_with('['));
        if plain && shapes.len() <= 8 && chain <= 100 {
            prop_assert!(outcome.is_ok(), "{:?}: {}", outcome, sql);
        }
    }
}

#[test]
fn keyword_case_leaves_literals_alone() {
    assert_eq!(
        recase("Select 'It''s' AS \"X\" from Quotes", 1),
        "select 'It''s' as \"X\" from quotes"
    );
    assert_eq!(recase("select 'a' from q", 2), "SELECT 'a' FROM Q");
}

/// Every corpus entry is one SQL text: `accept-…` passes the guard, `reject-…` is refused with
/// a reason.
#[test]
fn corpus() {
    corpus::run_corpus("sql-guard", |input| {
        let sql = std::str::from_utf8(input).map_err(|error| format!("not UTF-8: {error}"))?;
        verdict(sql).map(|_| ())
    });
}
