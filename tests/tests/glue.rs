//! The AWS mode of the catalog service against moto server (S3 + Glue): each strategy, idempotent
//! events, a schema change, a crawl that is already running, `sync`, and the whole pipeline with
//! the lake on S3.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use arrow::array::StringArray;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use chrono::{NaiveDate, Utc};
use stockstream_common::catalog::{columns_of, schema_fingerprint};
use stockstream_common::config::LakeConfig;
use stockstream_common::events::{LAKE_COMMIT_VERSION, LakeCommitEvent};
use stockstream_common::lake::{
    LakeStore, PartitionTemplate, PartitionValue, QUOTES_TABLE, open_store,
};
use stockstream_e2e::{
    Moto, SLICE_ROWS, Tansu, commit_quotes_file, http_post, kafka_config, test_data,
};
use stockstream_glue_crawler::{GlueCatalog, GlueSettings, Strategy};
use tokio_util::sync::CancellationToken;

const DATABASE: &str = "stockstream_test";

/// A bucket on moto and the lake in it.
async fn lake_on_moto(moto: &Moto) -> Result<(LakeConfig, Arc<dyn LakeStore>)> {
    let lake = moto
        .lake("market-lake", "stockstream", Duration::from_secs(10))
        .await?;
    let store = open_store(&lake).await?;
    Ok((lake, store))
}

fn settings(moto: &Moto, strategy: Strategy) -> GlueSettings {
    GlueSettings {
        strategy,
        aws: moto.aws(),
        crawler_name: "stockstream-test-crawler".into(),
        crawler_role: "arn:aws:iam::123456789012:role/stockstream-glue".into(),
        crawler_debounce: Duration::ZERO,
    }
}

fn glue_client(sdk: &aws_config::SdkConfig) -> aws_sdk_glue::Client {
    aws_sdk_glue::Client::new(sdk)
}

/// Writes a quotes file for `symbol`/`year` (default layout) and returns its commit event.
async fn quotes_file(
    store: &dyn LakeStore,
    symbol: &str,
    year: i32,
    offset: i64,
) -> Result<LakeCommitEvent> {
    let day = NaiveDate::from_ymd_opt(year, 3, 2).context("date")?;
    commit_quotes_file(store, &PartitionTemplate::default(), symbol, day, offset).await
}

async fn event_for(
    store: &dyn LakeStore,
    symbol: &str,
    year: i32,
    offset: i64,
    bytes: bytes::Bytes,
    fingerprint: String,
) -> Result<LakeCommitEvent> {
    let key = format!(
        "{QUOTES_TABLE}/symbol={symbol}/year={year}/quotes+0+{offset:020}+{offset:020}.parquet"
    );
    let size = bytes.len() as u64;
    store.put(&key, bytes).await?;
    let day = NaiveDate::from_ymd_opt(year, 3, 2).context("date")?;
    Ok(LakeCommitEvent {
        version: LAKE_COMMIT_VERSION,
        table: QUOTES_TABLE.into(),
        table_location: format!("{QUOTES_TABLE}/"),
        object_key: key,
        partition_keys: PartitionTemplate::default().partition_keys(),
        partition: vec![
            PartitionValue {
                name: "symbol".into(),
                value: symbol.into(),
            },
            PartitionValue {
                name: "year".into(),
                value: year.to_string(),
            },
        ],
        row_count: 1,
        size_bytes: size,
        min_trade_date: day,
        max_trade_date: day,
        schema_fingerprint: fingerprint,
        source_topic: "quotes".into(),
        source_partition: 0,
        first_offset: offset,
        last_offset: offset,
        committed_at: Utc::now(),
    })
}

