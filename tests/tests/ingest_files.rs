//! End-to-end tests of the files people actually have (issue 13), against a real tansu broker,
//! with confluent-kafka (`tests/interop/`) as the independent reader: day-first and month-first
//! rewrites of the real slice, a Yahoo Finance export with `null` rows, a `;`-delimited
//! decimal-comma file, gzip and zstd files, a directory of three files, SIGKILL in the middle of
//! a directory, and objects on S3 (moto).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use stockstream_e2e::files::{
    SliceRow, dead_letters, european, expected_pairs, gzip, index_processed, path_text, quotes_on,
    slice, yahoo, yahoo_with_gaps,
};
use stockstream_e2e::ingest::{Ingest, number, write};
use stockstream_e2e::{Moto, SLICE_ROWS, Tansu, TestProcess, read_topic, run_interop, test_data};

#[test]
fn day_first_and_month_first_rewrites_of_the_slice_replay_every_row() -> Result<()> {
    let tansu = Tansu::start()?;
    let rows = slice()?;
    let dir = tempfile::tempdir()?;
    for (name, pattern, date) in [
        (
            "dmy",
            "%d/%m/%Y",
            (|row: &SliceRow| format!("{}/{}/{}", row.day, row.month, row.year))
                as fn(&SliceRow) -> String,
        ),
        ("mdy", "%m/%d/%Y", |row: &SliceRow| {
            format!("{}/{}/{}", row.month, row.day, row.year)
        }),
    ] {
        let file = write(
            dir.path(),
            &format!("{name}.csv"),
            index_processed(&rows, date).as_bytes(),
        )?;
        let file = path_text(&file)?;
        let ingest = Ingest::new(&tansu, name)?;

        // The dry run names what it inferred, per file, before anything is sent.
        let dry = ingest.run(&["replay", "--dry-run", file])?;
        let report = String::from_utf8_lossy(&dry.stdout);
        ensure!(
            dry.status.success(),
            "{report}\n{}",
            String::from_utf8_lossy(&dry.stderr)
        );
        assert!(
            report.contains(&format!("date format: {pattern} (inferred")),
            "{report}"
        );
        assert!(report.contains("delimiter: , (sniffed)"), "{report}");
        assert!(
            report.contains(&format!("{SLICE_ROWS} read, {SLICE_ROWS} good, 0 bad")),
            "{report}"
        );
        assert_eq!(
            ingest.count(&ingest.quotes())?,
            0,
            "a dry run sends nothing"
        );

        let summary = ingest.replay(&[file], 0)?;
        assert_eq!(
            summary["files"][0]["format"]["date_format"], pattern,
            "{summary}"
        );
        assert_eq!(
            (
                number(&summary, "produced"),
                number(&summary, "dead_lettered")
            ),
            (SLICE_ROWS, 0),
            "{summary}"
        );
        assert_eq!(
            quotes_on(&ingest)?.pairs,
            expected_pairs(&rows),
            "{name}: every row once, with its date"
        );
    }

    // A file whose numeric dates all read both ways is refused, saying how to replay it.
    let early: Vec<SliceRow> = rows
        .iter()
        .filter(|row| row.day.parse::<u32>().is_ok_and(|day| day <= 12))
        .take(400)
        .cloned()
        .collect();
    let file = write(
        dir.path(),
        "unsettled.csv",
        index_processed(&early, |row| {
            format!("{}/{}/{}", row.day, row.month, row.year)
        })
        .as_bytes(),
    )?;
    let file = path_text(&file)?;
    let ingest = Ingest::new(&tansu, "unsettled")?;
    let refused = ingest.run(&["replay", file])?;
    let message = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{message}");
    assert!(
        message.contains("--date-format %d/%m/%Y (day first"),
        "{message}"
    );
    assert!(
        message.contains("--date-format %m/%d/%Y (month first"),
        "{message}"
    );
    assert_eq!(ingest.count(&ingest.quotes())?, 0, "nothing was sent");
    let given = ingest.replay(&[file, "--date-format", "%d/%m/%Y"], 0)?;
    assert_eq!(number(&given, "produced"), 400, "{given}");
    assert_eq!(quotes_on(&ingest)?.pairs, expected_pairs(&early));
    Ok(())
}

