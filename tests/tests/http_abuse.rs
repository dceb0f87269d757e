//! Malformed and hostile HTTP requests against every kind of endpoint the services serve — the
//! query API's JSON API and dashboard, ingest's push endpoint, the catalog service's operations
//! endpoint — over raw TCP: oversized heads and bodies, invalid UTF-8, huge numbers, deeply
//! nested JSON, a head that never ends (slowloris) and a body that stalls. Every answer is a
//! client error or a closed connection within a bound, never a server error or a hang, and the
//! services answer normally afterwards. Oversized bodies sent many at once leave the services'
//! memory within a stated bound (measured on the real binaries' peak RSS), and every service's
//! `/openapi.json` passes schemathesis.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use stockstream_common::kafka::{ensure_topics, pipeline_topics};
use stockstream_e2e::ingest::Ingest;
use stockstream_e2e::stack::{ingest_config, start_services, stop};
use stockstream_e2e::{Tansu, TestProcess, free_port, http_get, kafka_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the server did with one request.
#[derive(Debug)]
struct Outcome {
    /// The response's status, or `None` when the connection closed without one.
    status: Option<u16>,
    elapsed: Duration,
}

/// Sends `head` and `body` (a write error after the server gave up is expected), optionally
/// holding the connection open without sending more, and reads the answer.
async fn send(address: SocketAddr, head: &[u8], body: &[u8]) -> Result<Outcome> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(address).await?;
    let _ = stream.write_all(head).await;
    for chunk in body.chunks(64 * 1024) {
        if stream.write_all(chunk).await.is_err() {
            break;
        }
    }
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = Duration::from_secs(40);
    loop {
        match tokio::time::timeout(deadline, stream.read(&mut buffer)).await {
            Err(_) => anyhow::bail!("no answer within {deadline:?} (the server hangs)"),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(read)) => {
                answer.extend_from_slice(&buffer[..read]);
                // One response is enough; keep-alive would leave the connection open.
                if answer.windows(4).any(|window| window == b"\r\n\r\n") {
                    break;
                }
            }
        }
    }
    let status = String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1).map(str::to_string))
        .and_then(|code| code.parse().ok());
    Ok(Outcome {
        status,
        elapsed: started.elapsed(),
    })
}

fn post_head(path: &str, content_type: &str, length: usize) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

async fn post(address: SocketAddr, path: &str, content_type: &str, body: &[u8]) -> Result<Outcome> {
    send(address, &post_head(path, content_type, body.len()), body).await
}

/// A client error, or a connection closed without a server error.
fn refused(case: &str, outcome: &Outcome) -> Result<()> {
    ensure!(
        outcome
            .status
            .is_none_or(|status| (400..500).contains(&status)),
        "{case}: {outcome:?} (expected a 4xx or a closed connection)"
    );
    Ok(())
}

/// A broker, the sink, catalog service and query API in process, and the push service.
struct Stack {
    _tansu: Tansu,
    work: tempfile::TempDir,
    services: stockstream_e2e::stack::Services,
    push: SocketAddr,
    ingest_token: tokio_util::sync::CancellationToken,
    ingest: tokio::task::JoinHandle<stockstream_ingest::Result<()>>,
}