/// A file with one more column (`exchange`): a schema change.
async fn wider_file(store: &dyn LakeStore, offset: i64) -> Result<LakeCommitEvent> {
    let scratch = tempfile::tempdir()?;
    let local = stockstream_common::lake::LocalStore::new(scratch.path())?;
    let event = quotes_file(&local, "HSI", 1989, offset).await?;
    let bytes = local.get(&event.object_key).await?;
    let batch = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)?
        .build()?
        .next()
        .context("a row")??;
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|field| field.as_ref().clone())
        .collect();
    fields.push(Field::new("exchange", DataType::Utf8, true));
    let schema = Arc::new(Schema::new(fields));
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(StringArray::from(vec!["HKEX"])));
    let wider = RecordBatch::try_new(schema.clone(), columns)?;
    let mut bytes = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut bytes, schema.clone(), None)?;
    writer.write(&wider)?;
    writer.close()?;
    let fingerprint = schema_fingerprint(&columns_of(&schema)?);
    event_for(store, "HSI", 1989, offset, bytes.into(), fingerprint).await
}

async fn table(
    glue: &aws_sdk_glue::Client,
) -> Result<aws_sdk_glue::operation::get_table::GetTableOutput> {
    Ok(glue
        .get_table()
        .database_name(DATABASE)
        .name(QUOTES_TABLE)
        .send()
        .await?)
}

/// The table's parameters (where the projection lives).
async fn table_parameters(glue: &aws_sdk_glue::Client) -> Result<BTreeMap<String, String>> {
    Ok(table(glue)
        .await?
        .table()
        .and_then(|table| table.parameters())
        .map(|parameters| parameters.clone().into_iter().collect())
        .unwrap_or_default())
}

