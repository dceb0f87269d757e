//! The read-only guard: every SQL text is parsed and checked here before any engine sees it.
//!
//! A statement passes only if it is exactly one statement of a read-only kind — a query
//! (`SELECT`, `WITH`, `VALUES`, set operations), `EXPLAIN [ANALYZE]` of a query, `DESCRIBE` of a
//! catalogued table, `SHOW TABLES`, `SHOW COLUMNS` — and every relation it reads is a table of
//! the configured database (unqualified, `database.table` or `awsdatacatalog.database.table`) or a
//! name defined by its own `WITH`. Everything else is refused with the reason: DDL, DML,
//! `COPY … TO`, `UNLOAD`, `SELECT … INTO`, `SET`, `USE`, `PREPARE`, several statements, table
//! functions (`read_parquet(…)`), file paths or URLs used as tables, other databases and
//! `information_schema` (which on Athena lists every database of the account).
//!
//! Parameters are `?` placeholders (Athena's syntax, also accepted by the DataFusion engine).

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, ObjectName, Query, SetExpr, Statement, TableFactor, Value, Visit, Visitor,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use crate::error::{Error, Result};

/// The data catalog name Athena gives the Glue Data Catalog (`awsdatacatalog.db.table`).
pub const DATA_CATALOG: &str = "awsdatacatalog";

/// Table functions that read nothing but their arguments.
const PURE_TABLE_FUNCTIONS: [&str; 3] = ["unnest", "generate_series", "range"];

/// What queries may read: the configured database and its tables.
#[derive(Debug, Clone)]
pub struct Scope {
    /// Database (Glue database) name.
    pub database: String,
    /// Tables of the database, lower case.
    pub tables: HashSet<String>,
}

/// A statement that passed the guard.
#[derive(Debug, Clone)]
pub struct CheckedSql {
    /// The parsed statement.
    pub statement: Statement,
    /// Number of `?` placeholders.
    pub placeholders: usize,
}

/// Most tokens one nesting level of a statement may hold between two commas.
///
/// The parser builds `a + b + c …`, `x::INT::INT …`, `a[1][1] …` and `… UNION SELECT …` chains in
/// a loop, one level of the syntax tree per link, without counting them against its recursion
/// limit; visiting, printing, cloning, planning and dropping such a tree recurse once per link,
/// so a chain of some thousand links (a few KiB of SQL) overflowed the stack and aborted the
/// process (found by `tests/fuzz_guard.rs`). Each link takes at least one token at its level, so
/// this bounds every chain. Long lists (`IN (…)`, select lists, `VALUES`) are separated by commas
/// and not limited.
pub const MAX_TOKENS_PER_LEVEL: usize = 512;

/// Deepest nesting of brackets (`(`, `[`, `{`) a statement may have. sqlparser's parsing time
/// doubles with each level of nested `NOT (…)` or `CAST(…)` beyond about 30 (40 levels took
/// minutes: found by `tests/fuzz_guard.rs`); queries people write nest far less.
pub const MAX_BRACKET_DEPTH: usize = 24;

/// Stack of the thread that parses and checks a statement. The parser stops at 50 levels of
/// nesting, but in a debug build one level of a nested subquery takes about 100 KiB of stack, so
/// 30 nested `NOT`s already overflowed a 2 MiB thread (found by `tests/fuzz_guard.rs`).
const CHECK_STACK_BYTES: usize = 32 << 20;