impl Stack {
    async fn start(name: &str) -> Result<Self> {
        let tansu = Tansu::start()?;
        let work = tempfile::tempdir()?;
        let kafka = kafka_config(&tansu.bootstrap, name);
        ensure_topics(&kafka, &pipeline_topics(&kafka)).await?;
        let services = start_services(&kafka, &work.path().join("lake")).await?;
        let mut ingest_config = ingest_config(&kafka, &work.path().join("ingest"))?;
        ingest_config.http.listen = "127.0.0.1:0".parse()?;
        let ingest_token = tokio_util::sync::CancellationToken::new();
        let (push, ingest) =
            stockstream_ingest::serve::start(ingest_config, ingest_token.clone()).await?;
        Ok(Self {
            _tansu: tansu,
            work,
            services,
            push,
            ingest_token,
            ingest,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_requests_get_client_errors_within_bounds() -> Result<()> {
    let Stack {
        _tansu,
        work: _work,
        services,
        push,
        ingest_token,
        ingest,
    } = Stack::start("http-abuse").await?;
    let api = services.api;
    let crawler: SocketAddr = services.crawler_url.trim_start_matches("http://").parse()?;

    let json_endpoints = [
        (api, "/v1/query", "application/json"),
        (push, "/v1/quotes", "application/x-ndjson"),
    ];
    let every_server = [
        (api, "/"),
        (api, "/v1/symbols"),
        (push, "/health/livez"),
        (crawler, "/health/readyz"),
    ];

    // A head over 64 KiB: 431, whatever the endpoint.
    for (address, path) in every_server {
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: test\r\nX-Padding: {}\r\nConnection: close\r\n\r\n",
            "a".repeat(100 * 1024)
        );
        let outcome = send(address, head.as_bytes(), b"").await?;
        ensure!(
            outcome.status == Some(431),
            "oversized head to {path}: {outcome:?}"
        );
    }

    for (address, path, content_type) in json_endpoints {
        // A body far above the limit: 413, without reading it all.
        let big = vec![b'x'; 24 * 1024 * 1024];
        let outcome = post(address, path, content_type, &big).await?;
        ensure!(
            outcome.status == Some(413),
            "24 MiB body to {path}: {outcome:?}"
        );
        // Invalid UTF-8, huge numbers, deep nesting, truncated JSON.
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "invalid UTF-8",
                b"{\"sql\": \"SELECT \xff\xfe\"}\n".to_vec(),
            ),
            (
                "a number over f64",
                b"{\"sql\": \"SELECT 1\", \"max_rows\": 1e400}\n".to_vec(),
            ),
            (
                "an integer over u64",
                b"{\"sql\": \"SELECT 1\", \"max_rows\": 184467440737095516160000}\n".to_vec(),
            ),
            ("100,000 nested arrays", "[".repeat(100_000).into_bytes()),
            (
                "100,000 nested objects",
                "{\"a\":".repeat(100_000).into_bytes(),
            ),
            ("truncated JSON", b"{\"sql\": \"SELECT".to_vec()),
            ("a NUL byte", b"{\"sql\": \"SELECT 1\0\"}\n".to_vec()),
        ];
        for (case, body) in cases {
            let outcome = post(address, path, content_type, &body).await?;
            // Ingest answers 200 with the bad lines listed (each line is judged on its own).
            if path == "/v1/quotes" {
                ensure!(
                    outcome.status.is_some_and(|status| status < 500),
                    "{case} to {path}: {outcome:?}"
                );
            } else {
                refused(&format!("{case} to {path}"), &outcome)?;
            }
        }
        // A body that stalls after 10 of 1,000 bytes: failed after about 10 s, not held.
        let outcome = send(
            address,
            &post_head(path, content_type, 1000),
            b"{\"sql\": \"S",
        )
        .await?;
        refused(&format!("stalled body to {path}"), &outcome)?;
        ensure!(
            outcome.elapsed < Duration::from_secs(25),
            "stalled body to {path} held for {:?}",
            outcome.elapsed
        );
    }

    // Slowloris: a head that never ends is closed after the header read timeout (10 s).
    let mut held = Vec::new();
    for (address, path) in every_server {
        let head = format!("GET {path} HTTP/1.1\r\nHost: test\r\nX-Slow: ");
        held.push(tokio::spawn(async move {
            send(address, head.as_bytes(), b"").await
        }));
    }
    for task in held {
        let outcome = task.await??;
        refused("a head that never ends", &outcome)?;
        ensure!(
            outcome.elapsed < Duration::from_secs(25),
            "a head that never ends was held for {:?}",
            outcome.elapsed
        );
    }

    // Everything still answers.
    for (address, path) in every_server {
        let (status, body) = http_get(address, path).await?;
        ensure!(status < 500, "{path} after the abuse: {status} {body}");
    }
    let (status, _) = http_get(api, "/health/readyz")
        .await
        .context("query API readyz")?;
    ensure!(
        status == 200,
        "query API not ready after the abuse: {status}"
    );
    println!(
        "http abuse: oversized heads 431, oversized bodies 413, malformed bodies 4xx, stalled heads and bodies closed within 25 s, on 3 services"
    );

    ingest_token.cancel();
    ingest.await??;
    stop(services).await
}

/// A service binary's resident and peak memory, from `/proc/<pid>/status`, in KiB.
fn memory_kib(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .with_context(|| format!("{name} missing in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// Resets the process's peak RSS (`VmHWM`) to its current RSS.
fn reset_peak(pid: u32) -> Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
        .with_context(|| format!("resetting the peak RSS of {pid}"))
}

async fn wait_ready(address: SocketAddr, name: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200, _)) = http_get(address, "/health/readyz").await {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{name} was not ready within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A chunked body (no `Content-Length`, so the server cannot refuse it up front) of `size` bytes.
async fn chunked(
    address: SocketAddr,
    path: &str,
    content_type: &str,
    size: usize,
) -> Result<Outcome> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let chunk = vec![b'['; 64 * 1024];
    let mut body = Vec::with_capacity(size + size / 8);
    for _ in 0..size / chunk.len() {
        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(&chunk);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    send(address, head.as_bytes(), &body).await
}

/// The memory one request may hold is its service's body limit; 16 clients sending 24 MiB at
/// once (declared, and chunked without a length) must leave each service's peak RSS within
/// 16 × the limit plus 64 MiB, far below the 384 MiB that buffering them would take.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_bodies_at_once_leave_memory_bounded() -> Result<()> {
    const CLIENTS: usize = 16;
    const BODY: usize = 24 * 1024 * 1024;
    const LIMIT: usize = 1024 * 1024;
    const SLACK_KIB: u64 = 64 * 1024;
    let tansu = Tansu::start()?;
    let ingest = Ingest::new(&tansu, "abuse-memory")?;
    ensure!(
        ingest.command(&["topics"]).status()?.success(),
        "creating the topics"
    );
    let push: SocketAddr = format!("127.0.0.1:{}", free_port()).parse()?;
    let mut command = ingest.command(&["serve"]);
    command
        .env("STOCKSTREAM__HTTP__LISTEN", push.to_string())
        .env("STOCKSTREAM__INGEST__MAX_BODY_BYTES", LIMIT.to_string());
    let push_process = TestProcess::spawn("stockstream-ingest serve", &mut command)?;
    let lake = tempfile::tempdir()?;
    let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse()?;
    let bin = std::path::PathBuf::from(std::env::var("STOCKSTREAM_BIN")?);
    let api_process = TestProcess::spawn(
        "stockstream-query-api",
        std::process::Command::new(bin.join("stockstream-query-api"))
            .env("STOCKSTREAM__LAKE__ROOT", lake.path())
            .env("STOCKSTREAM__HTTP__LISTEN", api.to_string())
            .env("STOCKSTREAM__QUERY__MAX_BODY_BYTES", LIMIT.to_string())
            .env("STOCKSTREAM__QUERY__FOLLOW_COMMITS", "false")
            .env("STOCKSTREAM__LIVE__ENABLED", "false")
            .env("STOCKSTREAM__TELEMETRY__LOG_LEVEL", "warn"),
    )?;
    wait_ready(push, "the push service").await?;
    wait_ready(api, "the query API").await?;
    let services = [
        (
            "query API",
            api,
            api_process.id(),
            "/v1/query",
            "application/json",
        ),
        (
            "push service",
            push,
            push_process.id(),
            "/v1/quotes",
            "application/x-ndjson",
        ),
    ];
    for (name, address, pid, path, content_type) in services {
        // Warm: one ordinary refused request, so lazily built state is not counted.
        post(address, path, content_type, b"{}").await?;
        let (before, _) = memory_kib(pid)?;
        reset_peak(pid)?;
        let mut clients = tokio::task::JoinSet::new();
        for client in 0..CLIENTS {
            clients.spawn(async move {
                if client % 2 == 0 {
                    post(address, path, content_type, &vec![b'x'; BODY]).await
                } else {
                    chunked(address, path, content_type, BODY).await
                }
            });
        }
        while let Some(outcome) = clients.join_next().await {
            let outcome = outcome??;
            refused(&format!("a 24 MiB body to {name}"), &outcome)?;
        }
        let (after, peak) = memory_kib(pid)?;
        println!(
            "{name}: RSS {before} KiB before, peak {peak} KiB during {CLIENTS} concurrent 24 MiB bodies, {after} KiB after (limit {LIMIT} bytes per body)"
        );
        let bound = before + (CLIENTS * LIMIT / 1024) as u64 + SLACK_KIB;
        ensure!(
            peak <= bound,
            "{name}: peak RSS {peak} KiB above the bound {bound} KiB (RSS before {before} KiB)"
        );
        let (status, _) = http_get(address, "/health/readyz").await?;
        ensure!(status == 200, "{name} not ready after the bodies: {status}");
    }
    Ok(())
}

/// schemathesis against the push service's, the sink's and the catalog service's
/// `/openapi.json` (the query API's, with the dashboard's files, is in `query_api.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_service_passes_schemathesis() -> Result<()> {
    let Stack {
        _tansu,
        work,
        services,
        push,
        ingest_token,
        ingest,
    } = Stack::start("openapi").await?;
    let bases = [
        format!("http://{push}"),
        services.sink_url.clone(),
        services.crawler_url.clone(),
    ];
    for base in &bases {
        let report = stockstream_e2e::http::schemathesis(base, work.path(), 25).await?;
        println!("{base}:\n{report}");
    }
    ingest_token.cancel();
    ingest.await??;
    stop(services).await
}
