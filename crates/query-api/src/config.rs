//! Configuration of the query API: shared sections plus `[query]` and `[http]`.

use std::num::NonZeroUsize;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use stockstream_common::config::{
    HttpConfig, KafkaConfig, LakeConfig, LakeSection, SHARED_DEFAULTS, TelemetryConfig, load,
    parse_duration,
};
use stockstream_common::{Error, Result};

const QUERY_DEFAULTS: &str = r#"
[query]
engine = "datafusion"
database = "stockstream"
max_rows = 10000
max_sql_bytes = 65536
timeout = "30s"

[http]
listen = "127.0.0.1:8080"
"#;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    // Accepted so one configuration file can serve every service; the query API needs no broker.
    #[allow(dead_code)]
    kafka: KafkaConfig,
    lake: LakeSection,
    telemetry: TelemetryConfig,
    query: RawQuerySection,
    http: HttpConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuerySection {
    engine: String,
    database: String,
    max_rows: usize,
    max_sql_bytes: usize,
    timeout: String,
}

/// Which engine executes SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryEngineKind {
    /// Apache DataFusion over the lake and the local catalog (embedded default).
    DataFusion,
}

/// The query API's validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the lake (and the local catalog) lives.
    pub lake: LakeConfig,
    /// Logging.
    pub telemetry: TelemetryConfig,
    /// Query settings.
    pub query: QueryConfig,
    /// Listen address of the API (which also serves `/metrics` and health).
    pub http: HttpConfig,
}

/// Settings of the query endpoint (section `[query]`).
#[derive(Debug, Clone)]
pub struct QueryConfig {
    /// Engine executing the SQL.
    pub engine: QueryEngineKind,
    /// Catalog database whose tables queries see.
    pub database: String,
    /// Most rows returned; further rows are cut and `stats.truncated` is set.
    pub max_rows: NonZeroUsize,
    /// Longest accepted SQL text.
    pub max_sql_bytes: NonZeroUsize,
    /// Longest a query may run.
    pub timeout: Duration,
}

impl Config {
    /// Loads defaults, then `file`, then `STOCKSTREAM__…` variables, and validates the result.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        let defaults = format!("{SHARED_DEFAULTS}\n{QUERY_DEFAULTS}");
        let raw: RawConfig = load(&defaults, file)?;
        let query = raw.query;
        let engine = match query.engine.as_str() {
            "datafusion" => QueryEngineKind::DataFusion,
            other => {
                return Err(Error::config(
                    "query.engine",
                    format!("unknown engine `{other}` (known: datafusion)"),
                ));
            }
        };
        let non_zero = |key: &str, value: usize| {
            NonZeroUsize::new(value).ok_or_else(|| Error::config(key, "must be at least 1"))
        };
        Ok(Self {
            lake: raw.lake.validate()?,
            telemetry: raw.telemetry,
            query: QueryConfig {
                engine,
                database: query.database,
                max_rows: non_zero("query.max_rows", query.max_rows)?,
                max_sql_bytes: non_zero("query.max_sql_bytes", query.max_sql_bytes)?,
                timeout: parse_duration("query.timeout", &query.timeout)?,
            },
            http: raw.http,
        })
    }
}