/// Parses `sql` and checks that it is one read-only statement over `scope`.
///
/// Runs on a thread of its own with a [`CHECK_STACK_BYTES`] stack, so that no input can overflow
/// the caller's (a runtime worker's) stack; statements refused there are dropped there too.
pub fn check(sql: &str, scope: &Scope) -> Result<CheckedSql> {
    std::thread::scope(|threads| {
        let checker = std::thread::Builder::new()
            .name("sql-guard".into())
            .stack_size(CHECK_STACK_BYTES)
            .spawn_scoped(threads, || check_on_this_thread(sql, scope))
            .map_err(|error| Error::Unavailable {
                reason: format!("cannot start the SQL check: {error}"),
                retry_after: std::time::Duration::from_secs(1),
            })?;
        checker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn check_on_this_thread(sql: &str, scope: &Scope) -> Result<CheckedSql> {
    let unparseable =
        |error: ParserError| Error::InvalidQuery(format!("SQL does not parse: {error}"));
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|error| unparseable(error.into()))?;
    check_shape(&tokens)?;
    let mut statements = Parser::new(&dialect)
        .with_tokens_with_locations(tokens)
        .parse_statements()
        .map_err(unparseable)?;
    let statement = match statements.len() {
        0 => return Err(Error::BadRequest("the SQL holds no statement".into())),
        1 => statements.remove(0),
        count => {
            return Err(Error::Forbidden(format!(
                "exactly one statement is allowed, found {count}"
            )));
        }
    };
    check_statement(&statement, scope)?;
    let mut reader = RelationCheck::new(scope, &statement);
    if let ControlFlow::Break(reason) = statement.visit(&mut reader) {
        return Err(Error::Forbidden(reason));
    }
    Ok(CheckedSql {
        placeholders: reader.placeholders,
        statement,
    })
}

/// Refuses a statement with more than [`MAX_TOKENS_PER_LEVEL`] tokens at one level of brackets
/// between two commas, or with brackets nested deeper than [`MAX_BRACKET_DEPTH`].
fn check_shape(tokens: &[TokenWithSpan]) -> Result<()> {
    // Tokens seen so far at each open bracket level, the outermost first.
    let mut levels = vec![0usize];
    for token in tokens {
        match token.token {
            Token::Whitespace(_) => continue,
            Token::Comma | Token::SemiColon => {
                if let Some(count) = levels.last_mut() {
                    *count = 0;
                }
                continue;
            }
            Token::RParen | Token::RBracket | Token::RBrace => {
                if levels.len() > 1 {
                    levels.pop();
                }
                continue;
            }
            _ => {}
        }
        let count = levels.last_mut().map_or(0, |count| {
            *count += 1;
            *count
        });
        if count > MAX_TOKENS_PER_LEVEL {
            return Err(Error::Forbidden(format!(
                "the statement is too long at line {}: more than {MAX_TOKENS_PER_LEVEL} tokens at one level of parentheses without a comma (a long chain of operators such as `a OR b OR …`); split it, or use IN (…) for a long list of values",
                token.span.start.line
            )));
        }
        if matches!(token.token, Token::LParen | Token::LBracket | Token::LBrace) {
            if levels.len() > MAX_BRACKET_DEPTH {
                return Err(Error::Forbidden(format!(
                    "the statement nests parentheses more than {MAX_BRACKET_DEPTH} deep at line {}",
                    token.span.start.line
                )));
            }
            levels.push(0);
        }
    }
    Ok(())
}

fn check_statement(statement: &Statement, scope: &Scope) -> Result<()> {
    match statement {
        Statement::Query(_) => Ok(()),
        Statement::Explain { statement, .. } => match statement.as_ref() {
            Statement::Query(_) => Ok(()),
            other => Err(Error::Forbidden(format!(
                "EXPLAIN is allowed for queries only, not for {}",
                kind_of(other)
            ))),
        },
        Statement::ExplainTable { table_name, .. } => {
            check_table_name(table_name, scope, &HashSet::new()).map_err(Error::Forbidden)
        }
        Statement::ShowTables { show_options, .. } => match show_options
            .show_in
            .as_ref()
            .and_then(|show_in| show_in.parent_name.as_ref())
        {
            None => Ok(()),
            Some(name) if is_our_database(name, scope) => Ok(()),
            Some(name) => Err(Error::Forbidden(format!(
                "SHOW TABLES is allowed for database `{}` only, not `{name}`",
                scope.database
            ))),
        },
        Statement::ShowColumns { show_options, .. } => match show_options
            .show_in
            .as_ref()
            .and_then(|show_in| show_in.parent_name.as_ref())
        {
            Some(name) => check_table_name(name, scope, &HashSet::new()).map_err(Error::Forbidden),
            None => Err(Error::Forbidden("SHOW COLUMNS needs a table".into())),
        },
        other => Err(Error::Forbidden(format!(
            "only read-only statements are allowed (SELECT, WITH, VALUES, EXPLAIN, DESCRIBE, SHOW TABLES, SHOW COLUMNS), not {}",
            kind_of(other)
        ))),
    }
}

/// A short name of a statement's kind for error messages (`CREATE TABLE`, `INSERT`…).
fn kind_of(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(3).collect();
    let upper: Vec<String> = words
        .iter()
        .take_while(|word| word.chars().all(|c| c.is_ascii_alphabetic() || c == '_'))
        .map(|word| word.to_ascii_uppercase())
        .collect();
    if upper.is_empty() {
        "this statement".to_string()
    } else {
        upper.join(" ")
    }
}

fn ident_matches(ident: &datafusion::sql::sqlparser::ast::Ident, name: &str) -> bool {
    if ident.quote_style.is_some() {
        ident.value == name
    } else {
        ident.value.eq_ignore_ascii_case(name)
    }
}

fn is_our_database(name: &ObjectName, scope: &Scope) -> bool {
    let parts: Vec<_> = name.0.iter().map(|part| part.as_ident()).collect();
    match parts.as_slice() {
        [Some(database)] => ident_matches(database, &scope.database),
        [Some(catalog), Some(database)] => {
            ident_matches(catalog, DATA_CATALOG) && ident_matches(database, &scope.database)
        }
        _ => false,
    }
}

/// Checks that `name` is a catalogued table of the scope (or one of `ctes`).
fn check_table_name(
    name: &ObjectName,
    scope: &Scope,
    ctes: &HashSet<String>,
) -> std::result::Result<(), String> {
    let parts: Option<Vec<_>> = name.0.iter().map(|part| part.as_ident()).collect();
    let Some(parts) = parts else {
        return Err(format!("`{name}` is not a plain table name"));
    };
    let table = match parts.as_slice() {
        [table] => {
            let lowered = normalized(table);
            if ctes.contains(&lowered) {
                return Ok(());
            }
            table
        }
        [database, table] if ident_matches(database, &scope.database) => table,
        [catalog, database, table]
            if ident_matches(catalog, DATA_CATALOG) && ident_matches(database, &scope.database) =>
        {
            table
        }
        _ => {
            return Err(format!(
                "`{name}` is outside database `{}`; queries read its catalogued tables only",
                scope.database
            ));
        }
    };
    if looks_like_a_path(&table.value) {
        return Err(format!(
            "`{name}` is a file path or URL; queries read catalogued tables only"
        ));
    }
    if scope.tables.contains(&normalized(table)) {
        Ok(())
    } else {
        let mut known: Vec<&str> = scope.tables.iter().map(String::as_str).collect();
        known.sort_unstable();
        Err(format!(
            "table `{name}` is not in database `{}` (tables: {})",
            scope.database,
            if known.is_empty() {
                "none yet".to_string()
            } else {
                known.join(", ")
            }
        ))
    }
}

fn normalized(ident: &datafusion::sql::sqlparser::ast::Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_ascii_lowercase()
    }
}

fn looks_like_a_path(name: &str) -> bool {
    name.contains('/') || name.contains(':') || name.contains('\\') || name.contains('.')
}

/// Walks a statement: every relation must be ours, no table function may read, no `INTO`.
struct RelationCheck<'a> {
    scope: &'a Scope,
    ctes: HashSet<String>,
    placeholders: usize,
}