#[test]
fn a_yahoo_export_with_null_rows_lands_every_good_row_once() -> Result<()> {
    let tansu = Tansu::start()?;
    let rows = slice()?;
    let dir = tempfile::tempdir()?;
    let (text, good, bad) = yahoo_with_gaps(&rows, 300);
    assert_eq!(bad.len(), 5);
    let file = write(dir.path(), "^HSI.csv", text.as_bytes())?;
    let file = path_text(&file)?;

    let ingest = Ingest::new(&tansu, "yahoo")?;
    let summary = ingest.replay(&[file], 0)?;
    assert_eq!(
        (
            number(&summary, "produced"),
            number(&summary, "dead_lettered")
        ),
        (298, 5),
        "{summary}"
    );
    let format = &summary["files"][0]["format"];
    assert_eq!(format["symbol"], "^HSI (the file name)", "{summary}");
    assert!(
        format["close_usd"]
            .as_str()
            .unwrap_or("")
            .starts_with("null"),
        "{summary}"
    );
    let found = quotes_on(&ingest)?;
    assert_eq!(found.pairs, expected_pairs(&good));
    assert!(
        found.keys.iter().all(|key| key == "^HSI"),
        "{:?}",
        found.keys
    );
    assert!(
        found
            .values
            .iter()
            .all(|value| value["close_usd"].is_null())
    );
    let letters = dead_letters(&ingest, file)?;
    assert_eq!(letters.len(), 5, "{letters:?}");
    for ((line, reason), (expected_line, expected_reason)) in letters.iter().zip(&bad) {
        assert_eq!(line, expected_line, "{letters:?}");
        assert!(reason.contains(expected_reason), "line {line}: {reason}");
    }
    // Again: nothing is sent twice.
    let again = ingest.replay(&[file], 0)?;
    assert_eq!(number(&again, "produced"), 0, "{again}");
    assert_eq!(ingest.count(&ingest.quotes())?, 298);

    // With a symbol and an exchange rate given, close_usd is Close × rate.
    let priced = Ingest::new(&tansu, "yahoo-usd")?;
    let summary = priced.replay(&[file, "--symbol", "HSI", "--usd-rate", "0.128"], 0)?;
    assert_eq!(number(&summary, "produced"), 298, "{summary}");
    let found = quotes_on(&priced)?;
    assert!(
        found.keys.iter().all(|key| key == "HSI"),
        "{:?}",
        found.keys
    );
    for value in &found.values {
        let close = value["close"].as_f64().context("close")?;
        assert_eq!(value["close_usd"].as_f64(), Some(close * 0.128), "{value}");
    }
    Ok(())
}

#[test]
fn semicolons_with_decimal_commas_and_gzip_files_land_every_good_row_once() -> Result<()> {
    let tansu = Tansu::start()?;
    let rows = slice()?;
    let dir = tempfile::tempdir()?;

    // `;`-delimited, decimal commas, DD.MM.YYYY; line 9 has a decimal point instead.
    let mut text = european(&rows[..500]);
    let damaged = text.lines().nth(8).context("line 9")?.to_string();
    let (head, tail) = damaged.split_at(damaged.find(';').context("a field")? + 12);
    let broken = format!("{head}{}", tail.replacen(',', ".", 1));
    text = text.replacen(&damaged, &broken, 1);
    let file = write(dir.path(), "hsi-eu.csv", text.as_bytes())?;
    let file = path_text(&file)?;
    let ingest = Ingest::new(&tansu, "semicolon")?;
    let summary = ingest.replay(&[file], 0)?;
    assert_eq!(
        (
            number(&summary, "produced"),
            number(&summary, "dead_lettered")
        ),
        (499, 1),
        "{summary}"
    );
    let format = &summary["files"][0]["format"];
    assert_eq!(
        (format["delimiter"].as_str(), format["decimal"].as_str()),
        (Some(";"), Some("comma"))
    );
    assert_eq!(format["date_format"], "%d.%m.%Y");
    let mut good = rows[..500].to_vec();
    good.remove(7);
    assert_eq!(quotes_on(&ingest)?.pairs, expected_pairs(&good));
    let letters = dead_letters(&ingest, file)?;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].0, 9);
    assert!(
        letters[0].1.contains("decimal separator is `,`"),
        "{letters:?}"
    );

    // The whole slice gzip-compressed, with a bad row at the end.
    let mut text = std::fs::read_to_string(test_data())?;
    text.push_str("\nHSI,2010-06-01,abc,1,1,1,1,0,1\n");
    let file = write(dir.path(), "slice.csv.gz", &gzip(&text)?)?;
    let file = path_text(&file)?;
    let ingest = Ingest::new(&tansu, "gzip")?;
    let summary = ingest.replay(&[file], 0)?;
    assert_eq!(
        (
            number(&summary, "produced"),
            number(&summary, "dead_lettered")
        ),
        (SLICE_ROWS, 1),
        "{summary}"
    );
    assert_eq!(summary["files"][0]["format"]["compression"], "gzip");
    let data = test_data();
    let report = run_interop(
        "check_topic.py",
        &[&ingest.bootstrap, &ingest.quotes(), path_text(&data)?],
    )?;
    assert!(
        report.contains(&format!("read {SLICE_ROWS} records")),
        "{report}"
    );
    assert!(report.contains("0 problems"), "{report}");
    let letters = dead_letters(&ingest, file)?;
    assert!(
        letters.len() == 1 && letters[0].1.contains("Open"),
        "{letters:?}"
    );
    Ok(())
}

