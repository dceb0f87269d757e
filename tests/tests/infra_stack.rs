//! The AWS path offline, part two: the stack deployed to moto's CloudFormation for each catalog
//! strategy (`tests/interop/check_stack.py` reads it back through each service's API and checks
//! the user data, the instance role, the probe and the bootstrap), its Glue table and crawler
//! compared with what the real catalog service creates and accepts.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use aws_sdk_glue::types::Table;
use chrono::NaiveDate;
use stockstream_common::config::LakeConfig;
use stockstream_common::lake::{LakeStore, PartitionTemplate, open_store};
use stockstream_e2e::{Moto, commit_quotes_file, python, release_tarball, repo_root, run_checked};
use stockstream_glue_crawler::{GlueCatalog, GlueSettings, Strategy};

/// What check_stack.py reports of the stack it deployed.
#[derive(Debug, serde::Deserialize)]
struct StackReport {
    bucket: String,
    prefix: String,
    database: String,
    crawler: Option<String>,
    crawler_role: String,
    skipped: Vec<String>,
    user_data_bytes: usize,
}

/// Deploys the template with `strategy` to `moto` and runs every check of check_stack.py.
fn deploy_and_check(moto: &Moto, strategy: &str, scratch: &Path) -> Result<StackReport> {
    let tarball = release_tarball()?;
    let script = repo_root().join("tests/interop/check_stack.py");
    let printed = run_checked(
        &python(),
        &[
            &script.to_string_lossy(),
            &moto.endpoint,
            &repo_root().join("infra/stockstream.yaml").to_string_lossy(),
            strategy,
            &tarball.to_string_lossy(),
            &scratch.to_string_lossy(),
        ],
        "tests/interop/check_stack.py",
    )?;
    let line = printed
        .lines()
        .rfind(|line| line.starts_with('{'))
        .context("check_stack.py printed no report")?;
    let report: StackReport = serde_json::from_str(line)?;
    ensure!(report.user_data_bytes > 4_000, "user data rendered");
    Ok(report)
}

async fn stack_lake(moto: &Moto, report: &StackReport) -> Result<Arc<dyn LakeStore>> {
    let lake = LakeConfig::S3 {
        bucket: report.bucket.clone(),
        prefix: report.prefix.clone(),
        aws: moto.aws(),
        force_path_style: true,
        request_timeout: Duration::from_secs(10),
    };
    Ok(open_store(&lake).await?)
}

fn glue_settings(moto: &Moto, strategy: Strategy, crawler: &str, role: &str) -> GlueSettings {
    GlueSettings {
        strategy,
        aws: moto.aws(),
        crawler_name: crawler.into(),
        crawler_role: role.into(),
        crawler_debounce: Duration::ZERO,
    }
}

async fn get_table(glue: &aws_sdk_glue::Client, database: &str) -> Result<Table> {
    glue.get_table()
        .database_name(database)
        .name("quotes")
        .send()
        .await?
        .table()
        .cloned()
        .context("no table")
}

/// The parts of a table definition Athena and the query engines read, in comparable form.
fn definition(table: &Table) -> Result<serde_json::Value> {
    let descriptor = table.storage_descriptor().context("storage descriptor")?;
    let serde = descriptor.serde_info().context("serde info")?;
    let columns = |columns: &[aws_sdk_glue::types::Column]| -> Vec<(String, String)> {
        columns
            .iter()
            .map(|column| {
                let kind = column.r#type().unwrap_or_default().to_string();
                (column.name().to_string(), kind)
            })
            .collect()
    };
    let mut parameters: std::collections::BTreeMap<String, String> = table
        .parameters()
        .map(|parameters| parameters.clone().into_iter().collect())
        .unwrap_or_default();
    // When the service wrote the definition: the template's table has no such moment.
    parameters.remove("stockstream.schema_committed_at");
    Ok(serde_json::json!({
        "table_type": table.table_type(),
        "partition_keys": columns(table.partition_keys()),
        "columns": columns(descriptor.columns()),
        "location": descriptor.location(),
        "input_format": descriptor.input_format(),
        "output_format": descriptor.output_format(),
        "compressed": descriptor.compressed(),
        "serde": serde.serialization_library(),
        "serde_parameters": serde.parameters(),
        "parameters": parameters,
    }))
}

