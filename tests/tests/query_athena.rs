//! The query API with the Athena engine against moto (Athena's SQL is not executed by moto:
//! results are canned through moto's API, and moto's state manager holds queries in
//! QUEUED/RUNNING). Checks the request Athena receives, polling, type mapping, asynchronous
//! queries, cancellation and the deadline (`StopQueryExecution`), the market-data endpoints, and
//! that every statement of the guard corpus is refused before it reaches Athena.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use aws_sdk_glue::types::{Column, DatabaseInput, SerDeInfo, StorageDescriptor, TableInput};
use serde_json::json;
use stockstream_e2e::Moto;
use stockstream_e2e::http::{http_call, http_get_as, http_post_json};
use tokio_util::sync::CancellationToken;

const DATABASE: &str = "stockstream_athena";
const WORKGROUP: &str = "stockstream";
const RESULTS: &str = "s3://athena-results/stockstream/";

/// Glue database and `quotes` table, the workgroup and the results bucket, on moto.
async fn athena_world(moto: &Moto) -> Result<()> {
    let sdk = moto.aws().sdk_config().await;
    let glue = aws_sdk_glue::Client::new(&sdk);
    glue.create_database()
        .database_input(DatabaseInput::builder().name(DATABASE).build()?)
        .send()
        .await?;
    let column =
        |name: &str, data_type: &str| Column::builder().name(name).r#type(data_type).build();
    let columns = [
        ("trade_date", "date"),
        ("open", "double"),
        ("high", "double"),
        ("low", "double"),
        ("close", "double"),
        ("adj_close", "double"),
        ("volume", "bigint"),
        ("close_usd", "double"),
    ]
    .into_iter()
    .map(|(name, data_type)| column(name, data_type))
    .collect::<std::result::Result<Vec<_>, _>>()?;
    glue.create_table()
        .database_name(DATABASE)
        .table_input(
            TableInput::builder()
                .name("quotes")
                .table_type("EXTERNAL_TABLE")
                .storage_descriptor(
                    StorageDescriptor::builder()
                        .set_columns(Some(columns))
                        .location("s3://market-lake/stockstream/quotes/")
                        .serde_info(
                            SerDeInfo::builder()
                                .serialization_library(
                                    "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                                )
                                .build(),
                        )
                        .build(),
                )
                .partition_keys(column("symbol", "string")?)
                .partition_keys(column("year", "int")?)
                .build()?,
        )
        .send()
        .await?;
    aws_sdk_athena::Client::new(&sdk)
        .create_work_group()
        .name(WORKGROUP)
        .send()
        .await?;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    )
    .create_bucket()
    .bucket("athena-results")
    .send()
    .await?;
    Ok(())
}

async fn start_api(
    moto: &Moto,
    shutdown: &CancellationToken,
    sync_wait: Duration,
) -> Result<SocketAddr> {
    let mut config = stockstream_query_api::Config::load(None)?;
    config.query.engine = stockstream_query_api::EngineKind::Athena;
    // No broker here: no live view, no other services to read.
    config.live.enabled = false;
    config.status.services = Vec::new();
    config.query.catalog = stockstream_query_api::CatalogKind::Glue;
    config.query.database = DATABASE.into();
    config.query.glue = moto.aws();
    config.query.athena.aws = moto.aws();
    config.query.athena.workgroup = WORKGROUP.into();
    config.query.athena.output_location = Some(RESULTS.into());
    config.query.athena.poll_initial = Duration::from_millis(20);
    config.query.athena.poll_max = Duration::from_millis(200);
    config.query.sync_wait = sync_wait;
    config.http.listen = "127.0.0.1:0".parse()?;
    Ok(stockstream_query_api::start(config, shutdown.clone())
        .await?
        .address)
}

/// Queues one canned result in moto: `columns` (name, Athena type) and `rows`, header first.
async fn canned(moto: &Moto, columns: &[(&str, &str)], rows: &[Vec<Option<&str>>]) -> Result<()> {
    moto.queue_athena_result(columns, rows).await
}

/// Makes moto advance executions only after `times` polls each step (`None`: at once).
async fn progression(moto: &Moto, times: Option<u32>) -> Result<()> {
    let transition = match times {
        Some(times) => json!({"progression": "manual", "times": times}),
        None => json!({"progression": "immediate"}),
    };
    let body = json!({"model_name": "athena::execution", "transition": transition});
    let answer = http_post_json(
        moto.address,
        "/moto-api/state-manager/set-transition",
        &body,
        "*/*",
    )
    .await?;
    ensure!(answer.status < 300, "set-transition: {}", answer.text());
    Ok(())
}

