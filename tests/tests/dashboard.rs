//! The dashboard and its live view on real parts: the page in headless Chromium over the local
//! pipeline with the real slice (tests/browser/check_dashboard.py; again at a phone's 375 px), a
//! reconnect with `Last-Event-ID` that gets exactly the quotes it missed, and `/v1/status` reading
//! the other services. The stream under load is tests/live_load.rs.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use stockstream_common::config::KafkaConfig;
use stockstream_common::lake::PartitionTemplate;
use stockstream_e2e::sse::SseClient;
use stockstream_e2e::stack::{
    ingest_config, replay, replayed_slice, start_services_custom, stop, wait_for_count,
};
use stockstream_e2e::{SLICE_ROWS, TestProcess, browser_python, http_get, test_data};

const HEADER: &str = "Index,Date,Open,High,Low,Close,Adj Close,Volume,CloseUSD";

/// Replays `rows` (CSV data lines) as one file through ingest; returns once acknowledged.
async fn produce_rows(kafka: &KafkaConfig, work: &Path, name: &str, rows: &[String]) -> Result<()> {
    let file = work.join(format!("{name}.csv"));
    std::fs::write(&file, format!("{HEADER}\n{}\n", rows.join("\n")))?;
    let summary = replay(&ingest_config(kafka, &work.join("ingest"))?, &file, false).await?;
    ensure!(summary.produced == rows.len() as u64, "{summary:?}");
    Ok(())
}

fn row(symbol: &str, date: chrono::NaiveDate, close: f64) -> String {
    format!(
        "{symbol},{date},{close},{},{},{close},{close},1000,{}",
        close + 1.0,
        close - 1.0,
        close / 8.0
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_page_in_chromium_and_a_resumed_stream_over_the_real_slice() -> Result<()> {
    let python = browser_python();
    let (_broker, kafka, work) = replayed_slice("dashboard", &test_data()).await?;
    let lake = work.path().join("lake");
    let mut services =
        start_services_custom(&kafka, &lake, PartitionTemplate::default(), |_| {}, |_| {}).await?;
    wait_for_count(
        &mut services,
        "SELECT count(*) FROM quotes",
        SLICE_ROWS,
        Duration::from_secs(120),
    )
    .await?;
    let api = services.api;
    wait_for_snapshot(api, "HSI").await?;

    // The browser test: it prints {"event": "ready"} once the page is live, we produce a quote of
    // the day after the slice and answer with its symbol and date.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/check_dashboard.py");
    let screenshot = screenshot_path();
    let mut child = TestProcess::spawn(
        script.display().to_string(),
        Command::new(&python)
            .arg(&script)
            .arg(format!("http://{api}"))
            .args(["--produce-via-stdin", "--screenshot"])
            .arg(&screenshot)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()),
    )?;
    let stdout = child.take_stdout()?;
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout)
            .lines()
            .map_while(std::io::Result::ok)
        {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut last_line = String::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut produced = false;
    while let Ok(line) = lines_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if !produced && line.contains("\"ready\"") {
            let day = chrono::NaiveDate::from_ymd_opt(2010, 1, 12).context("date")?;
            produce_rows(
                &kafka,
                work.path(),
                "live-hsi",
                &[row("HSI", day, 21_000.0)],
            )
            .await?;
            let mut stdin = child.take_stdin()?;
            writeln!(stdin, "HSI 2010-01-12")?;
            produced = true;
        }
        last_line = line;
    }
    let status = child.wait()?;
    let summary: serde_json::Value = serde_json::from_str(&last_line)
        .with_context(|| format!("the browser test's last line is not JSON: {last_line}"))?;
    ensure!(
        status.success(),
        "the browser test failed ({status}): {summary:#}"
    );
    ensure!(produced, "the page never went live: {summary:#}");
    println!("browser test: {summary}");
    println!("screenshot: {}", screenshot.display());

    // The same page at a phone's width: every check but the live one (which the pass above made),
    // and nothing wider than the viewport.
    let phone = {
        let (python, script) = (python.clone(), script.clone());
        tokio::task::spawn_blocking(move || {
            Command::new(&python)
                .arg(&script)
                .arg(format!("http://{api}"))
                .args(["--width", "375", "--height", "812"])
                .stderr(Stdio::inherit())
                .output()
                .with_context(|| format!("starting {}", script.display()))
        })
        .await??
    };
    let phone_summary = String::from_utf8_lossy(&phone.stdout);
    ensure!(
        phone.status.success(),
        "the browser test at 375 px failed ({}): {phone_summary}",
        phone.status
    );
    println!(
        "browser test at 375x812: {}",
        phone_summary.lines().last().unwrap_or_default()
    );

    // A client that disconnects and comes back with Last-Event-ID gets exactly what it missed.
    resume_gets_exactly_the_missed_quotes(api, &kafka, work.path()).await?;

    // The status endpoint reads the sink's and the catalog service's health and metrics.
    let (code, body) = http_get(api, "/v1/status").await?;
    ensure!(code == 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body)?;
    let sink = status["services"]
        .as_array()
        .and_then(|services| {
            services
                .iter()
                .find(|service| service["name"] == "stockstream-s3-sink")
        })
        .context("no sink in /v1/status")?;
    ensure!(sink["ready"] == true, "{status:#}");
    ensure!(
        sink["figures"]["records_written"].as_u64() >= Some(SLICE_ROWS),
        "{status:#}"
    );
    ensure!(status["lake"]["last_commit_at"].is_string(), "{status:#}");
    ensure!(
        status["lake"]["tables"][0]["name"] == "quotes",
        "{status:#}"
    );
    stop(services).await
}

