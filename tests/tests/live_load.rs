//! The quote stream under load on real parts: a tansu broker, the query API tailing `quotes`,
//! 50 Server-Sent Events clients while 20,000 quotes are produced — every client gets every quote
//! in order per symbol, and one stalled client is dropped without slowing the others. Prints the
//! delivery latency (from the producer's timestamp, and from the API's read of the topic) and
//! ingestion's pace with the clients against the same production without them, in the same run.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde::Deserialize;
use stockstream_common::kafka::{ensure_topics, pipeline_topics};
use stockstream_e2e::configs::{api_config_on, local_lake};
use stockstream_e2e::metrics::read_metric;
use stockstream_e2e::sse::SseClient;
use stockstream_e2e::{Tansu, kafka_config, stream_quotes};
use tokio_util::sync::CancellationToken;

/// Symbols of the quotes produced under load (the baseline's are `BASE…`).
const LOAD_PREFIX: &str = "LOAD";

/// The fields of a quote event the load test checks.
#[derive(Debug, Deserialize)]
struct Received {
    symbol: String,
    trade_date: chrono::NaiveDate,
    partition: i32,
    offset: i64,
    timestamp_ms: Option<i64>,
    read_at_ms: i64,
}

/// What one load client saw.
#[derive(Debug, Default)]
struct ClientReport {
    quotes: usize,
    out_of_order: usize,
    latencies_ms: Vec<i64>,
    fan_out_ms: Vec<i64>,
    dropped: Option<String>,
}

async fn follow(
    api: SocketAddr,
    expected: usize,
    receive_buffer: Option<u32>,
    stall: Option<tokio::sync::oneshot::Receiver<()>>,
) -> Result<ClientReport> {
    let mut client = SseClient::connect(api, "/v1/stream/quotes", None, receive_buffer).await?;
    ensure!(client.status == 200, "status {}", client.status);
    let snapshot = client
        .next_within(Duration::from_secs(10))
        .await?
        .context("snapshot")?;
    ensure!(snapshot.event == "snapshot");
    if let Some(stall) = stall {
        // A stalled client: it stops reading until told to go on.
        let _ = stall.await;
    }
    let mut report = ClientReport::default();
    let mut last_date: BTreeMap<String, chrono::NaiveDate> = BTreeMap::new();
    let mut last_offset: BTreeMap<i32, i64> = BTreeMap::new();
    while report.quotes < expected {
        let Some(event) = client.next_within(Duration::from_secs(60)).await? else {
            break;
        };
        match event.event.as_str() {
            "quote" => {
                let quote: Received = serde_json::from_str(&event.data)?;
                if !quote.symbol.starts_with(LOAD_PREFIX) {
                    // The baseline's tail end, read after this client connected.
                    continue;
                }
                let now = chrono::Utc::now().timestamp_millis();
                if let Some(stamp) = quote.timestamp_ms {
                    report.latencies_ms.push(now - stamp);
                }
                report.fan_out_ms.push(now - quote.read_at_ms);
                let date_ok = last_date
                    .insert(quote.symbol.clone(), quote.trade_date)
                    .is_none_or(|before| before < quote.trade_date);
                let offset_ok = last_offset
                    .insert(quote.partition, quote.offset)
                    .is_none_or(|before| before < quote.offset);
                if !(date_ok && offset_ok) {
                    report.out_of_order += 1;
                }
                report.quotes += 1;
            }
            "dropped" => {
                report.dropped = Some(event.data);
                break;
            }
            other => bail!("unexpected event {other}: {}", event.data),
        }
    }
    Ok(report)
}

