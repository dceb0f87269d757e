//! Shared harness of the end-to-end tests: a real tansu broker on a free port (started by
//! `scripts/tansu.sh`, as the local stack starts it), the test data, the Python interpreter with
//! the independent clients, moto, and small helpers (`lib.rs`). Every process a test spawns is a
//! [`TestProcess`] (`process.rs`), killed and reaped when the test ends, fails or panics.
//!
//! Files: `configs.rs` (each service's test configuration, from its defaults), `stack.rs` (the
//! pipeline in one process), `metrics.rs` (reading `/metrics`), `http.rs` (a small HTTP client),
//! `sse.rs` (a Server-Sent Events client), `answers.rs` (API answers checked against the CSV),
//! `lake.rs` (lakes written without a broker), `moto.rs` (a moto server for S3, Glue and Athena), `files.rs` (quote files built from the real
//! slice), `ingest.rs` (running the ingest binary), `bench_query.rs` (what `make bench-query`
//! shares with its smoke test), `release.rs` (the release tarball under test).
//!
//! Everything a test needs is installed by `make tools` (`scripts/tools.sh`); a missing piece
//! fails the test with the command that installs it.

pub mod answers;
pub mod bench_query;
pub mod configs;
pub mod http;
pub mod lake;
pub mod metrics;
mod moto;
pub mod process;
pub mod sse;
pub mod stack;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub mod files;
pub mod ingest;
use stockstream_common::config::{KafkaConfig, TopicsConfig};

pub use moto::Moto;
pub use process::TestProcess;

mod release;
pub use release::{release_tarball, repo_root, run_checked};

/// Path given by `variable`, which must name an existing file.
fn required_file(variable: &str, hint: &str) -> PathBuf {
    let value =
        std::env::var_os(variable).unwrap_or_else(|| panic!("{variable} is not set: {hint}"));
    let path = PathBuf::from(value);
    assert!(
        path.is_file(),
        "{variable}={} does not exist: {hint}",
        path.display()
    );
    path
}

/// The real slice of the dataset (`STOCKSTREAM_TEST_DATA`, set by the Makefile and `.ci/run`).
pub fn test_data() -> PathBuf {
    required_file(
        "STOCKSTREAM_TEST_DATA",
        "point it at indexProcessed-HSI-1986-2010.csv (the Makefile sets it to ../shared/data/…); run the tests with `make test`",
    )
}

/// Rows of the real slice ([`test_data`]): the Hang Seng index's trading days, 1986–2010.
pub const SLICE_ROWS: u64 = 5693;

/// The Python interpreter that has duckdb and confluent-kafka (`STOCKSTREAM_PYTHON`).
pub fn python() -> PathBuf {
    required_file(
        "STOCKSTREAM_PYTHON",
        "install it with `make tools` (scripts/tools.sh python)",
    )
}

/// checkov in its own venv (`STOCKSTREAM_CHECKOV`).
pub fn checkov() -> PathBuf {
    required_file(
        "STOCKSTREAM_CHECKOV",
        "install it with `make tools` (scripts/tools.sh checkov)",
    )
}

