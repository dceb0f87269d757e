//! Malformed and hostile HTTP requests against every kind of endpoint the services serve — the
//! query API's JSON API and dashboard, ingest's push endpoint, the catalog service's operations
//! endpoint — over raw TCP: oversized heads and bodies, invalid UTF-8, huge numbers, deeply
//! nested JSON, a head that never ends (slowloris) and a body that stalls. Every answer is a
//! client error or a closed connection within a bound, never a server error or a hang, and the
//! services answer normally afterwards.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use stockstream_common::kafka::{ensure_topics, pipeline_topics};
use stockstream_e2e::stack::{start_services, stop};
use stockstream_e2e::{Tansu, http_get, kafka_config};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_requests_get_client_errors_within_bounds() -> Result<()> {
    let tansu = Tansu::start()?;
    let work = tempfile::tempdir()?;
    let kafka = kafka_config(&tansu.bootstrap, "http-abuse");
    ensure_topics(&kafka, &pipeline_topics(&kafka)).await?;
    let services = start_services(&kafka, &work.path().join("lake")).await?;
    let mut ingest_config = stockstream_ingest::Config::load(None)?;
    ingest_config.kafka = kafka.clone();
    ingest_config.http.listen = "127.0.0.1:0".parse()?;
    let ingest_token = tokio_util::sync::CancellationToken::new();
    let (push, ingest) =
        stockstream_ingest::serve::start(ingest_config, ingest_token.clone()).await?;
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
