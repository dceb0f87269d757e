//! Configuration of the query API: the shared sections plus `[query]` (with `[query.glue]` and
//! `[query.athena]`), `[live]`, `[status]` and `[http]`, validated once into [`Config`].

use std::num::{NonZeroU32, NonZeroUsize};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use stockstream_common::config::{
    AwsEndpoint, HttpConfig, KafkaConfig, LakeConfig, LakeSection, SHARED_DEFAULTS,
    TelemetryConfig, load, parse_duration, validate_database_name,
};
use stockstream_common::lake::PartitionTemplate;
/// A bearer token (`query.auth_tokens`); its `Debug` output never shows the value.
pub use stockstream_common::secret::Secret;
use stockstream_common::{Error, Result};

pub use crate::live::LiveConfig;
use crate::live::RawLiveSection;
use crate::status::RawStatusSection;
pub use crate::status::StatusConfig;

const QUERY_DEFAULTS: &str = r#"
[query]
engine = "datafusion"
catalog = "local"
database = "stockstream"
max_rows = 10000
max_rows_limit = 1000000
max_sql_bytes = 65536
max_body_bytes = 1048576
max_response_bytes = 67108864
timeout = "30s"
sync_wait = "10s"
max_concurrent = 8
queue_timeout = "2s"
max_scan_files = 100000
memory_limit = 1073741824
metadata_cache_bytes = 268435456
catalog_refresh = "1s"
relist_interval = "5m"
follow_commits = true
live_tail = false
live_tail_wait = "1s"
partition_template = "symbol={symbol}/year={year}"
result_ttl = "10m"
max_stored_queries = 1000
max_stored_result_bytes = 268435456
auth_tokens = []
cors_origins = []
drain_deadline = "35s"

[query.glue]

[query.athena]
workgroup = "primary"
poll_initial = "100ms"
poll_max = "1500ms"

[live]
enabled = true
history = 10000
client_buffer = 1024
heartbeat = "15s"
max_lag = "30s"
max_clients = 1000

[status]
services = "stockstream-ingest=http://127.0.0.1:9100,stockstream-s3-sink=http://127.0.0.1:9101,stockstream-glue-crawler=http://127.0.0.1:9102"
interval = "5s"
timeout = "2s"

[http]
listen = "127.0.0.1:8080"
"#;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    kafka: KafkaConfig,
    lake: LakeSection,
    telemetry: TelemetryConfig,
    query: RawQuerySection,
    live: RawLiveSection,
    status: RawStatusSection,
    http: HttpConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuerySection {
    engine: EngineKind,
    catalog: CatalogKind,
    database: String,
    max_rows: usize,
    max_rows_limit: usize,
    max_sql_bytes: usize,
    max_body_bytes: usize,
    max_response_bytes: usize,
    timeout: String,
    sync_wait: String,
    max_concurrent: usize,
    queue_timeout: String,
    max_scan_files: u32,
    memory_limit: usize,
    metadata_cache_bytes: usize,
    catalog_refresh: String,
    relist_interval: String,
    follow_commits: bool,
    live_tail: bool,
    live_tail_wait: String,
    partition_template: String,
    result_ttl: String,
    max_stored_queries: usize,
    max_stored_result_bytes: usize,
    auth_tokens: StringList,
    cors_origins: StringList,
    drain_deadline: String,
    glue: RawGlueSection,
    athena: RawAthenaSection,
}

/// A list in TOML, or one comma-separated string (how an environment variable carries a list).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum StringList {
    List(Vec<String>),
    Text(String),
}

impl StringList {
    pub(crate) fn into_vec(self) -> Vec<String> {
        match self {
            StringList::List(items) => items,
            StringList::Text(text) => text
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGlueSection {
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    endpoint: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAthenaSection {
    workgroup: String,
    #[serde(default)]
    output_location: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    endpoint: Option<String>,
    poll_initial: String,
    poll_max: String,
    #[serde(default)]
    result_reuse_max_age: Option<String>,
}

/// Which engine executes SQL (`query.engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// Apache DataFusion in the process, reading the lake's Parquet files (embedded default).
    DataFusion,
    /// Amazon Athena: queries run in AWS against the Glue Data Catalog.
    Athena,
}

impl EngineKind {
    /// The name used in configuration, stats and metrics.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::DataFusion => "datafusion",
            EngineKind::Athena => "athena",
        }
    }
}

/// Where the tables and their partitions are read from (`query.catalog`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatalogKind {
    /// The Glue-shaped JSON catalog in the lake, written by `stockstream-glue-crawler`.
    Local,
    /// The AWS Glue Data Catalog.
    Glue,
}

