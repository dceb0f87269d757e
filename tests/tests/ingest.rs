//! End-to-end tests of `stockstream-ingest` against a real tansu broker: every replay mode, messy
//! files and dead letters, exactness after SIGKILL, the generator, and the HTTP push service.
//! Topics are read back by an independent client (confluent-kafka, `tests/interop/`).

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use stockstream_e2e::ingest::{Ingest, number, write};
use stockstream_e2e::{
    SLICE_ROWS, Tansu, TestProcess, http_get, http_post_as, kafka_config, read_topic, run_interop,
    test_data,
};

const HEADER: &str = "Index,Date,Open,High,Low,Close,Adj Close,Volume,CloseUSD";

#[test]
fn the_real_slice_replays_once_per_pass() -> Result<()> {
    let tansu = Tansu::start()?;
    let ingest = Ingest::new(&tansu, "slice")?;
    let data = test_data();
    let data = data.to_str().context("utf-8 path")?;
    let first = ingest.replay(&["--file", data], 0)?;
    assert_eq!(number(&first, "produced"), SLICE_ROWS, "{first}");
    assert_eq!(number(&first, "dead_lettered"), 0, "{first}");
    let again = ingest.replay(&["--file", data], 0)?;
    assert_eq!(number(&again, "produced"), 0, "{again}");
    assert_eq!(
        number(&again, "skipped_already_replayed"),
        SLICE_ROWS,
        "{again}"
    );
    let fresh = ingest.replay(&["--file", data, "--from-start"], 0)?;
    assert_eq!(number(&fresh, "produced"), SLICE_ROWS, "{fresh}");
    assert_eq!(number(&fresh, "pass"), 2, "{fresh}");
    assert_eq!(ingest.count(&ingest.quotes())?, 2 * SLICE_ROWS);
    Ok(())
}

/// Every kind of mess a real file has, with the verdict for each line.
fn messy_csv() -> Vec<u8> {
    let mut content = b"\xef\xbb\xbf".to_vec();
    let lines = [
        HEADER,                                                             // 1
        "HSI,1987-01-02,2540.1,2540.1,2540.1,2540.1,2540.1,0,330.21",       // 2 ok (int volume)
        "",                                                                 // 3 blank: not a row
        "HSI,05.01.1987,2552.4,2552.4,2552.4,2552.4,2552.4,0.0,331.8",      // 4 ok (DD.MM.YYYY)
        ",,,,,,,,",                                                         // 5 empty row
        "HSI,1987-01-06,x2568.3,2568.3,2568.3,2568.3,2568.3,0,333.88",      // 6 bad price
        "HSI,07-Jan-1987,2568.3,2570.0,2560.0,2568.3,2568.3,1200.0,333.88", // 7 ok (DD-Mon-YYYY)
        "HSI,1987-01-08,2568.3,2560.0,2570.0,2568.3,2568.3,0,333.88",       // 8 high < low
        "HSI,01/09/1987,2568.3,2570.0,2560.0,2568.3,2568.3,0,333.88",       // 9 ambiguous date
        "HSI,1987/01/12,2568.3,2570.0,2560.0,2568.3,2568.3,0,333.88",       // 10 ok (YYYY/MM/DD)
        "HSI,1987-01-13,2568.3,2570.0", // 11 truncated last line
    ];
    content.extend_from_slice(lines.join("\r\n").as_bytes());
    content
}