/// Where the browser test leaves its screenshot (the target directory).
fn screenshot_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("dashboard.png")
}

/// Waits until the live view's snapshot holds `symbol` (the tail has read the topic).
async fn wait_for_snapshot(api: SocketAddr, symbol: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut client = SseClient::connect(api, "/v1/stream/quotes", None, None).await?;
        let snapshot = client
            .next_within(Duration::from_secs(10))
            .await?
            .context("no snapshot")?;
        let quotes = snapshot.json()?["quotes"].clone();
        let found = quotes
            .as_array()
            .is_some_and(|quotes| quotes.iter().any(|quote| quote["symbol"] == symbol));
        if found {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "the live snapshot never held {symbol}: {quotes}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn resume_gets_exactly_the_missed_quotes(
    api: SocketAddr,
    kafka: &KafkaConfig,
    work: &Path,
) -> Result<()> {
    let path = "/v1/stream/quotes?symbols=RESUME,HSI";
    let mut client = SseClient::connect(api, path, None, None).await?;
    ensure!(client.status == 200);
    let snapshot = client
        .next_within(Duration::from_secs(10))
        .await?
        .context("snapshot")?;
    ensure!(snapshot.event == "snapshot", "{snapshot:?}");
    let cursor = snapshot.id.clone().context("the snapshot has no id")?;
    drop(client);

    let start = chrono::NaiveDate::from_ymd_opt(2011, 3, 1).context("date")?;
    let missed: Vec<String> = (0..25)
        .map(|day| row("RESUME", start + chrono::Days::new(day), 100.0 + day as f64))
        .collect();
    produce_rows(kafka, work, "resume", &missed).await?;

    let mut client = SseClient::connect(api, path, Some(&cursor), None).await?;
    let snapshot = client
        .next_within(Duration::from_secs(10))
        .await?
        .context("snapshot")?;
    ensure!(
        snapshot.json()?["resumed"] == true,
        "the history did not reach back: {}",
        snapshot.data
    );
    let mut dates = Vec::new();
    while dates.len() < missed.len() {
        let event = client
            .next_within(Duration::from_secs(10))
            .await?
            .context("the stream ended")?;
        ensure!(event.event == "quote", "{event:?}");
        let quote = event.json()?;
        ensure!(quote["symbol"] == "RESUME", "not missed: {quote}");
        dates.push(quote["trade_date"].as_str().context("date")?.to_string());
    }
    let expected: Vec<String> = (0..25)
        .map(|day| (start + chrono::Days::new(day)).to_string())
        .collect();
    assert_eq!(dates, expected, "exactly the quotes produced while away");
    // And nothing more: the next thing on the stream is a heartbeat or nothing at all.
    match tokio::time::timeout(Duration::from_millis(1500), client.next()).await {
        Err(_) => {}
        Ok(event) => bail!("an extra event after the missed quotes: {event:?}"),
    }
    Ok(())
}
