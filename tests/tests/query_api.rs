//! The query API's HTTP contract on the embedded engine, over a lake of the real slice written
//! without a broker: streamed formats, asynchronous queries, the concurrency limit, a client
//! that disconnects, bearer tokens and CORS, and schemathesis against `/openapi.json`.

use std::io::Cursor;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use stockstream_common::lake::PartitionTemplate;
use stockstream_e2e::http::{http_call, http_get_as, http_post_json};
use stockstream_e2e::lake::{LakeShape, catalog_lake, quotes_of, write_lake};
use stockstream_e2e::metrics::read_metric;
use stockstream_e2e::test_data;
use tokio_util::sync::CancellationToken;

/// A local lake of the real slice with its catalog; a few files per partition.
async fn real_slice_lake(root: &Path) -> Result<()> {
    let quotes = quotes_of(&test_data())?;
    write_lake(
        root,
        "quotes",
        &quotes,
        &PartitionTemplate::default(),
        LakeShape {
            kafka_partitions: 3,
            rows_per_flush: 2000,
        },
        chrono::Utc::now(),
    )
    .await?;
    catalog_lake(root, "stockstream").await
}

fn config(lake: &Path) -> Result<stockstream_query_api::Config> {
    let mut config = stockstream_query_api::Config::load(None)?;
    config.lake = stockstream_common::config::LakeConfig::Local {
        root: lake.to_path_buf(),
    };
    // No broker here: the catalog and listings are all there is (and no live view).
    config.query.follow_commits = false;
    config.live.enabled = false;
    config.status.services = Vec::new();
    config.http.listen = "127.0.0.1:0".parse()?;
    Ok(config)
}

async fn start(
    config: stockstream_query_api::Config,
    shutdown: &CancellationToken,
) -> Result<SocketAddr> {
    Ok(stockstream_query_api::start(config, shutdown.clone())
        .await?
        .address)
}

