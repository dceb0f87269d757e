//! A zombie sink, on librdkafka's mock cluster (tansu 0.6.0 gives both members of a group every
//! partition, so it cannot host this test): sink A (a process) buffers records and is frozen with
//! SIGSTOP past its session timeout; sink B joins the group, gets every partition and flushes the
//! ranges A still holds in memory; then A is thawed with SIGCONT and flushes — or tries to — its
//! stale buffers. The intents' conditional writes fence A off (docs/exactly-once.md): every record
//! lands in the lake exactly once. A failing run still kills A, frozen or not ([`TestProcess`]).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use stockstream_common::config::KafkaConfig;
use stockstream_e2e::configs::sink_config;
use stockstream_e2e::{
    TestProcess, free_port, http_get, lake_report, mock_kafka, stream_quotes,
    wait_for_complete_lake,
};
use tokio_util::sync::CancellationToken;

const RECORDS: u64 = 20_000;
const GROUP: &str = "zombie-sink";

/// Sink A, as its own process so that it can be frozen.
fn zombie(kafka: &KafkaConfig, lake: &Path, port: u16, log: &Path) -> Result<TestProcess> {
    let bin = std::env::var("STOCKSTREAM_BIN")
        .context("STOCKSTREAM_BIN is not set: run the tests with `make test`")?;
    TestProcess::spawn(
        "sink A",
        Command::new(Path::new(&bin).join("stockstream-s3-sink"))
            .env(
                "STOCKSTREAM__KAFKA__BOOTSTRAP_SERVERS",
                &kafka.bootstrap_servers,
            )
            .env("STOCKSTREAM__KAFKA__TOPICS__QUOTES", &kafka.topics.quotes)
            .env("STOCKSTREAM__KAFKA__TOPICS__DLQ", &kafka.topics.dlq)
            .env(
                "STOCKSTREAM__KAFKA__TOPICS__LAKE_COMMITS",
                &kafka.topics.lake_commits,
            )
            .env("STOCKSTREAM__LAKE__ROOT", lake)
            .env("STOCKSTREAM__HTTP__LISTEN", format!("127.0.0.1:{port}"))
            .env("STOCKSTREAM__SINK__GROUP_ID", GROUP)
            // Long enough that A holds unflushed records when it is frozen.
            .env("STOCKSTREAM__SINK__FLUSH_INTERVAL", "3s")
            .env("STOCKSTREAM__SINK__FLUSH_RECORDS", "1000000")
            .env("STOCKSTREAM__SINK__SESSION_TIMEOUT", "6s")
            .env("STOCKSTREAM__TELEMETRY__LOG_LEVEL", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(log)?)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thawed_zombie_sink_writes_nothing_twice() -> Result<()> {
    let (_mock, kafka) = mock_kafka("zombie", 4)?;
    let work = tempfile::tempdir()?;
    let lake = work.path().join("lake");
    let log = work.path().join("zombie.log");

    // 20 symbols x 1,000 days at 2,000 records/s: 10 s of streaming.
    let producer = stream_quotes(&kafka, "ZB", 20, 1000, 2000.0, 11)?;

    let port = free_port();
    let mut sink_a = zombie(&kafka, &lake, port, &log)?;
    let address = format!("127.0.0.1:{port}").parse()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(http_get(address, "/health/readyz").await, Ok((200, _))) {
        ensure!(Instant::now() < deadline, "sink A never became ready");
        ensure!(sink_a.try_wait()?.is_none(), "sink A exited");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let A flush once and buffer again, then freeze it mid-buffer.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    sink_a.signal("STOP")?;

    let mut config = sink_config(&kafka, &lake)?;
    config.sink.group_id = GROUP.into();
    config.sink.session_timeout = Duration::from_secs(6);
    let token_b = CancellationToken::new();
    let sink_b = tokio::spawn(stockstream_s3_sink::run(config, token_b.clone()));

    // A's session expires (6 s), B takes every partition and flushes A's ranges; then A wakes.
    tokio::time::sleep(Duration::from_secs(10)).await;
    sink_a.signal("CONT")?;
    let summary = producer.await??;
    assert_eq!(summary.produced, RECORDS);

    let report = wait_for_complete_lake(&lake, &kafka, Duration::from_secs(120), || {
        sink_b.is_finished()
    })
    .await?;
    // Give the thawed zombie time to act on its stale buffers before judging the lake again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (_, metrics) = http_get(address, "/metrics").await?;
    let after = lake_report(&lake, &kafka)?;
    let zombie_status = sink_a.terminate()?;
    token_b.cancel();
    sink_b.await??;

    let text = std::fs::read_to_string(&log)?;
    let fenced = text
        .lines()
        .filter(|line| line.contains("another sink already flushed this range"))
        .count();
    let dropped_on_revoke = text
        .lines()
        .filter(|line| line.contains("partition revoked, dropping"))
        .count();
    eprintln!(
        "zombie: {fenced} flushes fenced off, {dropped_on_revoke} revoked buffers dropped; {}",
        metrics
            .lines()
            .find(|line| line.starts_with("stockstream_sink_fenced_flushes_total"))
            .unwrap_or("no fenced flushes counted")
    );
    ensure!(
        fenced + dropped_on_revoke > 0,
        "the zombie never lost its partitions; log:\n{text}"
    );
    for report in [&report, &after] {
        assert_eq!(report["missing"], 0, "{report}");
        assert_eq!(report["duplicates"], 0, "{report}");
        assert_eq!(report["rows"], RECORDS, "{report}");
    }
    ensure!(
        zombie_status.success(),
        "the zombie did not drain cleanly: {zombie_status}"
    );
    Ok(())
}