impl<'a> RelationCheck<'a> {
    fn new(scope: &'a Scope, statement: &Statement) -> Self {
        let mut names = CteNames::default();
        let _ = statement.visit(&mut names);
        Self {
            scope,
            ctes: names.0,
            placeholders: 0,
        }
    }
}

#[derive(Default)]
struct CteNames(HashSet<String>);

impl Visitor for CteNames {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.0.insert(normalized(&cte.alias.name));
            }
        }
        ControlFlow::Continue(())
    }
}

impl Visitor for RelationCheck<'_> {
    type Break = String;

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<String> {
        if query.for_clause.is_some() || !query.locks.is_empty() {
            return ControlFlow::Break("locking and FOR clauses are not allowed".into());
        }
        check_set_expr(&query.body)
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<String> {
        match factor {
            TableFactor::Table {
                name, args: None, ..
            } => match check_table_name(name, self.scope, &self.ctes) {
                Ok(()) => ControlFlow::Continue(()),
                Err(reason) => ControlFlow::Break(reason),
            },
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            }
            | TableFactor::Function { name, .. } => {
                let function = name.to_string().to_ascii_lowercase();
                if PURE_TABLE_FUNCTIONS.contains(&function.as_str()) {
                    ControlFlow::Continue(())
                } else {
                    ControlFlow::Break(format!(
                        "table function `{name}` is not allowed (it may read outside the catalogued tables)"
                    ))
                }
            }
            TableFactor::Derived { .. }
            | TableFactor::NestedJoin { .. }
            | TableFactor::UNNEST { .. }
            | TableFactor::Pivot { .. }
            | TableFactor::Unpivot { .. }
            | TableFactor::MatchRecognize { .. } => ControlFlow::Continue(()),
            other => ControlFlow::Break(format!(
                "`{other}` is not allowed as a table (only catalogued tables, subqueries and UNNEST)"
            )),
        }
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<String> {
        if let Expr::Value(value) = expr
            && let Value::Placeholder(text) = &value.value
        {
            if text != "?" {
                return ControlFlow::Break(format!(
                    "parameter `{text}`: use `?` placeholders with `params`"
                ));
            }
            self.placeholders += 1;
        }
        ControlFlow::Continue(())
    }
}