/// The Python with selenium for the dashboard's browser test (`STOCKSTREAM_BROWSER_PYTHON`).
pub fn browser_python() -> PathBuf {
    required_file(
        "STOCKSTREAM_BROWSER_PYTHON",
        "install it with `make tools` (scripts/tools.sh browser: Debian's chromium and chromedriver, selenium)",
    )
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// A tansu broker with durable sqlite storage in a temporary directory, killed on drop.
#[derive(Debug)]
pub struct Tansu {
    _process: TestProcess,
    /// `127.0.0.1:port` of the broker.
    pub bootstrap: String,
    _dir: tempfile::TempDir,
}

impl Tansu {
    /// Starts the broker and waits until it accepts connections.
    pub fn start() -> Result<Self> {
        let binary = required_file(
            "STOCKSTREAM_TANSU",
            "install it with `make tools` (scripts/tools.sh tansu)",
        );
        let dir = tempfile::tempdir()?;
        let bootstrap = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.path().join("tansu.log"))?;
        // scripts/tansu.sh execs tansu (the process killed on drop is the broker) and adds the
        // index tansu 0.6.0's sqlite schema lacks (scripts/tansu-index.py).
        let mut process = TestProcess::spawn(
            "tansu",
            Command::new("bash")
                .arg(repo_root().join("scripts/tansu.sh"))
                .arg(dir.path())
                .arg(&bootstrap)
                .env("STOCKSTREAM_TANSU", binary)
                .stdout(Stdio::from(log.try_clone()?))
                .stderr(Stdio::from(log)),
        )?;
        // tansu-index.py makes tansu.db.indexed once tansu listens and the index is made;
        // creating the index locks tansu's database, and a topic created meanwhile fails with an
        // unknown broker error, so the broker is ready only then.
        let indexed = dir.path().join("tansu.db.indexed");
        wait_until(
            "tansu (listening, header index made)",
            Duration::from_secs(30),
            || match process.try_wait()? {
                Some(status) => bail!("tansu exited ({status}) before it was ready"),
                None => Ok(indexed.exists()),
            },
        )
        .with_context(|| {
            let log = std::fs::read_to_string(dir.path().join("tansu.log")).unwrap_or_default();
            let start = (log.len().saturating_sub(4000)..)
                .find(|&index| log.is_char_boundary(index))
                .unwrap_or(log.len());
            let tail = &log[start..];
            format!("tansu on {bootstrap}; its log ends:\n{tail}")
        })?;
        Ok(Self {
            _process: process,
            bootstrap,
            _dir: dir,
        })
    }
}

/// Waits until `address` accepts TCP connections (the server `what` started), at most `limit`.
pub fn wait_for_port(what: &str, address: SocketAddr, limit: Duration) -> Result<()> {
    wait_until(&format!("{what} on {address}"), limit, || {
        Ok(TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok())
    })
}

/// Polls `ready` every 50 ms until it is true, at most `limit`; an error from `ready` ends the
/// wait at once. `what` names what is awaited in the timeout's error.
pub fn wait_until(
    what: &str,
    limit: Duration,
    mut ready: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + limit;
    while !ready()? {
        if Instant::now() > deadline {
            bail!("{what}: not ready within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// `KEY=VALUE` lines of an environment file such as `deploy/env/ports.env` or a systemd
/// `EnvironmentFile` (comments and blank lines skipped).
pub fn read_env(path: &Path) -> Result<std::collections::BTreeMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim().to_string(), value.trim().to_string()))
        .collect())
}

/// Kafka settings for a test: the broker, and topic names unique to `name`.
pub fn kafka_config(bootstrap: &str, name: &str) -> KafkaConfig {
    KafkaConfig {
        bootstrap_servers: bootstrap.to_string(),
        client_id: format!("stockstream-test-{name}"),
        topics: TopicsConfig {
            quotes: format!("{name}.quotes"),
            dlq: format!("{name}.quotes.dlq"),
            lake_commits: format!("{name}.lake.commits"),
            partitions: 3,
            replication_factor: 1,
        },
        options: Default::default(),
    }
}

/// Runs one of the interop scripts in `tests/interop/` with the test Python; fails with its output.
pub fn run_interop(script: &str, args: &[&str]) -> Result<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("interop")
        .join(script);
    let output = Command::new(python()).arg(&path).args(args).output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        bail!("{script} failed:\n{text}");
    }
    Ok(text)
}

/// Facts about a CSV computed without stockstream's parser, to check answers against.
#[derive(Debug, Default)]
pub struct CsvFacts {
    /// Data rows.
    pub rows: u64,
    /// Rows per year.
    pub rows_per_year: std::collections::BTreeMap<i32, u64>,
    /// Highest close per year.
    pub max_close_per_year: std::collections::BTreeMap<i32, f64>,
    /// Sum of volumes.
    pub volume_sum: i64,
}

/// Reads an `indexProcessed.csv`-shaped file with plain string splitting.
pub fn csv_facts(path: &Path) -> Result<CsvFacts> {
    let text = std::fs::read_to_string(path)?;
    let mut facts = CsvFacts::default();
    for line in text.lines().skip(1).filter(|line| !line.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        let year: i32 = fields[1][..4].parse()?;
        let close: f64 = fields[5].parse()?;
        let volume: f64 = fields[7].parse()?;
        facts.rows += 1;
        *facts.rows_per_year.entry(year).or_default() += 1;
        let max = facts.max_close_per_year.entry(year).or_insert(f64::MIN);
        *max = max.max(close);
        facts.volume_sum += volume as i64;
    }
    Ok(facts)
}

