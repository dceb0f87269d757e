//! End to end on real parts: a tansu broker, ingest, the sink, the catalog service and the query
//! API, checked against values computed independently from the CSV and by independent readers
//! (DuckDB for the lake, confluent-kafka for the topic).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;
use stockstream_common::kafka::{ensure_topics, pipeline_topics};
use stockstream_common::lake::{LakeStore, PartitionTemplate};
use stockstream_e2e::stack::*;
use stockstream_e2e::{
    SLICE_ROWS, Tansu, csv_facts, http_get, kafka_config, query, run_interop, test_data,
};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_real_slice_flows_from_csv_to_sql_exactly_once() -> Result<()> {
    let csv = test_data();
    let facts = csv_facts(&csv)?;
    assert_eq!(
        facts.rows, SLICE_ROWS,
        "the real slice has {SLICE_ROWS} rows"
    );
    let broker = Tansu::start()?;
    let kafka = kafka_config(&broker.bootstrap, "e2e");
    let work = tempfile::tempdir()?;
    let lake = work.path().join("lake");
    let ingest = ingest_config(&kafka, &work.path().join("ingest"))?;
    ensure_topics(&kafka, &pipeline_topics(&kafka)).await?;

    // Replay: every row once; a second replay of the same content sends nothing.
    let first = replay(&ingest, &csv, false).await?;
    assert_eq!(
        (first.produced, first.dead_lettered),
        (SLICE_ROWS, 0),
        "{first}"
    );
    let again = replay(&ingest, &csv, false).await?;
    assert_eq!(
        (again.produced, again.skipped_already_replayed),
        (0, SLICE_ROWS),
        "{again}"
    );

    let mut services = start_services(&kafka, &lake).await?;
    let api = services.api;
    wait_for_count(
        &mut services,
        "SELECT count(*) AS n FROM quotes WHERE symbol = 'HSI'",
        SLICE_ROWS,
        Duration::from_secs(120),
    )
    .await?;

    // The market-data endpoints and parameterized SQL answer what the CSV says, in JSON and CSV.
    stockstream_e2e::answers::check_market_answers(api, &csv).await?;
    stockstream_e2e::answers::check_guard_corpus(api).await?;

    // Answers match values computed from the CSV without stockstream's parser.
    let answer = query(api, "SELECT max(close) AS m FROM quotes WHERE symbol = 'HSI' AND EXTRACT(YEAR FROM trade_date) = 1987").await?;
    let max_1987 = scalar(&answer)?.as_f64().context("max is a number")?;
    assert!(
        (max_1987 - 3949.7).abs() < 1e-3,
        "max close 1987 = {max_1987}"
    );
    assert_eq!(max_1987, facts.max_close_per_year[&1987]);
    let per_year = query(
        api,
        "SELECT year, count(*) AS n, max(close) AS m FROM quotes GROUP BY year ORDER BY year",
    )
    .await?;
    let rows = per_year["rows"].as_array().context("rows")?;
    assert_eq!(rows.len(), facts.rows_per_year.len());
    for row in rows {
        let year = row[0].as_i64().context("year")? as i32;
        assert_eq!(
            row[1].as_u64(),
            Some(facts.rows_per_year[&year]),
            "rows in {year}"
        );
        assert_eq!(
            row[2].as_f64(),
            Some(facts.max_close_per_year[&year]),
            "max close in {year}"
        );
    }
    let volume = query(api, "SELECT sum(volume) FROM quotes").await?;
    assert_eq!(scalar(&volume)?.as_i64(), Some(facts.volume_sum));
    let types = query(
        api,
        "SELECT trade_date, volume, close, symbol, kafka_offset, ingested_at FROM quotes LIMIT 1",
    )
    .await?;
    let type_names: Vec<&str> = types["columns"]
        .as_array()
        .context("columns")?
        .iter()
        .filter_map(|c| c["type"].as_str())
        .collect();
    assert_eq!(
        type_names,
        [
            "date",
            "bigint",
            "double",
            "varchar",
            "bigint",
            "timestamp with time zone"
        ]
    );
    // Partition pruning: one year's partition reads a small part of the lake.
    let all = query(api, "SELECT sum(close) FROM quotes").await?;
    let one = query(api, "SELECT sum(close) FROM quotes WHERE year = 1987").await?;
    let (all_bytes, one_bytes) = (
        all["stats"]["bytes_scanned"].as_u64().unwrap_or(0),
        one["stats"]["bytes_scanned"].as_u64().unwrap_or(0),
    );
    assert!(
        one_bytes * 5 < all_bytes,
        "pruned scan read {one_bytes} of {all_bytes} bytes"
    );

    // Errors are clear and typed.
    let (status, body) =
        stockstream_e2e::http_post(api, "/v1/query", r#"{"sql": "SELECT nope FROM quotes"}"#)
            .await?;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid_query"), "{body}");
    let (status, body) =
        stockstream_e2e::http_post(api, "/v1/query", r#"{"sql": "DROP TABLE quotes"}"#).await?;
    assert_eq!(status, 400, "{body}");
    let (status, _) = stockstream_e2e::http_post(api, "/v1/query", "not json").await?;
    assert_eq!(status, 400);
    assert_eq!(http_get(api, "/health/livez").await?.0, 200);
    assert_eq!(http_get(api, "/health/readyz").await?.0, 200);
    let (status, metrics) = http_get(api, "/metrics").await?;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("stockstream_query_requests_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("stockstream_sink_records_written_total"),
        "{metrics}"
    );

    // The catalog lists the table, its columns and one partition per folder; a crawl of the lake
    // rebuilds the same catalog.
    let deadline = Instant::now() + Duration::from_secs(60);
    let table = loop {
        let (status, body) = http_get(api, "/v1/tables/quotes").await?;
        assert_eq!(status, 200, "{body}");
        let table: Value = serde_json::from_str(&body)?;
        if table["partitions"] == facts.rows_per_year.len() || Instant::now() > deadline {
            break table;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        table["partition_keys"],
        serde_json::json!([{"name": "symbol", "type": "string"}, {"name": "year", "type": "int"}])
    );
    assert_eq!(table["partitions"], facts.rows_per_year.len());
    assert_eq!(
        table["partition_list"].as_array().map(Vec::len),
        Some(facts.rows_per_year.len())
    );
    let (status, tables) = http_get(api, "/v1/tables").await?;
    assert_eq!(status, 200);
    let tables: Value = serde_json::from_str(&tables)?;
    assert_eq!(tables["database"], "stockstream");
    assert_eq!(tables["tables"][0]["name"], "quotes");
    assert_eq!(tables["tables"][0]["files"], table["files"]);
    let store = stockstream_common::lake::LocalStore::new(&lake)?;
    let current = stockstream_common::catalog::Catalog::load(&store)
        .await?
        .context("catalog saved")?;
    let (crawled, report) =
        stockstream_glue_crawler::crawl(&store, "stockstream", Some(&current)).await?;
    assert_eq!(
        crawled, current,
        "crawl rebuilds the event-built catalog: {report:?}"
    );
    assert!(report.inconsistencies.is_empty(), "{report:?}");

    // Restart the sink in the same group: it resumes where the lake says; nothing is written twice.
    stop_sink(&mut services).await?;
    let sink_token = CancellationToken::new();
    services.sink = Some((
        sink_token.clone(),
        tokio::spawn(stockstream_s3_sink::run(
            sink_config(&kafka, &lake)?,
            sink_token,
        )),
    ));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let distinct = query(
        api,
        "SELECT count(*), count(DISTINCT kafka_offset) FROM quotes",
    )
    .await?;
    assert_eq!(
        distinct["rows"][0],
        serde_json::json!([SLICE_ROWS, SLICE_ROWS])
    );

    // --from-start sends every row again (a new copy on the topic, by request); the restarted
    // sink writes it.
    let forced = replay(&ingest, &csv, true).await?;
    assert_eq!(forced.produced, SLICE_ROWS, "{forced}");
    wait_for_count(
        &mut services,
        "SELECT count(*) FROM quotes",
        2 * SLICE_ROWS,
        Duration::from_secs(120),
    )
    .await?;
    // Each flush supersedes the previous intent of its partition, which is deleted once the flush
    // finished (just after its files became queryable): one is left.
    let intents_prefix = format!("_stockstream/sink/{}/", kafka.topics.quotes);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut intents = store.list(&intents_prefix).await?;
    while intents.len() != 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        intents = store.list(&intents_prefix).await?;
    }
    assert_eq!(intents.len(), 1, "{intents:?}");

    // Restart as a new consumer group, whose committed offsets say "start at 0": the sink must
    // resume from the lake's own record of what it holds.
    stop_sink(&mut services).await?;
    let mut fresh_group = sink_config(&kafka, &lake)?;
    fresh_group.sink.group_id = format!("{}-sink-second", kafka.client_id);
    let skipped_before = skipped_records(api).await?;
    let sink_token = CancellationToken::new();
    services.sink = Some((
        sink_token.clone(),
        tokio::spawn(stockstream_s3_sink::run(fresh_group, sink_token)),
    ));
    // Wait until the new sink has consumed and jumped over what the lake holds, then give it
    // time to (wrongly) flush anything.
    let deadline = Instant::now() + Duration::from_secs(90);
    while skipped_records(api).await? < skipped_before + 2 * SLICE_ROWS {
        services.check_running().await?;
        assert!(
            Instant::now() < deadline,
            "the fresh-group sink never skipped the lake's records"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    services.check_running().await?;
    let distinct = query(
        api,
        "SELECT count(*), count(DISTINCT kafka_offset) FROM quotes",
    )
    .await?;
    assert_eq!(
        distinct["rows"][0],
        serde_json::json!([2 * SLICE_ROWS, 2 * SLICE_ROWS])
    );

    stop(services).await?;
    Ok(())
}

/// `sink.partition_template = "date={yyyy-mm-dd}"` (the tick-stream layout): one directory per
/// trading day, the symbol kept in the files, the same answers from SQL and DuckDB; and a lake keeps
/// the layout it was created with.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_daily_partition_layout_holds_and_answers_the_same_data() -> Result<()> {
    let csv = test_data();
    let facts = csv_facts(&csv)?;
    let (_broker, kafka, work) = replayed_slice("daily", &csv).await?;
    let lake = work.path().join("lake");
    let daily: PartitionTemplate = "date={yyyy-mm-dd}".parse().map_err(anyhow::Error::msg)?;
    let mut services = start_services_with(&kafka, &lake, daily).await?;
    let api = services.api;
    wait_for_count(
        &mut services,
        "SELECT count(*) FROM quotes WHERE symbol = 'HSI'",
        SLICE_ROWS,
        Duration::from_secs(180),
    )
    .await?;

    // One partition per trading day, pruned by a date predicate, with the CSV's values.
    let days = query(api, "SELECT count(DISTINCT date) FROM quotes").await?;
    assert_eq!(scalar(&days)?.as_u64(), Some(SLICE_ROWS));
    let per_year = query(
        api,
        "SELECT CAST(substr(date, 1, 4) AS INT) AS year, count(*), max(close) FROM quotes GROUP BY 1 ORDER BY 1",
    )
    .await?;
    for row in per_year["rows"].as_array().context("rows")? {
        let year = row[0].as_i64().context("year")? as i32;
        assert_eq!(row[1].as_u64(), Some(facts.rows_per_year[&year]), "{year}");
        assert_eq!(
            row[2].as_f64(),
            Some(facts.max_close_per_year[&year]),
            "{year}"
        );
    }
    let one_day = query(
        api,
        "SELECT symbol, trade_date, date FROM quotes WHERE date = '1987-01-02'",
    )
    .await?;
    assert_eq!(
        one_day["rows"],
        serde_json::json!([["HSI", "1987-01-02", "1987-01-02"]])
    );
    stop(services).await?;

    let store = stockstream_common::lake::LocalStore::new(&lake)?;
    let keys: Vec<String> = store
        .list("quotes/")
        .await?
        .into_iter()
        .map(|object| object.key)
        .collect();
    assert!(
        keys.iter().all(|key| key.starts_with("quotes/date=")
            && key.contains(&format!("/{}+", kafka.topics.quotes))),
        "{:?}",
        &keys[..3.min(keys.len())]
    );
    let report = run_interop(
        "check_lake.py",
        &[
            lake.to_str().context("utf-8 path")?,
            csv.to_str().context("utf-8 path")?,
        ],
    )?;
    assert!(
        report.contains(&format!("{SLICE_ROWS} rows read by DuckDB")),
        "{report}"
    );

    // The same lake with the default layout: the sink refuses to mix layouts.
    let refused = stockstream_s3_sink::run(sink_config(&kafka, &lake)?, CancellationToken::new())
        .await
        .expect_err("another layout must be refused")
        .to_string();
    assert!(
        refused.contains("date={yyyy-mm-dd}") && refused.contains("symbol={symbol}/year={year}"),
        "{refused}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn independent_readers_see_every_record_once() -> Result<()> {
    let csv = test_data();
    let (broker, kafka, work) = replayed_slice("interop", &csv).await?;
    let lake = work.path().join("lake");
    let mut services = start_services(&kafka, &lake).await?;
    wait_for_count(
        &mut services,
        "SELECT count(*) FROM quotes",
        SLICE_ROWS,
        Duration::from_secs(120),
    )
    .await?;
    stop(services).await?;

    let csv_arg = csv.to_str().context("utf-8 path")?;
    let topic_report = run_interop(
        "check_topic.py",
        &[&broker.bootstrap, &kafka.topics.quotes, csv_arg],
    )?;
    assert!(
        topic_report.contains(&format!("read {SLICE_ROWS} records")),
        "{topic_report}"
    );
    let lake_report = run_interop(
        "check_lake.py",
        &[lake.to_str().context("utf-8 path")?, csv_arg],
    )?;
    assert!(
        lake_report.contains(&format!("{SLICE_ROWS} rows read by DuckDB")),
        "{lake_report}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_rows_and_bad_messages_are_dead_lettered_with_their_origin() -> Result<()> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

    let broker = Tansu::start()?;
    let kafka = kafka_config(&broker.bootstrap, "dlq");
    let work = tempfile::tempdir()?;
    let lake = work.path().join("lake");
    ensure_topics(&kafka, &pipeline_topics(&kafka)).await?;
    let file = work.path().join("bad.csv");
    std::fs::write(
        &file,
        "Index,Date,Open,High,Low,Close,Adj Close,Volume,CloseUSD\n\
         HSI,1990-01-02,10,12,9,11,11,100.0,1.4\n\
         HSI,1990-01-03,10,8,9,11,11,100.0,1.4\n\
         HSI,1990-01-04,abc,12,9,11,11,100.0,1.4\n\
         ,,,,,,,,\n\
         HSI,1990-01-05,10,12,9,11,11,100.0,1.4\n",
    )?;
    let summary = replay(
        &ingest_config(&kafka, &work.path().join("ingest"))?,
        &file,
        false,
    )
    .await?;
    assert_eq!(
        (
            summary.produced,
            summary.dead_lettered,
            summary.skipped_empty
        ),
        (2, 2, 1),
        "{summary}"
    );

    // A message that is not a quote, straight onto the topic.
    let producer: ThreadedProducer<DefaultProducerContext> =
        stockstream_common::kafka::client_config(&kafka, "test").create()?;
    producer
        .send(
            BaseRecord::<str, str>::to(&kafka.topics.quotes)
                .key("HSI")
                .payload("{not json"),
        )
        .map_err(|(error, _)| error)?;
    // The original tutorial's producer: the CSV's column names, floats, no key, no headers.
    producer
        .send(BaseRecord::<str, str>::to(&kafka.topics.quotes).payload(
            r#"{"Index": "N225", "Date": "1990-01-08", "Open": 10.5, "High": 12.0, "Low": 9.0, "Close": 11.0, "Adj Close": 11.0, "Volume": 100.0, "CloseUSD": 0.08}"#,
        ))
        .map_err(|(error, _)| error)?;
    producer.flush(Duration::from_secs(10))?;

    let mut services = start_services(&kafka, &lake).await?;
    wait_for_count(
        &mut services,
        "SELECT count(*) FROM quotes",
        3,
        Duration::from_secs(120),
    )
    .await?;
    let tutorial = query(
        services.api,
        "SELECT open, volume, close_usd FROM quotes WHERE symbol = 'N225'",
    )
    .await?;
    assert_eq!(
        tutorial["rows"],
        serde_json::json!([[10.5, 100, 0.08]]),
        "{tutorial}"
    );
    stop(services).await?;

    let consumer: BaseConsumer =
        stockstream_common::kafka::consumer_config(&kafka, "dlq-reader", "dlq-reader", &[])
            .create()?;
    consumer.subscribe(&[kafka.topics.dlq.as_str()])?;
    let mut letters = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while letters.len() < 3 && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(500)) {
            let message = message?;
            let headers: std::collections::BTreeMap<String, String> = message
                .headers()
                .map(|headers| {
                    headers
                        .iter()
                        .map(|h| {
                            (
                                h.key.to_string(),
                                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            letters.push((
                headers,
                String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned(),
            ));
        }
    }
    assert_eq!(letters.len(), 3, "{letters:?}");
    let from_ingest: Vec<_> = letters
        .iter()
        .filter(|(h, _)| h.get("stockstream-stage").map(String::as_str) == Some("ingest"))
        .collect();
    assert_eq!(from_ingest.len(), 2);
    assert_eq!(from_ingest[0].0["stockstream-source-line"], "3");
    assert!(
        from_ingest[0].0["stockstream-error"].contains("below low"),
        "{from_ingest:?}"
    );
    assert_eq!(from_ingest[0].1, "HSI,1990-01-03,10,8,9,11,11,100.0,1.4");
    assert_eq!(from_ingest[1].0["stockstream-source-line"], "4");
    assert!(
        from_ingest[1].0["stockstream-error"].contains("Open"),
        "{from_ingest:?}"
    );
    let from_sink: Vec<_> = letters
        .iter()
        .filter(|(h, _)| h.get("stockstream-stage").map(String::as_str) == Some("s3-sink"))
        .collect();
    assert_eq!(from_sink.len(), 1);
    assert_eq!(from_sink[0].1, "{not json");
    assert_eq!(
        from_sink[0].0["stockstream-source-topic"],
        kafka.topics.quotes
    );
    assert!(from_sink[0].0.contains_key("stockstream-source-offset"));
    Ok(())
}