fn check_set_expr(body: &SetExpr) -> ControlFlow<String> {
    match body {
        SetExpr::Select(select) if select.into.is_some() => {
            ControlFlow::Break("SELECT … INTO writes a table; it is not allowed".into())
        }
        SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => {
            ControlFlow::Break("data-modifying statements are not allowed".into())
        }
        SetExpr::Table(table) => {
            ControlFlow::Break(format!("`{table}` is not allowed; use SELECT * FROM …"))
        }
        SetExpr::SetOperation { left, right, .. } => {
            check_set_expr(left)?;
            check_set_expr(right)
        }
        _ => ControlFlow::Continue(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn scope() -> Scope {
        Scope {
            database: "stockstream".into(),
            tables: HashSet::from(["quotes".to_string()]),
        }
    }

    #[test]
    fn read_only_statements_pass() {
        for sql in [
            "SELECT count(*) FROM quotes",
            "select * from QUOTES where symbol = ? and trade_date >= cast(? as date)",
            "SELECT * FROM stockstream.quotes",
            "SELECT * FROM awsdatacatalog.stockstream.quotes LIMIT 5",
            "WITH y AS (SELECT year, max(close) m FROM quotes GROUP BY year) SELECT * FROM y ORDER BY year",
            "SELECT a.symbol FROM quotes a JOIN quotes b ON a.symbol = b.symbol LIMIT 1",
            "SELECT 1 UNION ALL SELECT 2",
            "VALUES (1, 'a')",
            "SELECT * FROM quotes WHERE symbol IN (SELECT symbol FROM quotes WHERE year = 1987)",
            "SELECT * FROM generate_series(1, 3)",
            "EXPLAIN SELECT * FROM quotes",
            "EXPLAIN ANALYZE SELECT count(*) FROM quotes",
            "DESCRIBE quotes",
            "SHOW TABLES",
            "SHOW COLUMNS FROM quotes",
            "SELECT 1;",
        ] {
            check(sql, &scope()).unwrap_or_else(|error| panic!("{sql}: {error}"));
        }
    }

    #[test]
    fn placeholders_are_counted() {
        let checked = check(
            "SELECT * FROM quotes WHERE symbol = ? AND year BETWEEN ? AND ?",
            &scope(),
        )
        .expect("passes");
        assert_eq!(checked.placeholders, 3);
        let error = check("SELECT * FROM quotes WHERE symbol = $1", &scope()).expect_err("$1");
        assert!(error.to_string().contains("`?` placeholders"), "{error}");
    }

    #[test]
    fn long_chains_are_refused_before_they_are_parsed() {
        let chain = |links: usize| format!("SELECT 1{} FROM quotes", " + 1".repeat(links));
        check(&chain(200), &scope()).expect("a chain of 200 links passes");
        let error = check(&chain(40_000), &scope()).expect_err("too long");
        assert!(error.to_string().contains("too long"), "{error}");
        let list: Vec<String> = (0..5000).map(|value| value.to_string()).collect();
        let sql = format!("SELECT * FROM quotes WHERE volume IN ({})", list.join(", "));
        check(&sql, &scope()).expect("a long list passes");
        let nested = format!("SELECT {}TRUE FROM quotes", "NOT ".repeat(30));
        check(&nested, &scope()).expect("30 nested NOTs pass on the checking thread's stack");
    }

    #[test]
    fn deep_brackets_are_refused_before_they_are_parsed() {
        let nested = |depth: usize| {
            format!(
                "SELECT {}1{} FROM quotes",
                "NOT (".repeat(depth),
                ")".repeat(depth)
            )
        };
        check(&nested(MAX_BRACKET_DEPTH), &scope()).expect("passes");
        let error = check(&nested(40), &scope()).expect_err("too deep");
        assert!(error.to_string().contains("more than 24 deep"), "{error}");
    }

    /// The statements of a corpus file: entries separated by `---` lines, `--` lines dropped.
    pub(crate) fn rejected_corpus(text: &str) -> Vec<String> {
        text.split("\n---\n")
            .map(|entry| {
                entry
                    .lines()
                    .filter(|line| !line.trim_start().starts_with("--"))
                    .collect::<Vec<_>>()
                    .join("\n")
                    .trim()
                    .to_string()
            })
            .filter(|sql| !sql.is_empty())
            .collect()
    }

    /// The corpus of statements that must never reach an engine; `tests/tests/query_guard.rs`
    /// sends the same corpus through HTTP to both engines.
    #[test]
    fn the_rejected_corpus_is_rejected_with_a_reason() {
        let corpus = include_str!("../../../tests/data/guard-rejected.sql");
        let mut checked = 0;
        for sql in rejected_corpus(corpus) {
            let sql = sql.as_str();
            let error = check(sql, &scope()).expect_err(sql);
            assert!(
                matches!(
                    error,
                    Error::Forbidden(_) | Error::InvalidQuery(_) | Error::BadRequest(_)
                ),
                "{sql}: {error:?}"
            );
            assert!(!error.to_string().is_empty());
            checked += 1;
        }
        assert!(checked >= 40, "corpus holds {checked} statements");
    }
}
