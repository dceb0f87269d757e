//! The AWS path, offline: the CloudFormation template under its linters (cfn-lint, checkov,
//! `cloud-init schema`), the release tarball installed into a scratch root, and the stack
//! deployed to moto's CloudFormation (`tests/interop/check_stack.py`), its Glue table and crawler
//! compared with what the real catalog service creates and accepts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use aws_sdk_glue::types::Table;
use chrono::NaiveDate;
use stockstream_common::config::LakeConfig;
use stockstream_common::lake::{LakeStore, PartitionTemplate, open_store};
use stockstream_e2e::{
    Moto, checkov, commit_quotes_file, python, release_tarball, repo_root, run_checked,
};
use stockstream_glue_crawler::{GlueCatalog, GlueSettings, Strategy};

const TEMPLATE: &str = "infra/stockstream.yaml";
const BINARIES: [&str; 4] = [
    "stockstream-ingest",
    "stockstream-s3-sink",
    "stockstream-glue-crawler",
    "stockstream-query-api",
];

fn template() -> PathBuf {
    repo_root().join(TEMPLATE)
}

/// `cloud-init` on the PATH (Debian's, installed by `scripts/tools.sh cloud-init`).
fn cloud_init() -> Result<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|directory| directory.join("cloud-init"))
        .find(|candidate| candidate.is_file());
    found.context(
        "cloud-init is missing: install it with `make tools` (scripts/tools.sh cloud-init)",
    )
}

/// Every checkov skip the template declares (`- id: CKV…` under `checkov: skip:`).
fn declared_skips(text: &str) -> Vec<String> {
    let mut skips: Vec<String> = text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- id: "))
        .filter(|id| id.starts_with("CKV"))
        .map(str::to_string)
        .collect();
    skips.sort();
    skips
}

#[test]
fn the_template_passes_cfn_lint_checkov_and_cloud_init() -> Result<()> {
    let root = repo_root();
    let python = python();
    run_checked(
        &python,
        &[
            &root.join("scripts/infra-embed.py").to_string_lossy(),
            "--check",
        ],
        "the template must embed infra/bootstrap.py",
    )?;
    let template = template();
    // cfn-lint is installed next to the test Python (scripts/tools.sh python).
    let cfn_lint = python.with_file_name("cfn-lint");
    let lint = Command::new(&cfn_lint)
        .arg(&template)
        .output()
        .context("running cfn-lint (install it with `make tools`)")?;
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    ensure!(
        lint.status.success() && findings.trim().is_empty(),
        "cfn-lint reports ({}):\n{findings}",
        lint.status
    );

    // checkov on the template as it is and with the optional MSK cluster on, in one run.
    let text = std::fs::read_to_string(&template)?;
    let scratch = tempfile::tempdir()?;
    let with_msk = scratch.path().join("stockstream-with-msk.yaml");
    let msk_default = "  CreateMskCluster:\n    Type: String\n    Default: \"false\"";
    ensure!(
        text.contains(msk_default),
        "CreateMskCluster defaults to false"
    );
    std::fs::write(
        &with_msk,
        text.replace(msk_default, &msk_default.replace("false", "true")),
    )?;
    let report = Command::new(checkov())
        .args([
            "--skip-download",
            "--framework",
            "cloudformation",
            "-o",
            "json",
        ])
        .arg("-f")
        .arg(&template)
        .arg("-f")
        .arg(&with_msk)
        .output()
        .context("running checkov (install it with `make tools`)")?;
    let answer: serde_json::Value = serde_json::from_slice(&report.stdout).with_context(|| {
        format!(
            "checkov printed no JSON: {}",
            String::from_utf8_lossy(&report.stderr)
        )
    })?;
    let reports = match answer {
        serde_json::Value::Array(reports) => reports,
        single => vec![single],
    };
    let declared = declared_skips(&text);
    ensure!(
        !declared.is_empty(),
        "the template declares its checkov skips"
    );
    let mut passed = 0;
    for report in &reports {
        let summary = &report["summary"];
        ensure!(
            summary["failed"] == 0 && summary["parsing_errors"] == 0,
            "checkov fails: {}",
            serde_json::to_string_pretty(&report["results"]["failed_checks"])?
        );
        passed += summary["passed"].as_u64().unwrap_or(0);
        let mut skipped: Vec<String> = Vec::new();
        for check in report["results"]["skipped_checks"]
            .as_array()
            .context("skipped checks")?
        {
            let id = check["check_id"].as_str().unwrap_or_default().to_string();
            let comment = check["check_result"]["suppress_comment"]
                .as_str()
                .unwrap_or_default();
            ensure!(
                comment.len() >= 60,
                "checkov skip {id} has no justification worth the name: {comment:?}"
            );
            skipped.push(id);
        }
        // Both files' skips, once each.
        skipped.sort();
        skipped.dedup();
        ensure!(
            skipped == declared,
            "checkov skipped {skipped:?}; the template declares {declared:?} (drop skips that no check needs)"
        );
    }
    ensure!(
        passed >= 60,
        "checkov passed only {passed} checks over both variants"
    );

    // The #cloud-config, with example values for the stack's (the moto test checks the
    // rendered one).
    let user_data = run_checked(
        &python,
        &[&root.join("scripts/infra-user-data.py").to_string_lossy()],
        "rendering the user data",
    )?;
    let file = scratch.path().join("user-data.yaml");
    std::fs::write(&file, &user_data)?;
    let schema = run_checked(
        &cloud_init()?,
        &["schema", "--config-file", &file.to_string_lossy()],
        "cloud-init schema",
    )?;
    ensure!(
        schema.contains("Valid cloud-config"),
        "cloud-init says {schema}"
    );
    // The host's log forwarding (deploy/aws/), by Debian's rsyslog as on the host.
    let rsyslog_conf = scratch.path().join("rsyslog.conf");
    std::fs::write(
        &rsyslog_conf,
        format!(
            "$IncludeConfig {}\n",
            root.join("deploy/aws/rsyslog-stockstream.conf").display()
        ),
    )?;
    let rsyslogd = Path::new("/usr/sbin/rsyslogd");
    ensure!(
        rsyslogd.is_file(),
        "rsyslog is missing: install it with `make tools` (scripts/tools.sh cloud-init)"
    );
    let checked = Command::new(rsyslogd)
        .args(["-N1", "-f"])
        .arg(&rsyslog_conf)
        .output()?;
    ensure!(
        checked.status.success(),
        "rsyslogd -N1 rejects deploy/aws/rsyslog-stockstream.conf:\n{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    ensure!(
        user_data.len() < 16_384 - 2_048,
        "the user data ({} bytes) leaves less than 2 KiB for the stack's values under EC2's 16 KiB",
        user_data.len()
    );
    Ok(())
}