/// Three files of different shapes and compressions holding the slice, one bad row each, and a
/// file that is not data.
fn three_files(dir: &Path, rows: &[SliceRow]) -> Result<()> {
    let mut plain = index_processed(&rows[..2000], SliceRow::date);
    plain.push_str("HSI,1994-13-01,1,1,1,1,1,0,1\n");
    write(dir, "a-hsi.csv", plain.as_bytes())?;
    let mut yahoo_text = yahoo(&rows[2000..4000]);
    yahoo_text.push_str("2002-12-25,null,null,null,null,null,null\n");
    write(dir, "HSI.csv.gz", &gzip(&yahoo_text)?)?;
    let mut eu = european(&rows[4000..]);
    eu.push_str("HSI;02.01.2011;1;2;3;1;1;0;1\n");
    write(
        dir,
        "c-hsi.csv.zst",
        &zstd::stream::encode_all(eu.as_bytes(), 3)?,
    )?;
    write(dir, "README.md", b"not data")?;
    Ok(())
}

#[test]
fn a_directory_of_three_files_lands_every_good_row_once() -> Result<()> {
    let tansu = Tansu::start()?;
    let rows = slice()?;
    let dir = tempfile::tempdir()?;
    three_files(dir.path(), &rows)?;
    let directory = path_text(dir.path())?;
    let ingest = Ingest::new(&tansu, "directory")?;

    let dry = ingest.run(&["replay", "--dry-run", directory])?;
    let report = String::from_utf8_lossy(&dry.stdout);
    ensure!(dry.status.success(), "{report}");
    for expected in [
        "a-hsi.csv\n",
        "HSI.csv.gz\n",
        "c-hsi.csv.zst\n",
        "compression: gzip",
        "compression: zstd",
        "delimiter: ; (sniffed); decimal separator: , (sniffed)",
        "symbol: HSI (the file name)",
        "2001 read, 2000 good, 1 bad",
    ] {
        assert!(report.contains(expected), "no `{expected}` in:\n{report}");
    }
    assert!(!report.contains("README"), "{report}");

    let summary = ingest.replay(&[directory], 0)?;
    assert_eq!(
        (
            number(&summary, "produced"),
            number(&summary, "dead_lettered")
        ),
        (SLICE_ROWS, 3),
        "{summary}"
    );
    let files = summary["files"].as_array().context("files")?;
    assert_eq!(files.len(), 3);
    let data = test_data();
    let report = run_interop(
        "check_topic.py",
        &[&ingest.bootstrap, &ingest.quotes(), path_text(&data)?],
    )?;
    assert!(
        report.contains(&format!("read {SLICE_ROWS} records")),
        "{report}"
    );
    assert!(report.contains("0 problems"), "{report}");
    let letters = read_topic(&ingest.bootstrap, &ingest.dlq())?;
    let mut reasons: Vec<String> = letters
        .iter()
        .map(|letter| {
            letter
                .headers
                .get("stockstream-error")
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    reasons.sort();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|reason| reason.contains("valid calendar date")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|reason| reason.contains("no prices")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|reason| reason.contains("below low")),
        "{reasons:?}"
    );

    // Each file resumes on its own: nothing is sent again.
    let again = ingest.replay(&[directory], 0)?;
    assert_eq!(number(&again, "produced"), 0, "{again}");
    assert_eq!(number(&again, "skipped_already_replayed"), 5696, "{again}");
    Ok(())
}