#[test]
fn a_messy_file_yields_the_right_counts_and_dead_letters() -> Result<()> {
    let tansu = Tansu::start()?;
    let dir = tempfile::tempdir()?;
    let file = write(dir.path(), "messy.csv", &messy_csv())?;
    let file = file.to_str().context("utf-8 path")?;

    // A dry run validates without producing.
    let ingest = Ingest::new(&tansu, "messy")?;
    let dry = ingest.replay(&["--file", file, "--dry-run"], 0)?;
    assert_eq!(
        (
            number(&dry, "rows_read"),
            number(&dry, "produced"),
            number(&dry, "dead_lettered"),
            number(&dry, "skipped_empty")
        ),
        (9, 4, 4, 1),
        "{dry}"
    );

    let summary = ingest.replay(&["--file", file], 0)?;
    assert_eq!(number(&summary, "produced"), 4, "{summary}");
    assert_eq!(number(&summary, "dead_lettered"), 4, "{summary}");
    assert_eq!(number(&summary, "skipped_empty"), 1, "{summary}");

    let quotes = read_topic(&ingest.bootstrap, &ingest.quotes())?;
    let mut days: Vec<String> = quotes
        .iter()
        .filter_map(|record| {
            let value: serde_json::Value = serde_json::from_str(record.value.as_deref()?).ok()?;
            Some(value["trade_date"].as_str()?.to_string())
        })
        .collect();
    days.sort();
    assert_eq!(
        days,
        ["1987-01-02", "1987-01-05", "1987-01-07", "1987-01-12"]
    );

    let mut letters = read_topic(&ingest.bootstrap, &ingest.dlq())?;
    letters.sort_by_key(|record| record.number("stockstream-source-line"));
    let verdicts: Vec<(u64, String)> = letters
        .iter()
        .map(|record| {
            (
                record.number("stockstream-source-line").unwrap_or(0),
                record
                    .headers
                    .get("stockstream-error")
                    .cloned()
                    .unwrap_or_default(),
            )
        })
        .collect();
    let expected = [
        (6, "Open"),
        (8, "below low"),
        (9, "unambiguous"),
        (11, "truncated last line"),
    ];
    assert_eq!(verdicts.len(), 4, "{verdicts:?}");
    for (line, reason) in expected {
        assert!(
            verdicts
                .iter()
                .any(|(found, why)| *found == line && why.contains(reason)),
            "no dead letter for line {line} ({reason}): {verdicts:?}"
        );
    }
    for letter in &letters {
        assert_eq!(
            letter
                .headers
                .get("stockstream-source-file")
                .map(String::as_str),
            Some(file)
        );
        assert!(
            letter
                .value
                .as_deref()
                .is_some_and(|raw| raw.starts_with("HSI,"))
        );
    }

    // --max-bad-rows stops a replay that exceeds it, with a clear message and status 3.
    let strict = Ingest::new(&tansu, "strict")?;
    let stopped = strict.replay(&["--file", file, "--max-bad-rows", "1"], 3)?;
    let reason = stopped["stopped"].as_str().unwrap_or_default();
    assert!(reason.contains("exceed --max-bad-rows 1"), "{stopped}");
    assert_eq!(number(&stopped, "dead_lettered"), 2, "{stopped}");
    Ok(())
}

#[test]
fn sigkill_mid_replay_keeps_every_row_exactly_once() -> Result<()> {
    let tansu = Tansu::start()?;
    let ingest = Ingest::new(&tansu, "crash")?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("generated.csv");
    let generated = ingest.run(&[
        "generate",
        "--output",
        file.to_str().context("utf-8 path")?,
        "--symbols",
        "AAA,BBB,CCC,DDD",
        "--days",
        "20000",
        "--start",
        "1990-01-01",
        "--seed",
        "11",
    ])?;
    ensure!(generated.status.success(), "generate failed: {generated:?}");
    let file = file.to_str().context("utf-8 path")?;

    // Kill at moments spread over the replay; each run must have made progress first.
    let mut kills = 0;
    let mut previous_count = 0;
    for attempt in 0..8u64 {
        let mut child = TestProcess::spawn(
            "ingest replay",
            ingest
                .command(&["replay", "--file", file])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )?;
        let jitter = (std::process::id() as u64 * 7919 + attempt * 104_729) % 700;
        std::thread::sleep(Duration::from_millis(900 + jitter));
        if child.try_wait()?.is_some() {
            break;
        }
        child.kill()?; // SIGKILL
        kills += 1;
        // As a supervisor's restart delay would: the next run starts once the log is quiet.
        let count = ingest.count_when_quiet(&ingest.quotes())?;
        ensure!(
            count >= previous_count,
            "the topic shrank from {previous_count} to {count}"
        );
        previous_count = count;
        if kills == 5 {
            break;
        }
    }
    ensure!(kills >= 3, "the replay finished before 3 kills ({kills})");
    let last = ingest.replay(&["--file", file], 0)?;
    assert!(
        number(&last, "produced") + number(&last, "skipped_already_replayed") == 80_000,
        "{last}"
    );
    assert_eq!(ingest.count(&ingest.quotes())?, 80_000);
    // The independent reader checks each (symbol, trade_date) once, with the CSV's values.
    let report = run_interop(
        "check_topic.py",
        &[&ingest.bootstrap, &ingest.quotes(), file],
    )?;
    assert!(report.contains("read 80000 records"), "{report}");
    assert!(report.contains("0 problems"), "{report}");
    Ok(())
}