/// Paths a unit names (ExecStart, EnvironmentFile, LoadCredential, Documentation).
fn unit_paths(unit: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once('=')?;
            let path = match key {
                "ExecStart" => value.split_whitespace().next()?,
                "EnvironmentFile" => value.trim_start_matches('-'),
                "LoadCredential" => value.split_once(':')?.1,
                "Documentation" => value.strip_prefix("file://")?,
                _ => return None,
            };
            Some(path.to_string())
        })
        .collect()
}

fn unpack(tarball: &Path, into: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(into)?;
    run_checked(
        Path::new("tar"),
        &[
            "-xzf",
            &tarball.to_string_lossy(),
            "-C",
            &into.to_string_lossy(),
        ],
        "unpacking the release",
    )?;
    let mut folders = std::fs::read_dir(into)?.collect::<std::io::Result<Vec<_>>>()?;
    ensure!(folders.len() == 1, "the release is one folder");
    Ok(folders.remove(0).path())
}

#[test]
fn the_release_installs_into_a_scratch_root_and_its_binaries_answer() -> Result<()> {
    let tarball = release_tarball()?;
    let name = tarball
        .file_name()
        .and_then(|name| name.to_str())
        .context("name")?;
    let version = env!("CARGO_PKG_VERSION");
    ensure!(
        name == format!(
            "stockstream-{version}-{}-linux-gnu.tar.gz",
            std::env::consts::ARCH
        ),
        "tarball {name}"
    );
    let scratch = tempfile::tempdir()?;
    let release = unpack(&tarball, &scratch.path().join("unpacked"))?;
    let root = scratch.path().join("root");
    let install = release.join("install.sh");
    let first = run_checked(
        &install,
        &["--root", &root.to_string_lossy(), "--mode", "aws"],
        "install.sh",
    )?;

    // Every path a unit names exists where the unit expects it.
    let units = root.join("usr/local/lib/systemd/system");
    let mut unit_files: Vec<PathBuf> = std::fs::read_dir(&units)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<std::io::Result<_>>()?;
    unit_files.sort();
    ensure!(
        unit_files.len() == 6,
        "four services, the probe and its timer: {unit_files:?}"
    );
    for unit in &unit_files {
        for path in unit_paths(&std::fs::read_to_string(unit)?) {
            let installed = root.join(path.trim_start_matches('/'));
            ensure!(
                installed.exists(),
                "{} names {path}, which the release did not install",
                unit.display()
            );
        }
    }
    for binary in BINARIES {
        let answer = run_checked(
            &root.join("usr/local/bin").join(binary),
            &["--version"],
            "the installed binary",
        )?;
        ensure!(
            answer.trim() == format!("{binary} {version}"),
            "{binary} --version: {answer}"
        );
    }
    // The settings are the AWS examples, root-only.
    for example in std::fs::read_dir(release.join("env/aws"))? {
        let example = example?.path();
        let installed = root
            .join("etc/stockstream")
            .join(example.file_name().context("name")?);
        ensure!(
            std::fs::read(&example)? == std::fs::read(&installed)?,
            "{}",
            installed.display()
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&installed)?.permissions().mode() & 0o777;
        ensure!(mode == 0o600, "{} has mode {mode:o}", installed.display());
        ensure!(
            first.contains(&format!("wrote {}", installed.display())),
            "{first}"
        );
    }

    // systemd checks the installed units against the installed tree; any output is a failure.
    let system_units = Path::new("/usr/lib/systemd/system");
    ensure!(
        system_units.is_dir(),
        "systemd is missing: install it with `apt-get install systemd` (scripts/verify-deploy.sh does)"
    );
    std::fs::create_dir_all(root.join("usr/lib/systemd"))?;
    run_checked(
        Path::new("cp"),
        &[
            "-a",
            "/usr/lib/systemd/system",
            &root.join("usr/lib/systemd").to_string_lossy(),
        ],
        "copying systemd's own units into the scratch root",
    )?;
    let mut verify = Command::new("systemd-analyze");
    verify
        .args(["verify", "--man=no"])
        .arg(format!("--root={}", root.display()))
        .args(&unit_files)
        .env("SYSTEMD_LOG_LEVEL", "warning");
    let verified = verify.output().context("running systemd-analyze")?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    ensure!(
        verified.status.success() && said.trim().is_empty(),
        "systemd-analyze verify on the installed units:\n{said}"
    );

    // A second install keeps the operator's settings.
    let edited = root.join("etc/stockstream/s3-sink.env");
    std::fs::write(&edited, "STOCKSTREAM__SINK__GROUP_ID=edited\n")?;
    let second = run_checked(&install, &["--root", &root.to_string_lossy()], "install.sh")?;
    ensure!(
        second.contains(&format!("kept {}", edited.display())),
        "{second}"
    );
    ensure!(std::fs::read_to_string(&edited)? == "STOCKSTREAM__SINK__GROUP_ID=edited\n");

    // The AWS host set-up writes the log forwarding for the stack's log group.
    run_checked(
        &release.join("aws/setup-host.sh"),
        &[
            "--region",
            "eu-west-1",
            "--log-group",
            "/stockstream/prod",
            "--root",
            &root.to_string_lossy(),
            "--no-agents",
        ],
        "setup-host.sh",
    )?;
    let agent: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        root.join("etc/stockstream/cloudwatch-agent.json"),
    )?)?;
    let files = agent["logs"]["logs_collected"]["files"]["collect_list"]
        .as_array()
        .context("collect_list")?;
    ensure!(files.len() == 5, "one log file per unit: {files:?}");
    ensure!(
        files
            .iter()
            .all(|file| file["log_group_name"] == "/stockstream/prod")
    );
    ensure!(root.join("etc/rsyslog.d/30-stockstream.conf").is_file());
    let refused = Command::new(release.join("aws/setup-host.sh"))
        .args([
            "--region",
            "eu-west-1",
            "--log-group",
            "bad|name",
            "--no-agents",
        ])
        .output()?;
    ensure!(
        !refused.status.success(),
        "a log group name with | is refused"
    );

    // A damaged release is refused before anything is installed.
    let binary = release.join("bin/stockstream-ingest");
    let mut bytes = std::fs::read(&binary)?;
    bytes.push(0);
    std::fs::write(&binary, bytes)?;
    let damaged = Command::new(&install)
        .args(["--root", &scratch.path().join("other").to_string_lossy()])
        .output()?;
    ensure!(!damaged.status.success(), "a damaged release installs");
    ensure!(
        String::from_utf8_lossy(&damaged.stderr).contains("does not match its SHA256SUMS"),
        "{}",
        String::from_utf8_lossy(&damaged.stderr)
    );
    ensure!(
        !scratch.path().join("other/usr").exists(),
        "nothing installed"
    );
    Ok(())
}

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
            &template().to_string_lossy(),
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

    // The same crawler as the one the service would create, narrowed to new folders.
    let mut service = GlueCatalog::connect(
        glue_settings(
            &moto,
            Strategy::Crawler,
            "service-crawler",
            &report.crawler_role,
        ),
        "service_db",
        store.clone(),
    )
    .await?;
    service.apply(&events).await?;
    let glue = aws_sdk_glue::Client::new(&moto.aws().sdk_config().await);
    let read = |name: String| {
        let glue = glue.clone();
        async move {
            glue.get_crawler()
                .name(name)
                .send()
                .await?
                .crawler()
                .cloned()
                .context("no crawler")
        }
    };
    let from_template = read(crawler.clone()).await?;
    let from_service = read("service-crawler".into()).await?;
    let paths = |crawler: &aws_sdk_glue::types::Crawler| -> Vec<String> {
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
    };
    ensure!(
        paths(&from_template) == paths(&from_service),
        "crawler targets differ"
    );
    ensure!(paths(&from_template) == [format!("s3://{}/{}/quotes/", report.bucket, report.prefix)]);
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