#[test]
fn sigkill_mid_directory_sends_nothing_twice() -> Result<()> {
    let tansu = Tansu::start()?;
    let ingest = Ingest::new(&tansu, "crash-dir")?;
    let dir = tempfile::tempdir()?;
    let files = dir.path().join("files");
    std::fs::create_dir(&files)?;
    // Three files of 20,000 rows; together they take several seconds on tansu.
    let mut expected = String::new();
    for (index, symbol) in ["AAA", "BBB", "CCC"].iter().enumerate() {
        let file = files.join(format!("{symbol}.csv"));
        let generated = ingest.run(&[
            "generate",
            "--output",
            path_text(&file)?,
            "--symbols",
            symbol,
            "--days",
            "20000",
            "--start",
            "1900-01-01",
            "--seed",
            &index.to_string(),
        ])?;
        ensure!(generated.status.success(), "generate failed: {generated:?}");
        let text = std::fs::read_to_string(&file)?;
        if expected.is_empty() {
            expected.push_str(text.lines().next().context("header")?);
            expected.push('\n');
        }
        for line in text.lines().skip(1) {
            expected.push_str(line);
            expected.push('\n');
        }
    }
    let all = write(dir.path(), "expected.csv", expected.as_bytes())?;
    let directory = path_text(&files)?;

    let mut kills = 0;
    let mut previous_count = 0;
    for attempt in 0..8u64 {
        let mut child = TestProcess::spawn(
            "ingest replay",
            ingest
                .command(&["replay", directory])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )?;
        let jitter = (std::process::id() as u64 * 7919 + attempt * 104_729) % 600;
        std::thread::sleep(Duration::from_millis(1200 + jitter));
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
        if kills == 3 {
            break;
        }
    }
    ensure!(kills >= 2, "the replay finished before 2 kills ({kills})");
    ensure!(previous_count < 60_000, "the kills came after the end");
    let last = ingest.replay(&[directory], 0)?;
    assert_eq!(
        number(&last, "produced") + number(&last, "skipped_already_replayed"),
        60_000,
        "{last}"
    );
    assert_eq!(ingest.count(&ingest.quotes())?, 60_000);
    let report = run_interop(
        "check_topic.py",
        &[&ingest.bootstrap, &ingest.quotes(), path_text(&all)?],
    )?;
    assert!(report.contains("read 60000 records"), "{report}");
    assert!(report.contains("0 problems"), "{report}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_on_s3_land_every_good_row_once() -> Result<()> {
    let moto = Moto::start()?;
    let tansu = Tansu::start()?;
    let rows = slice()?;
    let sdk = moto.aws().sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket("exports").send().await?;
    let (yahoo_text, good, _) = yahoo_with_gaps(&rows, 300);
    let slice_text = std::fs::read_to_string(test_data())?;
    let objects: BTreeMap<&str, Vec<u8>> = BTreeMap::from([
        (
            "raw/hsi.csv.gz",
            gzip(&format!("{slice_text}\nHSI,2010-06-01,1,1,1,1,1,-5,1\n"))?,
        ),
        ("raw/N225.csv", yahoo_text.into_bytes()),
        ("raw/notes.md", b"not data".to_vec()),
        ("other/ignored.csv", b"x".to_vec()),
    ]);
    for (key, body) in &objects {
        s3.put_object()
            .bucket("exports")
            .key(*key)
            .body(body.clone().into())
            .send()
            .await?;
    }
    let ingest = Ingest::new(&tansu, "s3")?
        .with_env("STOCKSTREAM__LAKE__ENDPOINT", &moto.endpoint)
        .with_env("STOCKSTREAM__LAKE__REGION", "us-east-1")
        .with_env("STOCKSTREAM__LAKE__FORCE_PATH_STYLE", "true");
    let run = tokio::task::spawn_blocking(move || -> Result<Ingest> {
        let summary = ingest.replay(&["s3://exports/raw/"], 0)?;
        assert_eq!(
            (
                number(&summary, "produced"),
                number(&summary, "dead_lettered")
            ),
            (SLICE_ROWS + 298, 1 + 5),
            "{summary}"
        );
        let names: Vec<&str> = summary["files"]
            .as_array()
            .context("files")?
            .iter()
            .filter_map(|file| file["file"].as_str())
            .collect();
        assert_eq!(
            names,
            ["s3://exports/raw/N225.csv", "s3://exports/raw/hsi.csv.gz"]
        );
        // One object again: already replayed.
        let again = ingest.replay(&["s3://exports/raw/hsi.csv.gz"], 0)?;
        assert_eq!(number(&again, "produced"), 0, "{again}");
        assert_eq!(number(&again, "skipped_already_replayed"), 5694, "{again}");
        Ok(ingest)
    });
    let ingest = run.await??;
    let read = tokio::task::spawn_blocking(move || -> Result<_> {
        let found = quotes_on(&ingest)?;
        let letters = read_topic(&ingest.bootstrap, &ingest.dlq())?;
        Ok((found.pairs, found.keys, letters))
    });
    let (pairs, keys, letters) = read.await??;
    let mut expected = expected_pairs(&rows);
    expected.extend(expected_pairs(&good));
    expected.sort();
    assert_eq!(pairs, expected, "every good row of both objects once");
    assert_eq!(keys.iter().filter(|key| *key == "N225").count(), 298);
    assert_eq!(letters.len(), 6);
    assert!(
        letters.iter().any(|letter| {
            letter
                .headers
                .get("stockstream-source-file")
                .map(String::as_str)
                == Some("s3://exports/raw/hsi.csv.gz")
                && letter
                    .headers
                    .get("stockstream-error")
                    .is_some_and(|reason| reason.contains("volume"))
        }),
        "{letters:?}"
    );
    Ok(())
}