/// The catalog service creates its own table (database `service_db`) from the same events; the
/// template's table must be the same definition.
async fn compare_with_service_table(
    moto: &Moto,
    report: &StackReport,
    store: &Arc<dyn LakeStore>,
    strategy: Strategy,
    events: &[stockstream_common::events::LakeCommitEvent],
) -> Result<()> {
    let mut service = GlueCatalog::connect(
        glue_settings(moto, strategy, "unused", ""),
        "service_db",
        store.clone(),
    )
    .await?;
    let outcome = service.apply(events).await?;
    ensure!(outcome.tables_created == 1, "{outcome:?}");
    let glue = aws_sdk_glue::Client::new(&moto.aws().sdk_config().await);
    let from_template = definition(&get_table(&glue, &report.database).await?)?;
    let from_service = definition(&get_table(&glue, "service_db").await?)?;
    ensure!(
        from_template == from_service,
        "the template's table differs from the catalog service's:\ntemplate: {from_template:#}\nservice:  {from_service:#}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stack_on_moto_matches_the_catalog_service() -> Result<()> {
    let moto = Moto::start()?;
    let scratch = tempfile::tempdir()?;
    let report =
        tokio::task::block_in_place(|| deploy_and_check(&moto, "partitions", scratch.path()))?;
    let mut skipped = report.skipped.clone();
    skipped.dedup();
    ensure!(
        skipped
            == [
                "AWS::Athena::WorkGroup",
                "AWS::CloudWatch::Alarm",
                "AWS::Glue::Database",
                "AWS::Glue::Table",
                "AWS::Logs::MetricFilter",
                "AWS::S3::BucketPolicy"
            ],
        "moto skipped {skipped:?}"
    );
    let store = stack_lake(&moto, &report).await?;
    let template = PartitionTemplate::default();
    let day = NaiveDate::from_ymd_opt(1987, 3, 2).context("date")?;
    let events = vec![commit_quotes_file(store.as_ref(), &template, "HSI", day, 0).await?];
    compare_with_service_table(&moto, &report, &store, Strategy::Partitions, &events).await?;

    // The service takes the template's table as its own: it registers partitions and never
    // rewrites the definition.
    let mut catalog = GlueCatalog::connect(
        glue_settings(&moto, Strategy::Partitions, "unused", ""),
        &report.database,
        store.clone(),
    )
    .await?;
    let outcome = catalog.apply(&events).await?;
    ensure!(
        outcome.tables_created == 0
            && outcome.tables_updated == 0
            && outcome.partitions_registered == 1,
        "the service against the template's table: {outcome:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projection_stack_matches_the_catalog_service() -> Result<()> {
    let moto = Moto::start()?;
    let scratch = tempfile::tempdir()?;
    let report =
        tokio::task::block_in_place(|| deploy_and_check(&moto, "projection", scratch.path()))?;
    let store = stack_lake(&moto, &report).await?;
    let template = PartitionTemplate::default();
    let day = |year: i32| NaiveDate::from_ymd_opt(year, 3, 2).context("date");
    // The template projects HSI over 1986-2030 (ProjectionSymbols, ProjectionYears): the same
    // events make the service write the same projection.
    let events = vec![
        commit_quotes_file(store.as_ref(), &template, "HSI", day(1986)?, 0).await?,
        commit_quotes_file(store.as_ref(), &template, "HSI", day(2030)?, 1).await?,
    ];
    compare_with_service_table(&moto, &report, &store, Strategy::Projection, &events).await?;
    let mut catalog = GlueCatalog::connect(
        glue_settings(&moto, Strategy::Projection, "unused", ""),
        &report.database,
        store.clone(),
    )
    .await?;
    let inside = catalog.apply(&events[..1]).await?;
    ensure!(
        inside.tables_created == 0 && inside.tables_updated == 0,
        "data inside the template's projection changes nothing: {inside:?}"
    );
    let new_symbol = commit_quotes_file(store.as_ref(), &template, "N225", day(1990)?, 2).await?;
    let widened = catalog.apply(&[new_symbol]).await?;
    ensure!(
        widened.tables_updated == 1,
        "a new symbol widens the projection: {widened:?}"
    );
    let glue = aws_sdk_glue::Client::new(&moto.aws().sdk_config().await);
    let table = get_table(&glue, &report.database).await?;
    let values = table
        .parameters()
        .and_then(|parameters| parameters.get("projection.symbol.values"))
        .cloned();
    ensure!(
        values.as_deref() == Some("HSI,N225"),
        "projected symbols {values:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crawler_stack_hands_its_crawler_to_the_catalog_service() -> Result<()> {
    let moto = Moto::start()?;
    let scratch = tempfile::tempdir()?;
    let report =
        tokio::task::block_in_place(|| deploy_and_check(&moto, "crawler", scratch.path()))?;
    let crawler = report
        .crawler
        .clone()
        .context("the crawler stack has a crawler")?;
    ensure!(
        report.crawler_role.contains(":role/"),
        "crawler role {}",
        report.crawler_role
    );
    let store = stack_lake(&moto, &report).await?;
    let day = NaiveDate::from_ymd_opt(1987, 3, 2).context("date")?;
    let events = vec![
        commit_quotes_file(store.as_ref(), &PartitionTemplate::default(), "HSI", day, 0).await?,
    ];

    // The service, configured as the stack's env file says, starts the stack's crawler.
    let mut catalog = GlueCatalog::connect(
        glue_settings(&moto, Strategy::Crawler, &crawler, &report.crawler_role),
        &report.database,
        store.clone(),
    )
    .await?;
    let outcome = catalog.apply(&events).await?;
    ensure!(
        outcome.crawler_starts == 1,
        "the service starts the stack's crawler: {outcome:?}"
    );

    compare_with_service_crawler(&moto, &report, &store, &crawler, &events).await
}

async fn get_crawler(
    glue: &aws_sdk_glue::Client,
    name: &str,
) -> Result<aws_sdk_glue::types::Crawler> {
    glue.get_crawler()
        .name(name)
        .send()
        .await?
        .crawler()
        .cloned()
        .context("no crawler")
}

fn crawler_paths(crawler: &aws_sdk_glue::types::Crawler) -> Vec<String> {
    crawler
        .targets()
        .map(|targets| {
            targets
                .s3_targets()
                .iter()
                .filter_map(|target| target.path().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The stack's crawler is the one the service would create (same targets and role), narrowed to
/// new folders and without a schedule.
async fn compare_with_service_crawler(
    moto: &Moto,
    report: &StackReport,
    store: &Arc<dyn LakeStore>,
    crawler: &str,
    events: &[stockstream_common::events::LakeCommitEvent],
) -> Result<()> {
    let mut service = GlueCatalog::connect(
        glue_settings(
            moto,
            Strategy::Crawler,
            "service-crawler",
            &report.crawler_role,
        ),
        "service_db",
        store.clone(),
    )
    .await?;
    service.apply(events).await?;
    let glue = aws_sdk_glue::Client::new(&moto.aws().sdk_config().await);
    let from_template = get_crawler(&glue, crawler).await?;
    let from_service = get_crawler(&glue, "service-crawler").await?;
    ensure!(
        crawler_paths(&from_template) == crawler_paths(&from_service),
        "crawler targets differ"
    );
    let lake = format!("s3://{}/{}/quotes/", report.bucket, report.prefix);
    ensure!(crawler_paths(&from_template) == [lake], "crawler targets");
    ensure!(
        from_template.role() == from_service.role(),
        "crawler roles differ"
    );
    let recrawl = from_template
        .recrawl_policy()
        .and_then(|policy| policy.recrawl_behavior())
        .map(|behavior| behavior.as_str().to_string());
    ensure!(
        recrawl.as_deref() == Some("CRAWL_NEW_FOLDERS_ONLY"),
        "the stack's crawler visits new folders only: {recrawl:?}"
    );
    ensure!(
        from_template.schedule().is_none(),
        "no schedule: the service starts it"
    );
    Ok(())
}