/// (name, type) of a table's data columns.
fn column_types(descriptor: &aws_sdk_glue::types::StorageDescriptor) -> Vec<(String, String)> {
    descriptor
        .columns()
        .iter()
        .map(|column| {
            (
                column.name().to_string(),
                column.r#type().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

async fn partitions(glue: &aws_sdk_glue::Client) -> Result<Vec<(Vec<String>, String)>> {
    let answer = glue
        .get_partitions()
        .database_name(DATABASE)
        .table_name(QUOTES_TABLE)
        .send()
        .await?;
    let mut found: Vec<(Vec<String>, String)> = answer
        .partitions()
        .iter()
        .map(|partition| {
            (
                partition.values().to_vec(),
                partition
                    .storage_descriptor()
                    .and_then(|descriptor| descriptor.location())
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    found.sort();
    Ok(found)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_strategy_registers_each_partition_once() -> Result<()> {
    let moto = Moto::start()?;
    let (_lake, store) = lake_on_moto(&moto).await?;
    let glue = glue_client(&moto.aws().sdk_config().await);
    let mut catalog = GlueCatalog::connect(
        settings(&moto, Strategy::Partitions),
        DATABASE,
        store.clone(),
    )
    .await?;
    let first = quotes_file(store.as_ref(), "HSI", 1987, 0).await?;
    let second = quotes_file(store.as_ref(), "HSI", 1988, 1).await?;

    let outcome = catalog.apply(&[first.clone(), second.clone()]).await?;
    assert_eq!(
        (
            outcome.databases_created,
            outcome.tables_created,
            outcome.partitions_registered
        ),
        (1, 1, 2),
        "{outcome:?}"
    );
    let definition = table(&glue).await?;
    let definition = definition.table().context("table")?;
    let descriptor = definition.storage_descriptor().context("descriptor")?;
    assert_eq!(
        descriptor.location(),
        Some("s3://market-lake/stockstream/quotes/")
    );
    assert_eq!(
        descriptor
            .serde_info()
            .and_then(|serde| serde.serialization_library()),
        Some("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe")
    );
    let columns = column_types(descriptor);
    assert!(
        columns.contains(&("trade_date".into(), "date".into())),
        "{columns:?}"
    );
    assert!(
        columns.contains(&("volume".into(), "bigint".into())),
        "{columns:?}"
    );
    assert!(
        columns.contains(&("close".into(), "double".into())),
        "{columns:?}"
    );
    let keys: Vec<(&str, Option<&str>)> = definition
        .partition_keys()
        .iter()
        .map(|key| (key.name(), key.r#type()))
        .collect();
    assert_eq!(keys, [("symbol", Some("string")), ("year", Some("int"))]);
    assert_eq!(
        partitions(&glue).await?,
        [
            (
                vec!["HSI".to_string(), "1987".to_string()],
                "s3://market-lake/stockstream/quotes/symbol=HSI/year=1987/".to_string()
            ),
            (
                vec!["HSI".to_string(), "1988".to_string()],
                "s3://market-lake/stockstream/quotes/symbol=HSI/year=1988/".to_string()
            ),
        ]
    );

    // The same event again — in this process, and in a restarted one — registers nothing.
    let again = catalog.apply(std::slice::from_ref(&first)).await?;
    assert_eq!(
        again.partitions_registered + again.tables_created + again.tables_updated,
        0
    );
    // An event naming a file that is not in the lake registers nothing: the error names the
    // key, so the service sets the event aside (tests/tests/catalog_poison.rs).
    let missing = quotes_file(store.as_ref(), "HSI", 2099, 9).await?;
    store.delete(&missing.object_key).await?;
    match catalog.apply(std::slice::from_ref(&missing)).await {
        Err(stockstream_glue_crawler::Error::Common(stockstream_common::Error::NotFound {
            key,
        })) => assert_eq!(key, missing.object_key),
        other => panic!("a missing file was not reported as missing: {other:?}"),
    }
    assert_eq!(partitions(&glue).await?.len(), 2);
    let mut restarted = GlueCatalog::connect(
        settings(&moto, Strategy::Partitions),
        DATABASE,
        store.clone(),
    )
    .await?;
    let replayed = restarted.apply(&[first, second]).await?;
    assert_eq!(
        replayed.partitions_registered + replayed.tables_created + replayed.tables_updated,
        0,
        "{replayed:?}"
    );

    // A schema change updates the table once, however many events carry it.
    let wider = wider_file(store.as_ref(), 2).await?;
    let changed = restarted.apply(&[wider.clone(), wider.clone()]).await?;
    assert_eq!(changed.tables_updated, 1, "{changed:?}");
    assert_eq!(changed.partitions_registered, 1, "{changed:?}");
    let unchanged = restarted.apply(std::slice::from_ref(&wider)).await?;
    assert_eq!(unchanged.tables_updated, 0, "{unchanged:?}");
    let definition = table(&glue).await?;
    let names: Vec<String> = definition
        .table()
        .and_then(|table| table.storage_descriptor())
        .map(|descriptor| {
            descriptor
                .columns()
                .iter()
                .map(|column| column.name().to_string())
                .collect()
        })
        .unwrap_or_default();
    assert!(names.contains(&"exchange".to_string()), "{names:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projection_strategy_registers_no_partition() -> Result<()> {
    let moto = Moto::start()?;
    let (_lake, store) = lake_on_moto(&moto).await?;
    let glue = glue_client(&moto.aws().sdk_config().await);
    let mut catalog = GlueCatalog::connect(
        settings(&moto, Strategy::Projection),
        DATABASE,
        store.clone(),
    )
    .await?;
    let events = [
        quotes_file(store.as_ref(), "HSI", 1987, 0).await?,
        quotes_file(store.as_ref(), "N225", 1988, 1).await?,
    ];
    let outcome = catalog.apply(&events).await?;
    assert_eq!(
        (outcome.tables_created, outcome.partitions_registered),
        (1, 0)
    );
    let parameters = table_parameters(&glue).await?;
    assert_eq!(parameters["projection.enabled"], "true");
    assert_eq!(parameters["projection.symbol.type"], "enum");
    assert_eq!(parameters["projection.symbol.values"], "HSI,N225");
    assert_eq!(parameters["projection.year.type"], "integer");
    assert_eq!(parameters["projection.year.range"], "1987,1988");
    assert_eq!(
        parameters["storage.location.template"],
        "s3://market-lake/stockstream/quotes/symbol=${symbol}/year=${year}/"
    );
    assert!(partitions(&glue).await?.is_empty());

    // A value outside the projection widens it once; the same event again changes nothing.
    let later = quotes_file(store.as_ref(), "HSI", 1991, 2).await?;
    let widened = catalog.apply(std::slice::from_ref(&later)).await?;
    assert_eq!(widened.tables_updated, 1, "{widened:?}");
    let again = catalog.apply(std::slice::from_ref(&later)).await?;
    assert_eq!(again.tables_updated, 0, "{again:?}");
    let definition = table(&glue).await?;
    let range = definition
        .table()
        .and_then(|table| table.parameters())
        .and_then(|parameters| parameters.get("projection.year.range").cloned());
    assert_eq!(range.as_deref(), Some("1987,1991"));
    assert!(partitions(&glue).await?.is_empty());
    Ok(())
}

/// Drives the crawler until it is idle; returns the starts and waits seen.
async fn drive_until_idle(catalog: &mut GlueCatalog) -> Result<(u64, u64)> {
    let (mut starts, mut waits) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while catalog.crawler_busy() {
        ensure!(Instant::now() < deadline, "the crawler never became idle");
        let outcome = catalog.drive_crawler().await?;
        starts += outcome.crawler_starts;
        waits += outcome.crawler_waits;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((starts, waits))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawler_strategy_debounces_and_waits_for_a_running_crawl() -> Result<()> {
    let moto = Moto::start()?;
    // Keep each crawl RUNNING for 2 s (a real one takes minutes).
    let (status, body) = http_post(
        moto.address,
        "/moto-api/state-manager/set-transition",
        r#"{"model_name": "glue::crawl", "transition": {"progression": "time", "seconds": 2}}"#,
    )
    .await?;
    ensure!(
        status == 201 || status == 200,
        "moto state manager: {status} {body}"
    );
    let (_lake, store) = lake_on_moto(&moto).await?;
    let glue = glue_client(&moto.aws().sdk_config().await);
    let mut catalog =
        GlueCatalog::connect(settings(&moto, Strategy::Crawler), DATABASE, store.clone()).await?;

    let first = quotes_file(store.as_ref(), "HSI", 1987, 0).await?;
    let outcome = catalog.apply(std::slice::from_ref(&first)).await?;
    assert_eq!(outcome.crawler_starts, 1, "{outcome:?}");
    let crawler = glue
        .get_crawler()
        .name("stockstream-test-crawler")
        .send()
        .await?;
    let targets: Vec<String> = crawler
        .crawler()
        .and_then(|crawler| crawler.targets())
        .map(|targets| {
            targets
                .s3_targets()
                .iter()
                .filter_map(|target| target.path().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(targets, ["s3://market-lake/stockstream/quotes/"]);

    // New data while our crawl runs: one more crawl once it finishes, and only one.
    let second = quotes_file(store.as_ref(), "HSI", 1988, 1).await?;
    let third = quotes_file(store.as_ref(), "HSI", 1989, 2).await?;
    let during_second = catalog.apply(std::slice::from_ref(&second)).await?;
    let during_third = catalog.apply(std::slice::from_ref(&third)).await?;
    let (starts, waits) = drive_until_idle(&mut catalog).await?;
    assert_eq!(
        (
            starts + during_second.crawler_starts + during_third.crawler_starts,
            waits + during_second.crawler_waits + during_third.crawler_waits
        ),
        (1, 0)
    );
    assert!(catalog.last_crawl_status().is_some());

    // Known data: nothing to crawl.
    let outcome = catalog.apply(std::slice::from_ref(&first)).await?;
    assert_eq!(
        outcome.crawler_starts + outcome.crawler_waits,
        0,
        "{outcome:?}"
    );

    // Someone else starts a crawl; our start gets CrawlerRunningException, waits for it, and
    // does not start again since no new data arrived meanwhile.
    let fourth = quotes_file(store.as_ref(), "N225", 1990, 3).await?;
    glue.start_crawler()
        .name("stockstream-test-crawler")
        .send()
        .await?;
    let outcome = catalog.apply(std::slice::from_ref(&fourth)).await?;
    assert_eq!(
        (outcome.crawler_starts, outcome.crawler_waits),
        (0, 1),
        "{outcome:?}"
    );
    let (starts, waits) = drive_until_idle(&mut catalog).await?;
    assert_eq!((starts, waits), (0, 0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_with_the_lake_on_s3_keeps_glue_current() -> Result<()> {
    let moto = Moto::start()?;
    let tansu = Tansu::start()?;
    let (lake, store) = lake_on_moto(&moto).await?;
    let kafka = kafka_config(&tansu.bootstrap, "glue");
    let work = tempfile::tempdir()?;

    let mut sink_config = stockstream_s3_sink::Config::load(None)?;
    sink_config.kafka = kafka.clone();
    sink_config.lake = lake.clone();
    sink_config.http.listen = "127.0.0.1:0".parse()?;
    sink_config.sink.group_id = "glue-sink".into();
    sink_config.sink.flush_interval = Duration::from_millis(500);
    let mut crawler_config = stockstream_glue_crawler::Config::load(None)?;
    crawler_config.kafka = kafka.clone();
    crawler_config.lake = lake.clone();
    crawler_config.http.listen = "127.0.0.1:0".parse()?;
    crawler_config.crawler.group_id = "glue-crawler".into();
    crawler_config.crawler.database = DATABASE.into();
    crawler_config.crawler.mode =
        stockstream_glue_crawler::CatalogMode::Glue(settings(&moto, Strategy::Partitions));

    let shutdown = CancellationToken::new();
    let sink = tokio::spawn(stockstream_s3_sink::run(sink_config, shutdown.clone()));
    let crawler = tokio::spawn(stockstream_glue_crawler::run(
        crawler_config.clone(),
        shutdown.clone(),
    ));
    let mut ingest_config = stockstream_ingest::Config::load(None)?;
    ingest_config.kafka = kafka.clone();
    ingest_config.ingest.state_dir = work.path().join("ingest");
    let options = stockstream_ingest::ReplayOptions::new(test_data());
    let summary = tokio::task::spawn_blocking(move || {
        stockstream_ingest::replay(&ingest_config, &options, &CancellationToken::new())
    })
    .await??;
    assert_eq!(summary.produced, SLICE_ROWS);

    // 25 symbol/year folders of the real slice (1986-2010) appear as Glue partitions.
    let glue = glue_client(&moto.aws().sdk_config().await);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let found = match glue
            .get_partitions()
            .database_name(DATABASE)
            .table_name(QUOTES_TABLE)
            .send()
            .await
        {
            Ok(answer) => answer.partitions().len(),
            Err(_) => 0,
        };
        if found == 25 {
            break;
        }
        if sink.is_finished() || crawler.is_finished() {
            bail!("a service stopped: sink {:?}", sink.is_finished());
        }
        ensure!(
            Instant::now() < deadline,
            "Glue has {found} of 25 partitions"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Every row is in the S3 lake once.
    let objects = store.list(&format!("{QUOTES_TABLE}/")).await?;
    let mut rows = 0;
    for object in objects
        .iter()
        .filter(|object| object.key.ends_with(".parquet"))
    {
        let bytes = store.get(&object.key).await?;
        let reader = parquet::file::serialized_reader::SerializedFileReader::new(bytes)?;
        use parquet::file::reader::FileReader;
        rows += reader.metadata().file_metadata().num_rows();
    }
    assert_eq!(u64::try_from(rows)?, SLICE_ROWS);

    // The embedded engine over the S3 lake, with the tables and partitions of Glue, answers what
    // the local stack answers (the same checks against the CSV).
    let mut api = stockstream_query_api::Config::load(None)?;
    api.kafka = kafka.clone();
    api.lake = lake.clone();
    api.http.listen = "127.0.0.1:0".parse()?;
    api.query.catalog = stockstream_query_api::CatalogKind::Glue;
    api.query.glue = moto.aws();
    api.query.database = DATABASE.into();
    let api = stockstream_query_api::start(api, shutdown.clone()).await?;
    stockstream_e2e::answers::check_market_answers(api.address, &test_data()).await?;
    let (status, tables) = stockstream_e2e::http_get(api.address, "/v1/tables/quotes").await?;
    assert_eq!(status, 200, "{tables}");
    let tables: serde_json::Value = serde_json::from_str(&tables)?;
    assert_eq!(tables["partitions"], 25);
    assert!(
        tables["location"]
            .as_str()
            .is_some_and(|location| location.starts_with("s3://market-lake/stockstream/quotes")),
        "{tables}"
    );

    // `sync` finds Glue and the lake in agreement.
    let report = stockstream_glue_crawler::sync_glue(&crawler_config, true).await?;
    assert!(report.partitions_missing_in_glue.is_empty(), "{report:?}");
    assert!(report.partitions_missing_in_lake.is_empty(), "{report:?}");
    assert_eq!(report.tables, ["quotes"]);

    shutdown.cancel();
    sink.await??;
    crawler.await??;
    Ok(())
}

/// `sink.partition_template = "date={yyyy-mm-dd}"` reaches Glue with its own key and types: the
/// `date` partition key, `symbol` as a data column, day partitions, and a date projection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_layout_reaches_glue_with_its_own_keys() -> Result<()> {
    let daily: PartitionTemplate = "date={yyyy-mm-dd}".parse().map_err(anyhow::Error::msg)?;
    let day = |d: u32| NaiveDate::from_ymd_opt(1987, 3, d).context("date");

    // Partitions strategy.
    let moto = Moto::start()?;
    let (_lake, store) = lake_on_moto(&moto).await?;
    let glue = glue_client(&moto.aws().sdk_config().await);
    let mut catalog = GlueCatalog::connect(
        settings(&moto, Strategy::Partitions),
        DATABASE,
        store.clone(),
    )
    .await?;
    let events = [
        commit_quotes_file(store.as_ref(), &daily, "HSI", day(2)?, 0).await?,
        commit_quotes_file(store.as_ref(), &daily, "N225", day(2)?, 1).await?,
        commit_quotes_file(store.as_ref(), &daily, "HSI", day(3)?, 2).await?,
    ];
    let outcome = catalog.apply(&events).await?;
    assert_eq!(outcome.partitions_registered, 2, "{outcome:?}");
    let definition = table(&glue).await?;
    let definition = definition.table().context("table")?;
    let keys: Vec<(&str, Option<&str>)> = definition
        .partition_keys()
        .iter()
        .map(|key| (key.name(), key.r#type()))
        .collect();
    assert_eq!(keys, [("date", Some("string"))]);
    let columns = column_types(definition.storage_descriptor().context("descriptor")?);
    assert_eq!(columns[0], ("symbol".to_string(), "string".to_string()));
    assert_eq!(
        partitions(&glue).await?,
        [
            (
                vec!["1987-03-02".to_string()],
                "s3://market-lake/stockstream/quotes/date=1987-03-02/".to_string()
            ),
            (
                vec!["1987-03-03".to_string()],
                "s3://market-lake/stockstream/quotes/date=1987-03-03/".to_string()
            ),
        ]
    );
    drop(moto);

    // Projection strategy: a date range, widened by a later day.
    let moto = Moto::start()?;
    let (_lake, store) = lake_on_moto(&moto).await?;
    let glue = glue_client(&moto.aws().sdk_config().await);
    let mut catalog = GlueCatalog::connect(
        settings(&moto, Strategy::Projection),
        DATABASE,
        store.clone(),
    )
    .await?;
    catalog
        .apply(&[
            commit_quotes_file(store.as_ref(), &daily, "HSI", day(2)?, 0).await?,
            commit_quotes_file(store.as_ref(), &daily, "HSI", day(3)?, 1).await?,
        ])
        .await?;
    let later = commit_quotes_file(store.as_ref(), &daily, "HSI", day(20)?, 2).await?;
    let widened = catalog.apply(std::slice::from_ref(&later)).await?;
    assert_eq!(widened.tables_updated, 1, "{widened:?}");
    let parameters = table_parameters(&glue).await?;
    assert_eq!(parameters["projection.date.type"], "date");
    assert_eq!(parameters["projection.date.format"], "yyyy-MM-dd");
    assert_eq!(parameters["projection.date.range"], "1987-03-02,1987-03-20");
    assert_eq!(parameters["projection.date.interval.unit"], "DAYS");
    assert_eq!(
        parameters["storage.location.template"],
        "s3://market-lake/stockstream/quotes/date=${date}/"
    );
    assert!(partitions(&glue).await?.is_empty());
    Ok(())
}