/// Settings of the Athena engine (`[query.athena]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AthenaConfig {
    /// Workgroup queries run in.
    pub workgroup: String,
    /// `s3://…` prefix for result files; `None` when the workgroup enforces its own.
    pub output_location: Option<String>,
    /// Region and endpoint override of the Athena API.
    pub aws: AwsEndpoint,
    /// First wait between `GetQueryExecution` polls; it doubles up to `poll_max`.
    pub poll_initial: Duration,
    /// Longest wait between polls.
    pub poll_max: Duration,
    /// Reuse a previous identical query's results up to this age (Athena result reuse), if set.
    pub result_reuse_max_age: Option<Duration>,
}

/// The query API's validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Broker of the `lake.commits` topic the DataFusion engine follows for new files.
    pub kafka: KafkaConfig,
    /// Where the lake (and the local catalog) lives.
    pub lake: LakeConfig,
    /// Logging.
    pub telemetry: TelemetryConfig,
    /// Query settings.
    pub query: QueryConfig,
    /// The live view (`/v1/stream/quotes`).
    pub live: LiveConfig,
    /// The pipeline status (`/v1/status`).
    pub status: StatusConfig,
    /// Listen address of the API (which also serves `/metrics` and health).
    pub http: HttpConfig,
}

/// Settings of the query endpoints (section `[query]`).
#[derive(Debug, Clone)]
pub struct QueryConfig {
    /// Engine executing the SQL.
    pub engine: EngineKind,
    /// Where the DataFusion engine reads tables and partitions from (Athena always uses Glue).
    pub catalog: CatalogKind,
    /// Catalog database whose tables queries see.
    pub database: String,
    /// Rows returned when a request does not say (`max_rows` in the body may ask for more).
    pub max_rows: NonZeroUsize,
    /// Most rows any request may ask for; answers are cut there and marked `truncated`.
    pub max_rows_limit: NonZeroUsize,
    /// Longest accepted SQL text.
    pub max_sql_bytes: NonZeroUsize,
    /// Largest accepted request body.
    pub max_body_bytes: NonZeroUsize,
    /// Largest response body; rows past it are cut and the answer is marked `truncated`.
    pub max_response_bytes: NonZeroUsize,
    /// Longest a query may run (requests may ask for less with `timeout_ms`).
    pub timeout: Duration,
    /// How long a request waits for its answer before it gets `202` and a query id to poll.
    pub sync_wait: Duration,
    /// Queries executing at once; further requests wait up to `queue_timeout`, then get `503`.
    pub max_concurrent: NonZeroUsize,
    /// How long a request waits for a free execution slot.
    pub queue_timeout: Duration,
    /// Files the running DataFusion scans may hold at once: DataFusion keeps about 5 KB per
    /// scanned file outside the memory pool until the query ends, so a query waits (within its
    /// time limit) while running scans hold the budget; one scanning more than three quarters of
    /// it takes three quarters.
    pub max_scan_files: NonZeroU32,
    /// Memory the DataFusion engine may use for all queries together (spilling beyond it).
    pub memory_limit: NonZeroUsize,
    /// Memory for cached Parquet footers and page indexes.
    pub metadata_cache_bytes: NonZeroUsize,
    /// How often the catalog is checked for changes.
    pub catalog_refresh: Duration,
    /// How often every visible partition is listed again (a safety net; events keep it current).
    pub relist_interval: Duration,
    /// Whether the DataFusion engine follows `lake.commits` to see new files at once.
    pub follow_commits: bool,
    /// Whether table `quotes` also holds the records of the live tail not yet in the lake.
    pub live_tail: bool,
    /// How long a query waits for the live tail to reach the topic's end.
    pub live_tail_wait: Duration,
    /// The lake's partition layout (the sink's `sink.partition_template`), for the live tail.
    pub partition_template: PartitionTemplate,
    /// How long a finished query's state and results stay retrievable.
    pub result_ttl: Duration,
    /// Most queries remembered for `GET /v1/queries/{id}`.
    pub max_stored_queries: NonZeroUsize,
    /// Most bytes of results held for asynchronous queries, all together.
    pub max_stored_result_bytes: NonZeroUsize,
    /// Bearer tokens accepted on `/v1/*`; empty means no authentication.
    pub auth_tokens: Vec<Secret>,
    /// How long a shutdown (SIGTERM) waits for open requests (a running query, a live stream)
    /// before the process gives up and exits non-zero; longer than `timeout` by default, so a
    /// query already running can finish.
    pub drain_deadline: Duration,
    /// Origins allowed by CORS (`*` for any); empty means no CORS headers.
    pub cors_origins: Vec<String>,
    /// Region and endpoint of the Glue Data Catalog (`catalog = "glue"`).
    pub glue: AwsEndpoint,
    /// The Athena engine.
    pub athena: AthenaConfig,
}

