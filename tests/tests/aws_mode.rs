//! The whole AWS mode end to end on moto, run from the release: the binaries and the AWS
//! environment files of the tarball `make dist` packs (`env/aws/stockstream.env` plus each
//! service's file), as the systemd units start them. ingest replays the real slice into the local
//! broker, the sink writes the lake to S3, the catalog service keeps the Glue Data Catalog, and the
//! query API answers with DataFusion over S3 + Glue and with the Athena engine.
//!
//! What the test changes in those files, and only that: where things are on this machine — the
//! broker (tansu, one node: replication 1), the moto endpoint, region and bucket names, listen
//! ports, the ingest state directory — and the sink's flush interval (60 s in the file, 1 s here).
//! The AWS file's `stockstream.toml` (TLS and SASL/SCRAM for Amazon MSK) is not used: tansu speaks
//! plaintext. The engine switch (`STOCKSTREAM__QUERY__ENGINE=datafusion`) is the documented one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use stockstream_e2e::{
    Moto, SLICE_ROWS, Tansu, TestProcess, csv_facts, free_port, query, read_env, release_tarball,
    test_data,
};

const BUCKET: &str = "stockstream-lake-e2e";
const RESULTS_BUCKET: &str = "stockstream-athena-e2e";
const WORKGROUP: &str = "stockstream";

/// The unpacked release: its `bin/` and `env/aws/`.
struct Release {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Release {
    fn unpack() -> Result<Self> {
        let tarball = release_tarball()?;
        let dir = tempfile::tempdir()?;
        let status = Command::new("tar")
            .arg("-xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(dir.path())
            .status()?;
        ensure!(status.success(), "unpacking {}", tarball.display());
        let root = std::fs::read_dir(dir.path())?
            .flatten()
            .map(|entry| entry.path())
            .find(|path| path.join("env/aws").is_dir())
            .context("the release has no env/aws")?;
        Ok(Self { _dir: dir, root })
    }

    /// What the unit of `service` reads: the common file, then its own.
    fn env(&self, service: &str) -> Result<BTreeMap<String, String>> {
        let mut env = read_env(&self.root.join("env/aws/stockstream.env"))?;
        env.extend(read_env(&self.root.join(format!("env/aws/{service}.env")))?);
        Ok(env)
    }

    fn binary(&self, service: &str) -> PathBuf {
        self.root.join(format!("bin/stockstream-{service}"))
    }
}

/// The machine-specific values the test puts in place of the file's examples.
fn here(env: &mut BTreeMap<String, String>, moto: &Moto, bootstrap: &str, listen: SocketAddr) {
    let set = |env: &mut BTreeMap<String, String>, key: &str, value: &str| {
        env.insert(key.to_string(), value.to_string());
    };
    set(env, "STOCKSTREAM__KAFKA__BOOTSTRAP_SERVERS", bootstrap);
    set(env, "STOCKSTREAM__KAFKA__TOPICS__PARTITIONS", "3");
    set(env, "STOCKSTREAM__KAFKA__TOPICS__REPLICATION_FACTOR", "1");
    set(env, "STOCKSTREAM__LAKE__BUCKET", BUCKET);
    set(env, "STOCKSTREAM__LAKE__ENDPOINT", &moto.endpoint);
    set(env, "STOCKSTREAM__LAKE__FORCE_PATH_STYLE", "true");
    set(env, "STOCKSTREAM__LAKE__REGION", "us-east-1");
    set(env, "STOCKSTREAM__HTTP__LISTEN", &listen.to_string());
    set(env, "STOCKSTREAM__TELEMETRY__LOG_LEVEL", "warn");
    if env.contains_key("STOCKSTREAM__CRAWLER__REGION") {
        set(env, "STOCKSTREAM__CRAWLER__REGION", "us-east-1");
        set(env, "STOCKSTREAM__CRAWLER__GLUE_ENDPOINT", &moto.endpoint);
    }
    if env.contains_key("STOCKSTREAM__QUERY__ENGINE") {
        set(env, "STOCKSTREAM__QUERY__GLUE__REGION", "us-east-1");
        set(env, "STOCKSTREAM__QUERY__GLUE__ENDPOINT", &moto.endpoint);
        set(env, "STOCKSTREAM__QUERY__ATHENA__REGION", "us-east-1");
        set(env, "STOCKSTREAM__QUERY__ATHENA__ENDPOINT", &moto.endpoint);
        set(env, "STOCKSTREAM__QUERY__ATHENA__WORKGROUP", WORKGROUP);
        set(
            env,
            "STOCKSTREAM__QUERY__ATHENA__OUTPUT_LOCATION",
            &format!("s3://{RESULTS_BUCKET}/results/"),
        );
        set(env, "STOCKSTREAM__STATUS__SERVICES", "");
    }
    if env.contains_key("STOCKSTREAM__SINK__FLUSH_INTERVAL") {
        set(env, "STOCKSTREAM__SINK__FLUSH_INTERVAL", "1s");
    }
}

/// A started service, stopped with SIGTERM (and its exit status checked) at the end; killed if
/// the test fails first.
struct Service {
    name: String,
    process: TestProcess,
    address: SocketAddr,
}

impl Service {
    fn start(
        release: &Release,
        service: &str,
        env: &BTreeMap<String, String>,
        address: SocketAddr,
    ) -> Result<Self> {
        let process = TestProcess::spawn(
            service,
            Command::new(release.binary(service))
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .envs(aws_credentials())
                .envs(env)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit()),
        )?;
        Ok(Self {
            name: service.to_string(),
            process,
            address,
        })
    }