/// Posts SQL to a query API and returns the JSON answer; fails on a non-200 status.
pub async fn query(address: SocketAddr, sql: &str) -> Result<serde_json::Value> {
    let body = serde_json::json!({ "sql": sql }).to_string();
    let response = http_post(address, "/v1/query", &body).await?;
    if response.0 != 200 {
        bail!("query {sql:?} answered {}: {}", response.0, response.1);
    }
    Ok(serde_json::from_str(&response.1)?)
}

/// A minimal HTTP/1.1 GET; returns status and body.
pub async fn http_get(address: SocketAddr, path: &str) -> Result<(u16, String)> {
    http_request(address, "GET", path, "application/json", "").await
}

/// A minimal HTTP/1.1 POST (the tests need no HTTP client dependency); returns status and body.
pub async fn http_post(address: SocketAddr, path: &str, body: &str) -> Result<(u16, String)> {
    http_request(address, "POST", path, "application/json", body).await
}

/// A POST with a given content type.
pub async fn http_post_as(
    address: SocketAddr,
    path: &str,
    content_type: &str,
    body: &str,
) -> Result<(u16, String)> {
    http_request(address, "POST", path, content_type, body).await
}

async fn http_request(
    address: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, payload) = text
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .context("no status")?
        .parse()?;
    Ok((status, payload.to_string()))
}

/// A record as the independent reader (`tests/interop/read_topic.py`) saw it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct TopicRecord {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key as text.
    pub key: Option<String>,
    /// Value as text.
    pub value: Option<String>,
    /// Headers as text.
    pub headers: std::collections::BTreeMap<String, String>,
}

impl TopicRecord {
    /// A header's value parsed as a number.
    pub fn number(&self, header: &str) -> Option<u64> {
        self.headers
            .get(header)
            .and_then(|value| value.parse().ok())
    }

    /// The record's position in its replay's order: `stockstream-source-position`, or the source
    /// line when the header is absent (ingest omits it when both are equal).
    pub fn position(&self) -> Option<u64> {
        self.number("stockstream-source-position")
            .or_else(|| self.number("stockstream-source-line"))
    }
}

/// Every record of `topic`, read from the start by confluent-kafka.
pub fn read_topic(bootstrap: &str, topic: &str) -> Result<Vec<TopicRecord>> {
    let output = run_interop("read_topic.py", &[bootstrap, topic])?;
    output
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| Ok(serde_json::from_str(line)?))
        .collect()
}

/// What DuckDB found in a local lake against a topic's end offsets
/// (`tests/interop/lake_offsets.py`): `rows`, `distinct`, `duplicates`, `missing`, `files`.
pub fn lake_report(lake: &Path, kafka: &KafkaConfig) -> Result<serde_json::Value> {
    let ends: Vec<String> = stockstream_common::kafka::topic_watermarks(
        kafka,
        &kafka.topics.quotes,
        stockstream_common::kafka::ADMIN_TIMEOUT,
    )?
    .iter()
    .map(|(partition, _, high)| format!("{partition}={high}"))
    .collect();
    let lake = lake.to_str().context("utf-8 path")?.to_string();
    let mut args = vec![lake.as_str()];
    args.extend(ends.iter().map(String::as_str));
    let output = run_interop("lake_offsets.py", &args)?;
    let line = output
        .lines()
        .find(|line| line.starts_with('{'))
        .context("lake_offsets.py printed no report")?;
    Ok(serde_json::from_str(line)?)
}

