//! Poison `lake.commits` events on real parts (tansu, the sink, the catalog service, the query
//! API): a message that is not an event, an event contradicting itself, a new table whose file
//! does not exist, and a new partition of `quotes` whose file does not exist are set aside on the
//! dead-letter topic with their reason and origin (read back by confluent-kafka), counted, and
//! kept out of the catalog, while the commits around them are applied as usual.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use rdkafka::producer::{FutureProducer, FutureRecord};
use stockstream_common::catalog::{CATALOG_KEY, Catalog};
use stockstream_common::kafka::{ensure_topics, pipeline_topics, producer_config};
use stockstream_common::lake::{LocalStore, PartitionTemplate};
use stockstream_common::record::Quote;
use stockstream_e2e::metrics::read_metric;
use stockstream_e2e::stack::{start_services, stop, wait_for_count};
use stockstream_e2e::{Tansu, commit_quotes_file, kafka_config, read_topic, sample_quote};

async fn send(producer: &FutureProducer, topic: &str, key: &str, payload: &[u8]) -> Result<()> {
    producer
        .send(
            FutureRecord::to(topic).key(key).payload(payload),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(error, _)| anyhow::anyhow!("produce failed: {error}"))?;
    Ok(())
}

fn quote(day: u64) -> Result<Quote> {
    let start = chrono::NaiveDate::from_ymd_opt(2001, 1, 1).context("date")?;
    Ok(sample_quote("PSN", start + chrono::Days::new(day)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_commit_events_are_set_aside_and_the_catalog_keeps_going() -> Result<()> {
    let broker = Tansu::start()?;
    let work = tempfile::tempdir()?;
    let lake = work.path().join("lake");
    let kafka = kafka_config(&broker.bootstrap, "catalog-poison");
    ensure_topics(&kafka, &pipeline_topics(&kafka)).await?;
    let producer: FutureProducer = producer_config(&kafka, "poison-test", &[]).create()?;
    let mut services = start_services(&kafka, &lake).await?;
    let quotes = kafka.topics.quotes.clone();
    let commits = kafka.topics.lake_commits.clone();

    for day in 0..5 {
        send(&producer, &quotes, "PSN", &quote(day)?.to_json()).await?;
    }
    let count = "SELECT count(*) FROM quotes";
    wait_for_count(&mut services, count, 5, Duration::from_secs(90)).await?;

    // Events as the sink writes them, for files written to a scratch store, not to the lake.
    // With the table's own fingerprint the catalog reads no footer for them: the missing file
    // of the new partition is found by the existence check.
    let scratch = tempfile::tempdir()?;
    let scratch = LocalStore::new(scratch.path())?;
    let template = PartitionTemplate::default();
    let day = |year| chrono::NaiveDate::from_ymd_opt(year, 1, 2).context("date");
    let missing_file = commit_quotes_file(&scratch, &template, "PSN", day(2099)?, 9).await?;
    let mut ghost = commit_quotes_file(&scratch, &template, "X", day(2098)?, 0).await?;
    ghost.table = "ghost".into();
    ghost.table_location = "ghost/".into();
    ghost.object_key = ghost.object_key.replacen("quotes/", "ghost/", 1);
    let mut inconsistent = commit_quotes_file(&scratch, &template, "PSN", day(2001)?, 1).await?;
    inconsistent.partition[1].value = "1999".into();
    let poison: Vec<(&str, Vec<u8>)> = vec![
        (
            "not an event",
            b"{\"this is\": \"not a lake commit\"}".to_vec(),
        ),
        (
            "file outside its partition",
            serde_json::to_vec(&inconsistent)?,
        ),
        ("new table, missing file", serde_json::to_vec(&ghost)?),
        (
            "new partition, missing file",
            serde_json::to_vec(&missing_file)?,
        ),
    ];
    for (label, payload) in &poison {
        send(&producer, &commits, label, payload).await?;
    }
    for day in 5..10 {
        send(&producer, &quotes, "PSN", &quote(day + 400)?.to_json()).await?;
    }
    // Commits after the poison are applied: the new year 2002 partition is queryable.
    wait_for_count(&mut services, count, 10, Duration::from_secs(90)).await?;

    let catalog = Catalog::load(&LocalStore::new(&lake)?)
        .await?
        .with_context(|| format!("no {CATALOG_KEY}"))?;
    let database = catalog.databases.values().next().context("a database")?;
    ensure!(
        !database.tables.contains_key("ghost"),
        "the table of a missing file was created"
    );
    let partitions: Vec<&String> = database.tables["quotes"].partitions.keys().collect();
    ensure!(
        partitions
            .iter()
            .all(|path| !path.contains("2099") && !path.contains("1999") && !path.contains("2098")),
        "a poison event reached the catalog: {partitions:?}"
    );

    let dead: Vec<_> = read_topic(&broker.bootstrap, &kafka.topics.dlq)?
        .into_iter()
        .filter(|record| {
            record.headers.get("stockstream-stage").map(String::as_str) == Some("glue-crawler")
        })
        .collect();
    let expected = [
        ("not an event", "not a lake commit event"),
        (
            "file outside its partition",
            "not in the directory of its partition values",
        ),
        ("new table, missing file", "ghost/symbol=X/year=2098"),
        ("new partition, missing file", "quotes/symbol=PSN/year=2099"),
    ];
    ensure!(
        dead.len() == expected.len(),
        "{} dead letters from the catalog service, expected {}: {dead:?}",
        dead.len(),
        expected.len()
    );
    for (label, reason) in expected {
        let record = dead
            .iter()
            .find(|record| record.key.as_deref() == Some(label))
            .with_context(|| format!("no dead letter for `{label}`: {dead:?}"))?;
        let error = record
            .headers
            .get("stockstream-error")
            .cloned()
            .unwrap_or_default();
        ensure!(error.contains(reason), "`{label}`: reason `{error}`");
        ensure!(
            record.headers.get("stockstream-source-topic") == Some(&commits)
                && record.number("stockstream-source-offset").is_some(),
            "`{label}`: no origin in {:?}",
            record.headers
        );
    }
    let dead_lettered = read_metric(
        services.crawler_url.trim_start_matches("http://").parse()?,
        "stockstream_catalog_events_dead_lettered_total",
    )
    .await?;
    ensure!(
        dead_lettered == 4.0,
        "metrics count {dead_lettered} dead letters, not 4"
    );
    println!(
        "catalog service: 4 poison events set aside with their reasons, 10 of 10 quotes queryable"
    );
    stop(services).await
}