fn percentile(sorted: &[i64], fraction: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_clients_get_every_quote_in_order_and_a_stalled_one_is_dropped() -> Result<()> {
    const CLIENTS: usize = 50;
    const SYMBOLS: usize = 10;
    const DAYS: u32 = 2000;
    const QUOTES: usize = SYMBOLS * DAYS as usize;
    const MAX_LAG: Duration = Duration::from_secs(30);
    // Quotes per second the producer is paced at, with and without clients.
    const RATE: f64 = 1000.0;
    let broker = Tansu::start()?;
    let kafka = kafka_config(&broker.bootstrap, "live-load");
    ensure_topics(&kafka, &pipeline_topics(&kafka)).await?;
    let lake = tempfile::tempdir()?;
    let mut config = api_config_on(&kafka, local_lake(lake.path()))?;
    config.query.follow_commits = false;
    config.status.services = Vec::new();
    // Room for 50 clients of a debug build on 2 cores to fall behind a burst; the stalled client
    // is dropped by time: when it reads again, its next quote is more than MAX_LAG old.
    config.live.client_buffer = 16_384;
    config.live.max_lag = MAX_LAG;
    let shutdown = CancellationToken::new();
    let api = stockstream_query_api::start(config, shutdown.clone())
        .await?
        .address;
    wait_for_tailing(api).await?;

    // Ingestion's baseline: the same production with no client connected.
    let started = Instant::now();
    let baseline = stream_quotes(&kafka, "BASE", SYMBOLS, DAYS, RATE, 12)?.await??;
    let baseline_time = started.elapsed();
    ensure!(baseline.produced as usize == QUOTES, "{baseline:?}");

    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(tokio::spawn(follow(api, QUOTES, None, None)));
    }
    let (resume_stalled, stalled_waits) = tokio::sync::oneshot::channel();
    let stalled = tokio::spawn(follow(api, QUOTES, Some(4096), Some(stalled_waits)));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = Instant::now();
    let produced = stream_quotes(&kafka, LOAD_PREFIX, SYMBOLS, DAYS, RATE, 11)?.await??;
    let production = started.elapsed();
    ensure!(produced.produced as usize == QUOTES, "{produced:?}");

    let mut latencies = Vec::new();
    let mut fan_out = Vec::new();
    for (index, client) in clients.into_iter().enumerate() {
        let report = client.await??;
        ensure!(
            report.dropped.is_none() && report.quotes == QUOTES,
            "client {index} got {} of {QUOTES} quotes (dropped: {:?})",
            report.quotes,
            report.dropped
        );
        ensure!(report.out_of_order == 0, "client {index}: {report:?}");
        latencies.extend(report.latencies_ms);
        fan_out.extend(report.fan_out_ms);
    }
    // The stalled client's next quote from the server is older than MAX_LAG by now.
    let resume_at = started + production.max(Duration::from_secs(5)) + MAX_LAG;
    tokio::time::sleep_until(resume_at.into()).await;
    let _ = resume_stalled.send(());
    let stalled = stalled.await??;
    let reason = stalled
        .dropped
        .clone()
        .context("the stalled client was never dropped")?;
    ensure!(reason.contains("behind the stream"), "{reason}");
    ensure!(stalled.quotes < QUOTES, "{stalled:?}");
    latencies.sort_unstable();
    fan_out.sort_unstable();
    println!(
        "live load: ingestion paced at {RATE:.0}/s took {:.2} s with {CLIENTS} clients connected \
         and {:.2} s without ({:.3}x; 1.0 = not slowed)",
        production.as_secs_f64(),
        baseline_time.as_secs_f64(),
        production.as_secs_f64() / baseline_time.as_secs_f64(),
    );
    println!(
        "live load: {CLIENTS} clients x {QUOTES} quotes produced in {:.1} s ({:.0}/s); \
         delivery latency from the producer's timestamp p50 {} ms, p99 {} ms; \
         from the API's read of the topic to the client p50 {} ms, p99 {} ms; \
         stalled client dropped after {} quotes: {reason}",
        production.as_secs_f64(),
        QUOTES as f64 / production.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&fan_out, 0.5),
        percentile(&fan_out, 0.99),
        stalled.quotes,
    );
    shutdown.cancel();
    Ok(())
}

/// Waits until the API's tail of `quotes` is assigned.
async fn wait_for_tailing(api: SocketAddr) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if read_metric(api, "stockstream_live_tailing").await? == 1.0 {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "the live tail never started");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