    async fn ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.process.try_wait()? {
                bail!("{} exited early: {status}", self.name);
            }
            if let Ok((200, _)) = stockstream_e2e::http_get(self.address, "/health/readyz").await {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "{} never became ready",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn stop(mut self) -> Result<()> {
        let code = self.process.terminate()?;
        ensure!(
            code.success(),
            "{} exited with {code} after SIGTERM",
            self.name
        );
        Ok(())
    }
}

/// The dummy credentials the tests run with (the standard chain reads them).
fn aws_credentials() -> Vec<(String, String)> {
    [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_EC2_METADATA_DISABLED",
    ]
    .iter()
    .filter_map(|key| {
        std::env::var(key)
            .ok()
            .map(|value| (key.to_string(), value))
    })
    .collect()
}

fn local(port: u16) -> Result<SocketAddr> {
    Ok(format!("127.0.0.1:{port}").parse()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_mode_from_the_release_env_files_on_moto() -> Result<()> {
    let release = Release::unpack()?;
    let moto = Moto::start()?;
    let tansu = Tansu::start()?;
    moto.lake(BUCKET, "lake", Duration::from_secs(10)).await?;
    moto.lake(RESULTS_BUCKET, "", Duration::from_secs(10))
        .await?;
    let sdk = moto.aws().sdk_config().await;
    aws_sdk_athena::Client::new(&sdk)
        .create_work_group()
        .name(WORKGROUP)
        .send()
        .await?;
    let state = tempfile::tempdir()?;

    // ingest: the real slice into the broker.
    let mut ingest = release.env("ingest")?;
    here(&mut ingest, &moto, &tansu.bootstrap, local(free_port())?);
    ingest.insert(
        "STOCKSTREAM__INGEST__STATE_DIR".into(),
        state.path().display().to_string(),
    );
    let data = test_data();
    let output = Command::new(release.binary("ingest"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(&ingest)
        .args(["replay", "--json", "--file"])
        .arg(&data)
        .output()?;
    ensure!(
        output.status.success(),
        "ingest replay: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(&output.stdout)?;
    ensure!(summary["produced"] == SLICE_ROWS, "{summary}");

    // The sink (S3 lake) and the catalog service (Glue), as their units start them.
    let mut services = Vec::new();
    for service in ["s3-sink", "glue-crawler"] {
        let address = local(free_port())?;
        let mut env = release.env(service)?;
        here(&mut env, &moto, &tansu.bootstrap, address);
        let mut started = Service::start(&release, service, &env, address)?;
        started.ready().await?;
        services.push(started);
    }

    // The query API with DataFusion over S3 + Glue: every row, and the same answers as the CSV.
    let address = local(free_port())?;
    let mut env = release.env("query-api")?;
    here(&mut env, &moto, &tansu.bootstrap, address);
    env.insert("STOCKSTREAM__QUERY__ENGINE".into(), "datafusion".into());
    let mut datafusion = Service::start(&release, "query-api", &env, address)?;
    datafusion.ready().await?;
    let facts = csv_facts(&data)?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let answer = query(address, "SELECT count(*), sum(volume) FROM quotes").await;
        if let Ok(answer) = &answer
            && answer["rows"][0][0] == facts.rows
        {
            ensure!(
                answer["rows"][0][1].as_i64() == Some(facts.volume_sum),
                "sum(volume) {answer} vs the CSV's {}",
                facts.volume_sum
            );
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "DataFusion over S3 + Glue never answered {SLICE_ROWS} rows: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let glue = aws_sdk_glue::Client::new(&sdk);
    let partitions = glue
        .get_partitions()
        .database_name("stockstream")
        .table_name("quotes")
        .send()
        .await?
        .partitions()
        .len();
    ensure!(
        partitions == facts.rows_per_year.len(),
        "{partitions} Glue partitions, expected one per year of HSI ({})",
        facts.rows_per_year.len()
    );
    datafusion.stop()?;

    // The query API as the AWS file configures it: Athena, with a result canned in moto.
    let address = local(free_port())?;
    let mut env = release.env("query-api")?;
    here(&mut env, &moto, &tansu.bootstrap, address);
    ensure!(env["STOCKSTREAM__QUERY__ENGINE"] == "athena", "{env:?}");
    let mut athena = Service::start(&release, "query-api", &env, address)?;
    athena.ready().await?;
    let slice_rows = SLICE_ROWS.to_string();
    moto.queue_athena_result(&[("rows", "bigint")], &[vec![Some(slice_rows.as_str())]])
        .await?;
    let answer = query(address, "SELECT count(*) AS rows FROM quotes").await?;
    ensure!(answer["rows"] == json!([[SLICE_ROWS]]), "{answer}");
    ensure!(answer["stats"]["engine"] == "athena", "{answer}");
    let id = answer["stats"]["athena_query_id"]
        .as_str()
        .context("no Athena query id")?;
    let execution = aws_sdk_athena::Client::new(&sdk)
        .get_query_execution()
        .query_execution_id(id)
        .send()
        .await?
        .query_execution
        .context("execution")?;
    ensure!(execution.work_group() == Some(WORKGROUP), "{execution:?}");
    ensure!(
        execution
            .query_execution_context()
            .and_then(|context| context.database())
            == Some("stockstream"),
        "{execution:?}"
    );
    ensure!(
        execution
            .result_configuration()
            .and_then(|result| result.output_location())
            .is_some_and(|location| location.starts_with(&format!("s3://{RESULTS_BUCKET}/"))),
        "{execution:?}"
    );
    athena.stop()?;
    for service in services {
        service.stop()?;
    }
    println!(
        "AWS mode from the release's env files: {SLICE_ROWS} rows through ingest, the S3 sink and Glue; DataFusion and Athena answered"
    );
    Ok(())
}