#[test]
fn ordered_mode_merges_indices_by_trade_date_at_the_given_speed() -> Result<()> {
    let tansu = Tansu::start()?;
    let ingest = Ingest::new(&tansu, "ordered")?;
    let dir = tempfile::tempdir()?;
    // Index A's rows first, then B's: a file in the shape of indexProcessed.csv.
    let mut text = format!("{HEADER}\n");
    for symbol in ["AAA", "BBB"] {
        for day in 1..=20 {
            text.push_str(&format!(
                "{symbol},2001-03-{day:02},10,11,9,10.5,10.5,100,1.5\n"
            ));
        }
    }
    let file = write(dir.path(), "two.csv", text.as_bytes())?;
    let file = file.to_str().context("utf-8 path")?;
    let summary = ingest.replay(&["--file", file, "--mode", "ordered", "--speed", "40"], 0)?;
    assert_eq!(number(&summary, "produced"), 40, "{summary}");
    // 20 trading days at 40 days/s: the first goes at once, the last after 19/40 s.
    let elapsed = summary["elapsed_seconds"].as_f64().unwrap_or(0.0);
    assert!(elapsed >= 0.45, "paced replay took only {elapsed}s");

    let mut records = read_topic(&ingest.bootstrap, &ingest.quotes())?;
    assert_eq!(records.len(), 40);
    records.sort_by_key(|record| record.position());
    let days: Vec<String> = records
        .iter()
        .map(|record| {
            let value: serde_json::Value =
                serde_json::from_str(record.value.as_deref().unwrap_or("{}")).unwrap_or_default();
            format!(
                "{} {}",
                value["trade_date"].as_str().unwrap_or(""),
                value["symbol"].as_str().unwrap_or("")
            )
        })
        .collect();
    let mut sorted = days.clone();
    sorted.sort();
    assert_eq!(days, sorted, "records went out in trade-date order");
    assert!(
        days[0].ends_with("AAA") && days[1].ends_with("BBB"),
        "{days:?}"
    );

    // A finished ordered replay resumes to nothing.
    let again = ingest.replay(&["--file", file, "--mode", "ordered"], 0)?;
    assert_eq!(number(&again, "produced"), 0, "{again}");
    Ok(())
}