/// A query that keeps the engine busy for a long time (stopped by its timeout or a cancel).
const SLOW: &str = "SELECT count(*) FROM generate_series(1, 100000000000) AS a(v) WHERE v % 7 = 3";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formats_async_queries_limits_and_disconnects() -> Result<()> {
    let work = tempfile::tempdir()?;
    real_slice_lake(work.path()).await?;
    let shutdown = CancellationToken::new();
    let mut settings = config(work.path())?;
    settings.query.sync_wait = Duration::from_millis(1500);
    settings.query.max_concurrent = std::num::NonZeroUsize::new(1).context("one")?;
    settings.query.queue_timeout = Duration::from_millis(200);
    let api = start(settings, &shutdown).await?;

    // NDJSON and Arrow IPC, streamed; the same rows as JSON.
    let sql = json!({"sql": "SELECT trade_date, close FROM quotes WHERE symbol = ? AND year = ? ORDER BY trade_date", "params": ["HSI", 1987]});
    let as_json = http_post_json(api, "/v1/query", &sql, "application/json")
        .await?
        .json()?;
    let rows = as_json["rows"].as_array().context("rows")?.clone();
    assert_eq!(rows.len(), 246, "trading days of 1987");
    let ndjson = http_post_json(api, "/v1/query", &sql, "application/x-ndjson").await?;
    assert_eq!(ndjson.status, 200, "{}", ndjson.text());
    assert_eq!(
        ndjson.headers.get("content-type").map(String::as_str),
        Some("application/x-ndjson")
    );
    let lines: Vec<Value> = ndjson
        .text()
        .lines()
        .map(serde_json::from_str)
        .collect::<std::result::Result<_, _>>()?;
    assert_eq!(lines.len(), rows.len());
    assert_eq!(
        lines[0],
        json!({"trade_date": rows[0][0], "close": rows[0][1]})
    );
    let arrow = http_post_json(
        api,
        "/v1/query",
        &sql,
        "application/vnd.apache.arrow.stream",
    )
    .await?;
    assert_eq!(arrow.status, 200);
    let reader = arrow::ipc::reader::StreamReader::try_new(Cursor::new(arrow.body.clone()), None)?;
    let batches: Vec<arrow::record_batch::RecordBatch> =
        reader.collect::<std::result::Result<_, _>>()?;
    assert_eq!(
        batches.iter().map(|batch| batch.num_rows()).sum::<usize>(),
        rows.len()
    );
    let not_acceptable = http_call(
        api,
        "POST",
        "/v1/query",
        &[
            ("Accept", "text/html"),
            ("Content-Type", "application/json"),
        ],
        sql.to_string().as_bytes(),
    )
    .await?;
    assert_eq!(not_acceptable.status, 406, "{}", not_acceptable.text());

    // Limits: rows (truncated), SQL size, body size, parameter count; errors are JSON.
    let cut = http_post_json(
        api,
        "/v1/query",
        &json!({"sql": "SELECT * FROM quotes", "max_rows": 7}),
        "application/json",
    )
    .await?
    .json()?;
    assert_eq!(cut["rows"].as_array().map(Vec::len), Some(7));
    assert_eq!(cut["stats"]["truncated"], true);
    let huge = "x".repeat(2 * 1024 * 1024);
    let too_big =
        http_post_json(api, "/v1/query", &json!({"sql": huge}), "application/json").await?;
    assert_eq!(too_big.status, 413, "{}", too_big.text());
    assert_eq!(too_big.json()?["error"]["kind"], "payload_too_large");
    let params = http_post_json(
        api,
        "/v1/query",
        &json!({"sql": "SELECT * FROM quotes WHERE symbol = ?"}),
        "application/json",
    )
    .await?;
    assert_eq!(params.status, 400);
    assert!(params.text().contains("placeholder"), "{}", params.text());

    // Slower than sync_wait: 202, then its state; the one execution slot is busy meanwhile.
    let slow = http_post_json(
        api,
        "/v1/query",
        &json!({"sql": SLOW, "timeout_ms": 20000}),
        "application/json",
    )
    .await?;
    assert_eq!(slow.status, 202, "{}", slow.text());
    let slow = slow.json()?;
    let id = slow["query_id"].as_str().context("id")?.to_string();
    assert_eq!(slow["status_url"], format!("/v1/queries/{id}"));
    let busy = http_post_json(
        api,
        "/v1/query",
        &json!({"sql": "SELECT 1"}),
        "application/json",
    )
    .await?;
    assert_eq!(busy.status, 503, "{}", busy.text());
    assert!(
        busy.headers.contains_key("retry-after"),
        "{:?}",
        busy.headers
    );
    assert_eq!(busy.json()?["error"]["kind"], "overloaded");
    let results = http_get_as(
        api,
        &format!("/v1/queries/{id}/results"),
        "application/json",
    )
    .await?;
    assert_eq!(results.status, 409, "{}", results.text());
    let cancelled = http_call(api, "DELETE", &format!("/v1/queries/{id}"), &[], b"")
        .await?
        .json()?;
    assert_eq!(cancelled["state"], "CANCELLED", "{cancelled}");

    // An asynchronous query that finishes: its rows page by page.
    let many = json!({"sql": "SELECT trade_date, close FROM quotes, (SELECT 1 FROM generate_series(1, 20000000) AS g(x) LIMIT 1) ORDER BY trade_date", "max_rows": 2500});
    let answer = http_post_json(api, "/v1/query", &many, "application/json").await?;
    let id = if answer.status == 202 {
        let id = answer.json()?["query_id"]
            .as_str()
            .context("id")?
            .to_string();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let state = http_get_as(api, &format!("/v1/queries/{id}"), "application/json")
                .await?
                .json()?;
            if state["state"] == "SUCCEEDED" {
                break id;
            }
            ensure!(
                Instant::now() < deadline && state["state"] != "FAILED",
                "{state}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    } else {
        // This machine answered within sync_wait; the paging is covered by the next query.
        assert_eq!(answer.status, 200, "{}", answer.text());
        String::new()
    };
    if !id.is_empty() {
        let mut token = String::new();
        let mut seen = 0;
        loop {
            let path = format!("/v1/queries/{id}/results?page_size=1000&page_token={token}");
            let page = http_get_as(api, &path, "application/json").await?.json()?;
            seen += page["rows"].as_array().map_or(0, Vec::len);
            match page["next_page_token"].as_str() {
                Some(next) => token = next.to_string(),
                None => break,
            }
        }
        assert_eq!(seen, 2500);
    }

    // A client that goes away cancels its query and frees its slot.
    let cancelled_before = read_metric(
        api,
        "stockstream_query_requests_total{engine=\"datafusion\",outcome=\"cancelled\"}",
    )
    .await?;
    {
        use tokio::io::AsyncWriteExt;
        let body = json!({"sql": SLOW, "timeout_ms": 30000}).to_string();
        let mut socket = tokio::net::TcpStream::connect(api).await?;
        socket
            .write_all(format!("POST /v1/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes())
            .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while read_metric(
        api,
        "stockstream_query_requests_total{engine=\"datafusion\",outcome=\"cancelled\"}",
    )
    .await?
        <= cancelled_before
    {
        ensure!(
            Instant::now() < deadline,
            "the disconnected query was not cancelled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let free = http_post_json(
        api,
        "/v1/query",
        &json!({"sql": "SELECT 1 AS one"}),
        "application/json",
    )
    .await?;
    assert_eq!(free.status, 200, "the slot was freed: {}", free.text());
    shutdown.cancel();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_and_cors() -> Result<()> {
    let work = tempfile::tempdir()?;
    real_slice_lake(work.path()).await?;
    let shutdown = CancellationToken::new();
    let mut settings = config(work.path())?;
    settings.query.auth_tokens = stockstream_query_api::config::parse_tokens(
        "first-token-0123456789,second-token-0123456789",
    )?;
    settings.query.cors_origins = vec!["https://dashboard.example".into()];
    let api = start(settings, &shutdown).await?;

    let none = http_get_as(api, "/v1/tables", "application/json").await?;
    assert_eq!(none.status, 401);
    assert!(none.headers.contains_key("www-authenticate"));
    assert_eq!(none.json()?["error"]["kind"], "unauthorized");
    for (token, status) in [
        ("Bearer wrong-token-0123456789x", 401),
        ("Bearer second-token-0123456789", 200),
        ("second-token-0123456789", 401),
    ] {
        let answer = http_call(api, "GET", "/v1/tables", &[("Authorization", token)], b"").await?;
        assert_eq!(answer.status, status, "{token}: {}", answer.text());
    }
    // Operations endpoints and the API description stay open.
    assert_eq!(http_get_as(api, "/health/readyz", "*/*").await?.status, 200);
    assert_eq!(http_get_as(api, "/openapi.json", "*/*").await?.status, 200);
    let preflight = http_call(
        api,
        "OPTIONS",
        "/v1/query",
        &[
            ("Origin", "https://dashboard.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    )
    .await?;
    assert_eq!(
        preflight
            .headers
            .get("access-control-allow-origin")
            .map(String::as_str),
        Some("https://dashboard.example")
    );
    shutdown.cancel();
    Ok(())
}

/// schemathesis generates requests from `/openapi.json` for every endpoint; none may produce a
/// server error (5xx) or break the documented response schemas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error() -> Result<()> {
    let work = tempfile::tempdir()?;
    real_slice_lake(work.path()).await?;
    let shutdown = CancellationToken::new();
    let api = start(config(work.path())?, &shutdown).await?;
    let report =
        stockstream_e2e::http::schemathesis(&format!("http://{api}"), work.path(), 40).await?;
    println!("{report}");
    shutdown.cancel();
    Ok(())
}