/// Polls [`lake_report`] until nothing is missing or `timeout` passes; fails early if
/// `sink_stopped()` says the sink that should fill the gap has stopped.
pub async fn wait_for_complete_lake(
    lake: &Path,
    kafka: &KafkaConfig,
    timeout: Duration,
    sink_stopped: impl Fn() -> bool,
) -> Result<serde_json::Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let report = lake_report(lake, kafka)?;
        if report["missing"] == 0 || Instant::now() > deadline {
            return Ok(report);
        }
        if sink_stopped() {
            bail!("the sink stopped before the lake was complete: {report}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// librdkafka's mock cluster (one broker) with the pipeline topics of `name`, `quotes` having
/// `partitions` partitions. Hosts the multi-member group tests that tansu 0.6.0 cannot.
pub fn mock_kafka(
    name: &str,
    partitions: i32,
) -> Result<(
    rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    KafkaConfig,
)> {
    let mock = rdkafka::mocking::MockCluster::new(1)?;
    let kafka = kafka_config(&mock.bootstrap_servers(), name);
    mock.create_topic(&kafka.topics.quotes, partitions, 1)?;
    mock.create_topic(&kafka.topics.dlq, 1, 1)?;
    mock.create_topic(&kafka.topics.lake_commits, 1, 1)?;
    Ok((mock, kafka))
}

/// Streams generated quotes (`symbols` named `<prefix>1…`, `days` trading days from 1995-01-02)
/// into `kafka`'s quotes topic at `rate` records/s, on a blocking thread.
pub fn stream_quotes(
    kafka: &KafkaConfig,
    prefix: &str,
    symbols: usize,
    days: u32,
    rate: f64,
    seed: u64,
) -> Result<tokio::task::JoinHandle<stockstream_ingest::Result<stockstream_ingest::StreamSummary>>>
{
    let mut ingest = stockstream_ingest::Config::load(None)?;
    ingest.kafka = kafka.clone();
    let options = stockstream_ingest::GenerateOptions {
        symbols: (1..=symbols)
            .map(|index| format!("{prefix}{index}"))
            .collect(),
        days,
        start: chrono::NaiveDate::from_ymd_opt(1995, 1, 2).context("date")?,
        seed,
    };
    Ok(tokio::task::spawn_blocking(move || {
        stockstream_ingest::stream(
            &ingest,
            &options,
            Some(rate),
            &tokio_util::sync::CancellationToken::new(),
        )
    }))
}

/// A valid quote of `symbol` on `date` with fixed prices.
pub fn sample_quote(symbol: &str, date: chrono::NaiveDate) -> stockstream_common::record::Quote {
    stockstream_common::record::Quote {
        symbol: symbol.into(),
        trade_date: date,
        open: 10.0,
        high: 11.0,
        low: 9.0,
        close: 10.5,
        adj_close: 10.5,
        volume: 100,
        close_usd: Some(1.3),
    }
}

/// Writes a one-row quotes file laid out by `template` into `store` and returns its commit event,
/// as the sink does.
pub async fn commit_quotes_file(
    store: &dyn stockstream_common::lake::LakeStore,
    template: &stockstream_common::lake::PartitionTemplate,
    symbol: &str,
    date: chrono::NaiveDate,
    offset: i64,
) -> Result<stockstream_common::events::LakeCommitEvent> {
    use stockstream_common::catalog::{columns_of, schema_fingerprint};
    use stockstream_common::lake::{LakeRow, QUOTES_TABLE, encode_quotes, partition_path};
    let quote = sample_quote(symbol, date);
    let partition = template.partition(&quote);
    let bytes = encode_quotes(
        template,
        &[LakeRow {
            quote,
            kafka_partition: 0,
            kafka_offset: offset,
        }],
        chrono::Utc::now(),
        1024,
    )?;
    let key = format!(
        "{QUOTES_TABLE}/{}/quotes+0+{offset:020}+{offset:020}.parquet",
        partition_path(&partition)
    );
    let size = bytes.len() as u64;
    store.put(&key, bytes).await?;
    Ok(stockstream_common::events::LakeCommitEvent {
        version: stockstream_common::events::LAKE_COMMIT_VERSION,
        table: QUOTES_TABLE.into(),
        table_location: format!("{QUOTES_TABLE}/"),
        object_key: key,
        partition_keys: template.partition_keys(),
        partition,
        row_count: 1,
        size_bytes: size,
        min_trade_date: date,
        max_trade_date: date,
        schema_fingerprint: schema_fingerprint(&columns_of(&template.file_schema())?),
        source_topic: "quotes".into(),
        source_partition: 0,
        first_offset: offset,
        last_offset: offset,
        committed_at: chrono::Utc::now(),
    })
}