#[test]
fn sample_mode_sends_seeded_random_rows_and_loop_repeats_passes() -> Result<()> {
    let tansu = Tansu::start()?;
    let data = test_data();
    let data = data.to_str().context("utf-8 path")?;
    let mut picks = Vec::new();
    for run in ["sample-a", "sample-b"] {
        let ingest = Ingest::new(&tansu, run)?;
        let summary = ingest.replay(
            &[
                "--file",
                data,
                "--mode",
                "sample",
                "--interval",
                "50ms",
                "--count",
                "6",
                "--seed",
                "7",
            ],
            0,
        )?;
        assert_eq!(number(&summary, "produced"), 6, "{summary}");
        let mut records = read_topic(&ingest.bootstrap, &ingest.quotes())?;
        assert_eq!(records.len(), 6);
        records.sort_by_key(|record| record.position());
        picks.push(
            records
                .iter()
                .map(|record| record.number("stockstream-source-line"))
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(picks[0], picks[1], "the same seed picks the same rows");
    assert!(
        picks[0].iter().any(|line| *line != picks[0][0]),
        "{:?}",
        picks[0]
    );

    // --loop: a 3-row file at 30 rows/s, stopped by SIGTERM after more than one pass.
    let dir = tempfile::tempdir()?;
    let text = format!(
        "{HEADER}\nX,2001-03-01,10,11,9,10.5,10.5,100,1.5\nX,2001-03-02,10,11,9,10.5,10.5,100,1.5\nX,2001-03-05,10,11,9,10.5,10.5,100,1.5\n"
    );
    let file = write(dir.path(), "three.csv", text.as_bytes())?;
    let ingest = Ingest::new(&tansu, "loop")?;
    let child = TestProcess::spawn(
        "ingest replay --loop",
        ingest
            .command(&[
                "replay",
                "--json",
                "--file",
                file.to_str().context("utf-8 path")?,
                "--loop",
                "--rate",
                "30",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )?;
    let started = Instant::now();
    while ingest.count(&ingest.quotes())? < 7 {
        ensure!(started.elapsed() < Duration::from_secs(60), "no third pass");
        std::thread::sleep(Duration::from_millis(200));
    }
    child.signal("TERM")?;
    let output = child.wait_with_output()?;
    assert_eq!(output.status.code(), Some(130), "{output:?}");
    let records = read_topic(&ingest.bootstrap, &ingest.quotes())?;
    let passes: std::collections::BTreeSet<u64> = records
        .iter()
        .filter_map(|record| record.number("stockstream-source-pass"))
        .collect();
    assert!(passes.len() >= 3, "{passes:?}");
    Ok(())
}

#[test]
fn the_generator_streams_the_same_quotes_it_writes() -> Result<()> {
    let tansu = Tansu::start()?;
    let ingest = Ingest::new(&tansu, "generator")?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("g.csv");
    let common = ["--symbols", "AAA,BBB,CCC", "--days", "50", "--seed", "9"];
    let mut to_file = vec!["generate", "--output", file.to_str().context("utf-8 path")?];
    to_file.extend_from_slice(&common);
    ensure!(ingest.run(&to_file)?.status.success());
    let mut to_kafka = vec!["generate", "--rate", "500"];
    to_kafka.extend_from_slice(&common);
    let streamed = ingest.run(&to_kafka)?;
    ensure!(streamed.status.success(), "{streamed:?}");
    let report = run_interop(
        "check_topic.py",
        &[
            &ingest.bootstrap,
            &ingest.quotes(),
            file.to_str().context("utf-8 path")?,
        ],
    )?;
    assert!(report.contains("read 150 records"), "{report}");
    assert!(report.contains("0 problems"), "{report}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_push_answers_after_kafka_acknowledges() -> Result<()> {
    let tansu = Tansu::start()?;
    let mut config = stockstream_ingest::Config::load(None)?;
    config.kafka = kafka_config(&tansu.bootstrap, "push");
    config.http.listen = "127.0.0.1:0".parse()?;
    config.ingest.max_body_bytes = 4096;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (address, service) = stockstream_ingest::serve::start(config, shutdown.clone()).await?;

    let ndjson = concat!(
        r#"{"symbol":"HSI","trade_date":"2010-01-04","open":1.0,"high":2.0,"low":1.0,"close":1.5,"adj_close":1.5,"volume":3,"close_usd":0.2}"#,
        "\n",
        r#"{"Index": "N225", "Date": "2010-01-04", "Open": 1.0, "High": 2.0, "Low": 1.0, "Close": 1.5, "Adj Close": 1.5, "Volume": 3.0, "CloseUSD": 0.2}"#,
        "\n"
    );
    let (status, body) =
        http_post_as(address, "/v1/quotes", "application/x-ndjson", ndjson).await?;
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(answer["accepted"], 2, "{body}");

    let csv = format!("{HEADER}\r\nGDAXI,2010-01-05,1,2,1,1.5,1.5,3,0.2\r\n");
    let (status, body) = http_post_as(address, "/v1/quotes", "text/csv", &csv).await?;
    assert_eq!(status, 200, "{body}");

    // A malformed record: nothing of the request is produced, each bad line is named.
    let bad = concat!(
        r#"{"symbol":"HSI","trade_date":"2010-01-06","open":1.0,"high":2.0,"low":1.0,"close":1.5,"adj_close":1.5,"volume":3,"close_usd":0.2}"#,
        "\n{\"symbol\": \n",
        r#"{"symbol":"HSI","trade_date":"2010-01-07","open":1.0,"high":0.5,"low":1.0,"close":1.5,"adj_close":1.5,"volume":3,"close_usd":0.2}"#,
        "\n"
    );
    let (status, body) = http_post_as(address, "/v1/quotes", "application/x-ndjson", bad).await?;
    assert_eq!(status, 422, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(answer["accepted"], 0);
    let lines: Vec<u64> = answer["errors"]
        .as_array()
        .context("errors")?
        .iter()
        .filter_map(|error| error["line"].as_u64())
        .collect();
    assert_eq!(lines, [2, 3], "{body}");

    // Over the body limit, a wrong content type, an empty body.
    let big = "x".repeat(10_000);
    let (status, _) = http_post_as(address, "/v1/quotes", "application/x-ndjson", &big).await?;
    assert_eq!(status, 413);
    let (status, body) = http_post_as(address, "/v1/quotes", "text/plain", "hello").await?;
    assert_eq!(status, 415, "{body}");
    let (status, _) = http_post_as(address, "/v1/quotes", "text/csv", "").await?;
    assert_eq!(status, 400);

    let (status, metrics) = http_get(address, "/metrics").await?;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("stockstream_ingest_records_produced_total"),
        "{metrics}"
    );
    assert!(metrics.contains("stockstream_ingest_produce_latency_seconds"));
    let ready = Instant::now();
    loop {
        let (status, body) = http_get(address, "/health/readyz").await?;
        if status == 200 {
            break;
        }
        if ready.elapsed() > Duration::from_secs(30) {
            bail!("never ready: {body}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    shutdown.cancel();
    service.await??;
    let bootstrap = tansu.bootstrap.clone();
    let records =
        tokio::task::spawn_blocking(move || read_topic(&bootstrap, "push.quotes")).await??;
    let mut keys: Vec<String> = records
        .iter()
        .filter_map(|record| record.key.clone())
        .collect();
    keys.sort();
    assert_eq!(keys, ["GDAXI", "HSI", "N225"]);
    let bootstrap = tansu.bootstrap.clone();
    let letters =
        tokio::task::spawn_blocking(move || read_topic(&bootstrap, "push.quotes.dlq")).await??;
    assert_eq!(letters.len(), 2, "the two bad records are dead-lettered");
    Ok(())
}