fn optional(value: Option<String>) -> Option<String> {
    value.filter(|text| !text.trim().is_empty())
}

impl Config {
    /// Loads defaults, then `file`, then `STOCKSTREAM__…` variables, and validates the result.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        let defaults = format!("{SHARED_DEFAULTS}\n{QUERY_DEFAULTS}");
        let raw: RawConfig = load(&defaults, file)?;
        let lake = raw.lake.validate()?;
        let query = validate_query(raw.query)?;
        if query.engine == EngineKind::Athena && query.catalog == CatalogKind::Local {
            return Err(Error::config(
                "query.catalog",
                "the Athena engine reads the AWS Glue Data Catalog; set query.catalog = \"glue\"",
            ));
        }
        let live = raw.live.validate()?;
        if query.live_tail && (query.engine != EngineKind::DataFusion || !live.enabled) {
            return Err(Error::config(
                "query.live_tail",
                "needs the DataFusion engine and the live view (live.enabled = true)",
            ));
        }
        Ok(Self {
            kafka: raw.kafka.validate()?,
            lake,
            telemetry: raw.telemetry,
            query,
            live,
            status: raw.status.validate()?,
            http: raw.http,
        })
    }
}

fn non_zero(key: &str, value: usize) -> Result<NonZeroUsize> {
    NonZeroUsize::new(value).ok_or_else(|| Error::config(key, "must be at least 1"))
}

fn validate_query(query: RawQuerySection) -> Result<QueryConfig> {
    validate_database_name("query.database", &query.database)?;
    let max_rows = non_zero("query.max_rows", query.max_rows)?;
    let max_rows_limit = non_zero("query.max_rows_limit", query.max_rows_limit)?;
    if max_rows > max_rows_limit {
        return Err(Error::config(
            "query.max_rows",
            format!("{max_rows} is above query.max_rows_limit ({max_rows_limit})"),
        ));
    }
    let timeout = parse_duration("query.timeout", &query.timeout)?;
    if timeout.is_zero() {
        return Err(Error::config("query.timeout", "must be longer than 0"));
    }
    let auth_tokens = tokens(query.auth_tokens.into_vec())?;
    Ok(QueryConfig {
        engine: query.engine,
        catalog: query.catalog,
        database: query.database,
        max_rows,
        max_rows_limit,
        max_sql_bytes: non_zero("query.max_sql_bytes", query.max_sql_bytes)?,
        max_body_bytes: non_zero("query.max_body_bytes", query.max_body_bytes)?,
        max_response_bytes: non_zero("query.max_response_bytes", query.max_response_bytes)?,
        timeout,
        sync_wait: parse_duration("query.sync_wait", &query.sync_wait)?,
        max_concurrent: non_zero("query.max_concurrent", query.max_concurrent)?,
        queue_timeout: parse_duration("query.queue_timeout", &query.queue_timeout)?,
        max_scan_files: NonZeroU32::new(query.max_scan_files)
            .ok_or_else(|| Error::config("query.max_scan_files", "must be at least 1"))?,
        memory_limit: non_zero("query.memory_limit", query.memory_limit)?,
        metadata_cache_bytes: non_zero("query.metadata_cache_bytes", query.metadata_cache_bytes)?,
        catalog_refresh: parse_duration("query.catalog_refresh", &query.catalog_refresh)?,
        relist_interval: parse_duration("query.relist_interval", &query.relist_interval)?,
        follow_commits: query.follow_commits,
        live_tail: query.live_tail,
        live_tail_wait: parse_duration("query.live_tail_wait", &query.live_tail_wait)?,
        partition_template: query
            .partition_template
            .parse()
            .map_err(|message: String| Error::config("query.partition_template", message))?,
        result_ttl: parse_duration("query.result_ttl", &query.result_ttl)?,
        max_stored_queries: non_zero("query.max_stored_queries", query.max_stored_queries)?,
        max_stored_result_bytes: non_zero(
            "query.max_stored_result_bytes",
            query.max_stored_result_bytes,
        )?,
        auth_tokens,
        cors_origins: query.cors_origins.into_vec(),
        drain_deadline: parse_duration("query.drain_deadline", &query.drain_deadline)?,
        glue: AwsEndpoint {
            region: optional(query.glue.region),
            endpoint: optional(query.glue.endpoint),
        },
        athena: validate_athena(query.athena)?,
    })
}

