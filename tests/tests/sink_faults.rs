//! The sink's exactly-once guarantee under crashes: while 120,000 records stream in, the sink
//! process is killed with SIGKILL five times at random moments and restarted; afterwards DuckDB
//! finds every (partition, offset) of the topic in the lake exactly once.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use stockstream_common::kafka::{ADMIN_TIMEOUT, topic_watermarks};
use stockstream_e2e::{Tansu, TestProcess, kafka_config, run_interop};

const RECORDS: u64 = 120_000;

struct Stack {
    bin: PathBuf,
    bootstrap: String,
    lake: PathBuf,
    state: PathBuf,
}

impl Stack {
    fn command(&self, binary: &str, args: &[&str]) -> Command {
        let mut command = Command::new(self.bin.join(binary));
        command
            .args(args)
            .env("STOCKSTREAM__KAFKA__BOOTSTRAP_SERVERS", &self.bootstrap)
            .env("STOCKSTREAM__KAFKA__TOPICS__QUOTES", "faults.quotes")
            .env("STOCKSTREAM__KAFKA__TOPICS__DLQ", "faults.quotes.dlq")
            .env(
                "STOCKSTREAM__KAFKA__TOPICS__LAKE_COMMITS",
                "faults.lake.commits",
            )
            .env("STOCKSTREAM__LAKE__ROOT", &self.lake)
            .env("STOCKSTREAM__INGEST__STATE_DIR", &self.state)
            .env("STOCKSTREAM__HTTP__LISTEN", "127.0.0.1:0")
            .env("STOCKSTREAM__TELEMETRY__LOG_LEVEL", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        command
    }

    /// Starts a sink. Each run joins a group of its own: tansu 0.6.0 keeps SIGKILLed members in a
    /// group and hands a new member only part of the partitions (Kafka evicts them after the
    /// session timeout). The sink resumes from the lake, not from committed offsets, so a fresh
    /// group is also the harder case: it starts with no committed offset at all.
    fn sink(&self, log: &Path, run: usize) -> Result<TestProcess> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        TestProcess::spawn(
            format!("sink run {run}"),
            self.command("stockstream-s3-sink", &[])
                .env("STOCKSTREAM__SINK__FLUSH_INTERVAL", "1s")
                .env("STOCKSTREAM__SINK__FLUSH_RECORDS", "5000")
                .env("STOCKSTREAM__SINK__GROUP_ID", format!("faults-sink-{run}"))
                .stderr(Stdio::from(log)),
        )
    }
}

/// A pseudo-random number in `0..bound` (the moments differ from run to run).
fn jitter(bound: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos() as u64);
    (nanos ^ (nanos >> 7)) % bound
}

#[test]
fn sigkill_the_sink_five_times_while_records_stream_in() -> Result<()> {
    let tansu = Tansu::start()?;
    let work = tempfile::tempdir()?;
    let stack = Stack {
        bin: PathBuf::from(
            std::env::var("STOCKSTREAM_BIN")
                .context("STOCKSTREAM_BIN is not set: run the tests with `make test`")?,
        ),
        bootstrap: tansu.bootstrap.clone(),
        lake: work.path().join("lake"),
        state: work.path().join("ingest"),
    };
    let log = work.path().join("sink.log");
    let topics = stack.command("stockstream-ingest", &["topics"]).output()?;
    ensure!(topics.status.success(), "topics: {topics:?}");

    // 30 symbols x 4,000 trading days, at 8,000 records/s: about 15 s of streaming.
    let mut producer = TestProcess::spawn(
        "ingest generate",
        stack
            .command(
                "stockstream-ingest",
                &[
                    "generate",
                    "--symbol-count",
                    "30",
                    "--days",
                    "4000",
                    "--seed",
                    "3",
                    "--rate",
                    "8000",
                ],
            )
            .stderr(Stdio::null()),
    )?;
    let mut kills = Vec::new();
    for run in 0..5 {
        let mut sink = stack.sink(&log, run)?;
        let alive = Duration::from_millis(1200 + jitter(2000));
        std::thread::sleep(alive);
        ensure!(
            sink.try_wait()?.is_none(),
            "the sink exited on its own; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        sink.kill()?; // SIGKILL
        kills.push(alive.as_millis());
    }
    eprintln!("sink killed after {kills:?} ms of life");
    let produced = producer.wait()?;
    ensure!(produced.success(), "the producer failed: {produced}");

    let kafka = kafka_config(&stack.bootstrap, "faults");
    let ends: Vec<String> = topic_watermarks(&kafka, "faults.quotes", ADMIN_TIMEOUT)?
        .iter()
        .map(|(partition, _low, high)| format!("{partition}={high}"))
        .collect();
    let total: i64 = topic_watermarks(&kafka, "faults.quotes", ADMIN_TIMEOUT)?
        .iter()
        .map(|(_, low, high)| high - low)
        .sum();
    assert_eq!(total as u64, RECORDS);

    // A last sink catches up; DuckDB checks the lake.
    let mut sink = stack.sink(&log, 5)?;
    let lake = stack.lake.to_str().context("utf-8 path")?.to_string();
    let mut args = vec![lake.as_str()];
    args.extend(ends.iter().map(String::as_str));
    let deadline = Instant::now() + Duration::from_secs(150);
    let report = loop {
        let output = run_interop("lake_offsets.py", &args)?;
        let line = output
            .lines()
            .find(|line| line.starts_with('{'))
            .context("no report")?;
        let report: serde_json::Value = serde_json::from_str(line)?;
        if report["missing"] == 0 || Instant::now() > deadline {
            break report;
        }
        ensure!(sink.try_wait()?.is_none(), "the final sink exited");
        std::thread::sleep(Duration::from_secs(1));
    };
    let status = sink.terminate()?;
    if report["missing"] != 0 {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        eprintln!("sink log (last lines, newest first):\n{}", tail.join("\n"));
    }
    assert_eq!(report["missing"], 0, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    assert_eq!(report["rows"], RECORDS, "{report}");
    assert!(status.success(), "the sink did not drain cleanly: {status}");
    Ok(())
}