async fn athena_execution(moto: &Moto, id: &str) -> Result<aws_sdk_athena::types::QueryExecution> {
    let sdk = moto.aws().sdk_config().await;
    // Reading moto's execution advances its state machine; only read finished ones.
    aws_sdk_athena::Client::new(&sdk)
        .get_query_execution()
        .query_execution_id(id)
        .send()
        .await?
        .query_execution
        .context("execution")
}

async fn executions(moto: &Moto) -> Result<usize> {
    let sdk = moto.aws().sdk_config().await;
    Ok(aws_sdk_athena::Client::new(&sdk)
        .list_query_executions()
        .send()
        .await?
        .query_execution_ids()
        .len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_athena_engine_on_moto() -> Result<()> {
    let moto = Moto::start()?;
    athena_world(&moto).await?;
    let shutdown = CancellationToken::new();
    let api = start_api(&moto, &shutdown, Duration::from_secs(10)).await?;

    // A parameterized query: the request Athena received, and the answer typed from its metadata.
    progression(&moto, Some(2)).await?;
    canned(
        &moto,
        &[
            ("symbol", "varchar"),
            ("trade_date", "date"),
            ("close", "double"),
            ("volume", "bigint"),
            ("up", "boolean"),
            ("change", "decimal"),
            ("at", "timestamp"),
        ],
        &[
            vec![
                Some("HSI"),
                Some("1987-10-19"),
                Some("3362.389893"),
                Some("0"),
                Some("false"),
                Some("-420.81"),
                Some("1987-10-19 00:00:00.000"),
            ],
            vec![
                Some("HSI"),
                Some("1987-10-20"),
                None,
                None,
                None,
                None,
                None,
            ],
        ],
    )
    .await?;
    let sql = "SELECT symbol, trade_date, close, volume, close > open AS up, \
               CAST(close - open AS decimal(10,2)) AS change, CAST(trade_date AS timestamp) AS at \
               FROM quotes WHERE symbol = ? AND year = ? ORDER BY trade_date";
    let answer = http_post_json(
        api,
        "/v1/query",
        &json!({"sql": sql, "params": ["HSI", 1987]}),
        "application/json",
    )
    .await?;
    ensure!(answer.status == 200, "query: {}", answer.text());
    let answer = answer.json()?;
    assert_eq!(
        answer["columns"],
        json!([
            {"name": "symbol", "type": "varchar"}, {"name": "trade_date", "type": "date"},
            {"name": "close", "type": "double"}, {"name": "volume", "type": "bigint"},
            {"name": "up", "type": "boolean"}, {"name": "change", "type": "decimal"},
            {"name": "at", "type": "timestamp"}
        ])
    );
    assert_eq!(
        answer["rows"],
        json!([
            [
                "HSI",
                "1987-10-19",
                3362.389893,
                0,
                false,
                "-420.81",
                "1987-10-19T00:00:00"
            ],
            ["HSI", "1987-10-20", null, null, null, null, null]
        ])
    );
    assert_eq!(answer["stats"]["engine"], "athena");
    assert_eq!(answer["stats"]["rows"], 2);
    let execution_id = answer["stats"]["athena_query_id"]
        .as_str()
        .context("athena id")?
        .to_string();
    let execution = athena_execution(&moto, &execution_id).await?;
    assert_eq!(execution.query(), Some(sql));
    assert_eq!(execution.work_group(), Some(WORKGROUP));
    assert_eq!(execution.execution_parameters(), ["'HSI'", "1987"]);
    assert_eq!(
        execution
            .query_execution_context()
            .and_then(|context| context.database()),
        Some(DATABASE)
    );
    let output = execution
        .result_configuration()
        .and_then(|configuration| configuration.output_location())
        .context("output location")?;
    assert!(output.starts_with(RESULTS), "{output}");

    // A market-data endpoint: Athena's own aggregate functions, objects in the answer.
    progression(&moto, None).await?;
    canned(
        &moto,
        &[
            ("period", "varchar"),
            ("open", "double"),
            ("high", "double"),
            ("low", "double"),
            ("close", "double"),
            ("volume", "bigint"),
            ("days", "bigint"),
        ],
        &[vec![
            Some("1987-10-01"),
            Some("3949.699951"),
            Some("3968.699951"),
            Some("1894.900024"),
            Some("2376.600098"),
            Some("0"),
            Some("18"),
        ]],
    )
    .await?;
    let candles = http_get_as(
        api,
        "/v1/symbols/HSI/candles?interval=month&from=1987-10-01&to=1987-10-31",
        "application/json",
    )
    .await?;
    ensure!(candles.status == 200, "candles: {}", candles.text());
    let candles = candles.json()?;
    assert_eq!(candles["candles"][0]["period"], "1987-10-01");
    assert_eq!(candles["candles"][0]["days"], 18);
    let execution = athena_execution(
        &moto,
        candles["stats"]["athena_query_id"].as_str().context("id")?,
    )
    .await?;
    let sent = execution.query().context("query")?;
    assert!(
        sent.contains("min_by(open, trade_date)") && sent.contains("max_by(close, trade_date)"),
        "{sent}"
    );
    assert!(
        !sent.contains("HSI") && !sent.contains("1987"),
        "user input must travel as parameters: {sent}"
    );
    assert_eq!(
        execution.execution_parameters(),
        ["'HSI'", "'1987-10-01'", "1987", "'1987-10-31'", "1987"]
    );

    // Not done within sync_wait: 202, then the status, then DELETE stops it in Athena.
    shutdown.cancel();
    let shutdown = CancellationToken::new();
    let api = start_api(&moto, &shutdown, Duration::from_millis(300)).await?;
    progression(&moto, Some(1000)).await?;
    let accepted = http_post_json(
        api,
        "/v1/query",
        &json!({"sql": "SELECT count(*) FROM quotes"}),
        "application/json",
    )
    .await?;
    ensure!(accepted.status == 202, "{}", accepted.text());
    let accepted = accepted.json()?;
    let id = accepted["query_id"].as_str().context("id")?;
    let status = http_get_as(api, &format!("/v1/queries/{id}"), "application/json")
        .await?
        .json()?;
    assert!(
        matches!(status["state"].as_str(), Some("QUEUED" | "RUNNING")),
        "{status}"
    );
    let results = http_get_as(
        api,
        &format!("/v1/queries/{id}/results"),
        "application/json",
    )
    .await?;
    assert_eq!(results.status, 409, "{}", results.text());
    let cancelled = http_call(api, "DELETE", &format!("/v1/queries/{id}"), &[], b"").await?;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text());
    let cancelled = cancelled.json()?;
    assert_eq!(cancelled["state"], "CANCELLED", "{cancelled}");
    let stopped_id = cancelled["stats"]["athena_query_id"]
        .as_str()
        .context("id")?
        .to_string();

    // Past its deadline: StopQueryExecution, and a 422 `timeout`.
    let timed_out = http_post_json(
        api,
        "/v1/query",
        &json!({"sql": "SELECT max(close) FROM quotes", "timeout_ms": 250}),
        "application/json",
    )
    .await?;
    // The deadline passes before sync_wait (300 ms): the request itself answers the timeout —
    // or, on a machine too busy to keep 50 ms apart, a 202 whose query then fails the same way.
    let kind = match timed_out.status {
        422 => timed_out.json()?["error"]["kind"].clone(),
        202 => {
            let id = timed_out.json()?["query_id"]
                .as_str()
                .context("query id")?
                .to_string();
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            loop {
                let info = http_get_as(api, &format!("/v1/queries/{id}"), "application/json")
                    .await?
                    .json()?;
                if info["state"] == "FAILED" || info["state"] == "CANCELLED" {
                    break info["error"]["kind"].clone();
                }
                ensure!(std::time::Instant::now() < deadline, "never failed: {info}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        status => anyhow::bail!("{status}: {}", timed_out.text()),
    };
    assert_eq!(kind, "timeout");
    progression(&moto, None).await?;
    let sdk = moto.aws().sdk_config().await;
    let all = aws_sdk_athena::Client::new(&sdk)
        .list_query_executions()
        .send()
        .await?;
    let newest = all
        .query_execution_ids()
        .last()
        .context("executions")?
        .clone();
    for id in [stopped_id, newest] {
        let stopped = athena_execution(&moto, &id).await?;
        assert_eq!(
            stopped
                .status()
                .and_then(|status| status.state())
                .map(|state| state.as_str()),
            Some("CANCELLED"),
            "execution {id}"
        );
    }

    // The guard corpus: every statement refused with 400 before Athena sees it.
    let before = executions(&moto).await?;
    stockstream_e2e::answers::check_guard_corpus(api).await?;
    assert_eq!(
        executions(&moto).await?,
        before,
        "a refused statement reached Athena"
    );
    shutdown.cancel();
    Ok(())
}