/// Bearer tokens from a comma-separated list (as `STOCKSTREAM__QUERY__AUTH_TOKENS` carries them).
pub fn parse_tokens(text: &str) -> Result<Vec<Secret>> {
    tokens(StringList::Text(text.to_string()).into_vec())
}

fn tokens(values: Vec<String>) -> Result<Vec<Secret>> {
    values
        .into_iter()
        .map(|token| {
            if token.len() < 16 {
                Err(Error::config(
                    "query.auth_tokens",
                    "every token must be at least 16 characters",
                ))
            } else {
                Ok(Secret::new(token))
            }
        })
        .collect()
}

fn validate_athena(athena: RawAthenaSection) -> Result<AthenaConfig> {
    if athena.workgroup.trim().is_empty() {
        return Err(Error::config("query.athena.workgroup", "must not be empty"));
    }
    let output_location = optional(athena.output_location);
    if let Some(location) = &output_location
        && !location.starts_with("s3://")
    {
        return Err(Error::config(
            "query.athena.output_location",
            format!("`{location}` is not an s3:// location"),
        ));
    }
    let poll_initial = parse_duration("query.athena.poll_initial", &athena.poll_initial)?;
    let poll_max = parse_duration("query.athena.poll_max", &athena.poll_max)?;
    if poll_initial.is_zero() || poll_max < poll_initial {
        return Err(Error::config(
            "query.athena.poll_max",
            "poll_initial must be above 0 and poll_max at least poll_initial",
        ));
    }
    let result_reuse_max_age = match optional(athena.result_reuse_max_age) {
        Some(text) => {
            let age = parse_duration("query.athena.result_reuse_max_age", &text)?;
            // Athena takes whole minutes, from 1 minute to 7 days.
            if age < Duration::from_secs(60) || age > Duration::from_secs(7 * 24 * 3600) {
                return Err(Error::config(
                    "query.athena.result_reuse_max_age",
                    "must be between 1m and 7days",
                ));
            }
            Some(age)
        }
        None => None,
    };
    Ok(AthenaConfig {
        workgroup: athena.workgroup,
        output_location,
        aws: AwsEndpoint {
            region: optional(athena.region),
            endpoint: optional(athena.endpoint),
        },
        poll_initial,
        poll_max,
        result_reuse_max_age,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with(toml: &str) -> Result<Config> {
        load_with_mode(toml, 0o600)
    }

    fn load_with_mode(toml: &str, mode: u32) -> Result<Config> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("query.toml");
        std::fs::write(&path, toml).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        Config::load(Some(&path))
    }

    #[test]
    fn defaults_load() {
        let config = Config::load(None).expect("defaults");
        assert_eq!(config.query.engine, EngineKind::DataFusion);
        assert_eq!(config.query.catalog, CatalogKind::Local);
        assert_eq!(config.query.max_rows.get(), 10_000);
        assert_eq!(config.query.athena.workgroup, "primary");
        assert!(config.query.auth_tokens.is_empty());
    }

    #[test]
    fn wrong_keys_and_values_name_the_key() {
        let error = load_with("[query]\nengin = \"athena\"\n").expect_err("typo");
        assert!(error.to_string().contains("engin"), "{error}");
        let error = load_with("[query]\nengine = \"presto\"\n").expect_err("unknown engine");
        assert!(error.to_string().contains("presto"), "{error}");
        let error = load_with("[query]\ndatabase = \"Bad-Name\"\n").expect_err("database");
        assert!(error.to_string().contains("query.database"), "{error}");
        let error = load_with("[query]\nmax_rows = 5000000\n").expect_err("above limit");
        assert!(error.to_string().contains("query.max_rows"), "{error}");
        let error = load_with("[query.athena]\noutput_location = \"bucket/x\"\n").expect_err("s3");
        assert!(
            error.to_string().contains("query.athena.output_location"),
            "{error}"
        );
        let error = load_with("[query]\nauth_tokens = [\"short\"]\n").expect_err("short token");
        assert!(error.to_string().contains("query.auth_tokens"), "{error}");
    }

    #[test]
    fn defaults_load_and_a_wrong_key_or_value_is_named() {
        stockstream_common::config_checks::check_config_key_errors(
            "query.toml",
            Config::load,
            ("[query]\nengin = \"athena\"\n", &["engin", "query"]),
            (
                "[query]\nengine = \"presto\"\n",
                &["query.engine", "presto"],
            ),
        );
    }

    #[test]
    fn athena_needs_the_glue_catalog() {
        let error = load_with("[query]\nengine = \"athena\"\n").expect_err("local catalog");
        assert!(error.to_string().contains("query.catalog"), "{error}");
        let config = load_with(
            "[query]\nengine = \"athena\"\ncatalog = \"glue\"\n[query.athena]\nresult_reuse_max_age = \"30m\"\n",
        )
        .expect("athena");
        assert_eq!(
            config.query.athena.result_reuse_max_age,
            Some(Duration::from_secs(1800))
        );
    }

    #[test]
    fn tokens_are_not_shown_in_debug_output() {
        let config =
            load_with("[query]\nauth_tokens = [\"0123456789abcdef-secret\"]\n").expect("tokens");
        let shown = format!("{config:?}");
        assert!(!shown.contains("0123456789abcdef-secret"), "{shown}");
        assert_eq!(
            config.query.auth_tokens[0].expose(),
            "0123456789abcdef-secret"
        );
    }

    const SECRETS: &str = "[kafka.options]\n\"sasl.password\" = \"hunter2-kafka\"\n\"sasl.oauthbearer.client.secret\" = \"hunter2-oauth\"\n[query]\nauth_tokens = [\"hunter2-token-0123456789\"]\n";

    #[test]
    fn secrets_are_named_but_never_shown() {
        let config = load_with(SECRETS).expect("loads");
        let shown = format!("{config:?} {config:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("\"sasl.password\": ***"), "{shown}");
        assert!(
            shown.contains("\"sasl.oauthbearer.client.secret\": ***"),
            "{shown}"
        );
        assert!(shown.contains("auth_tokens: [Secret(***)]"), "{shown}");
    }

    #[test]
    fn a_world_readable_file_with_secrets_is_refused() {
        let error = load_with_mode(SECRETS, 0o644)
            .expect_err("world-readable")
            .to_string();
        for named in [
            "query.toml",
            "kafka.options.\"sasl.password\"",
            "kafka.options.\"sasl.oauthbearer.client.secret\"",
            "query.auth_tokens",
            "chmod 600",
        ] {
            assert!(error.contains(named), "{named}: {error}");
        }
        assert!(!error.contains("hunter2"), "{error}");
        assert!(load_with_mode("[query]\nmax_rows = 5\n", 0o644).is_ok());
    }
}
