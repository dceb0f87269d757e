//! Black-box test of the `make run` path: `scripts/run.sh` and `scripts/stack.sh` start the real
//! binaries and a tansu broker (on free ports, state in a temporary directory), replay the real
//! slice, restart a sink killed with SIGKILL, stop everything, start again, and replay again.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use stockstream_e2e::{SLICE_ROWS, free_port, query, read_env, test_data};

struct Stack {
    root: PathBuf,
    var: tempfile::TempDir,
    query_listen: String,
    kafka_port: u16,
    sink_listen: String,
    crawler_listen: String,
}

impl Stack {
    fn new() -> Result<Self> {
        Ok(Self {
            root: Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .context("repository root")?
                .to_path_buf(),
            var: tempfile::tempdir()?,
            query_listen: format!("127.0.0.1:{}", free_port()),
            kafka_port: free_port(),
            sink_listen: format!("127.0.0.1:{}", free_port()),
            crawler_listen: format!("127.0.0.1:{}", free_port()),
        })
    }

    fn script(&self, script: &str, args: &[&str], data: Option<&Path>) -> Result<String> {
        let tansu = std::env::var("STOCKSTREAM_TANSU")
            .context("STOCKSTREAM_TANSU is not set: run the tests with `make test`")?;
        let bin = std::env::var("STOCKSTREAM_BIN")
            .context("STOCKSTREAM_BIN is not set: run the tests with `make test`")?;
        let mut command = Command::new(self.root.join("scripts").join(script));
        command
            .args(args)
            .env("STOCKSTREAM_VAR", self.var.path())
            .env("STOCKSTREAM_BIN", bin)
            .env("STOCKSTREAM_TANSU", tansu)
            .env("KAFKA_PORT", self.kafka_port.to_string())
            .env("QUERY_LISTEN", &self.query_listen)
            .env("SINK_LISTEN", &self.sink_listen)
            .env("CRAWLER_LISTEN", &self.crawler_listen)
            .env("WAIT_SECONDS", "180")
            .env_remove("KAFKA_BOOTSTRAP");
        if let Some(data) = data {
            command.env("DATA", data);
        }
        let output = command.output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if !output.status.success() {
            let logs = std::fs::read_dir(self.var.path().join("log"))
                .map(|entries| {
                    entries
                        .filter_map(|entry| entry.ok())
                        .map(|entry| {
                            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                            let tail: Vec<&str> = text.lines().rev().take(15).collect();
                            format!(
                                "--- {}\n{}",
                                entry.path().display(),
                                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default();
            bail!("{script} {args:?} failed:\n{text}\n{logs}");
        }
        Ok(text)
    }

    async fn count(&self, sql: &str) -> Result<u64> {
        let answer = query(self.query_listen.parse()?, sql).await?;
        answer["rows"][0][0].as_u64().context("a count")
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.script("stack.sh", &["stop"], None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_stop_run_keeps_every_row_exactly_once() -> Result<()> {
    let data = test_data();
    let stack = Stack::new()?;

    let first = stack.script("run.sh", &[], Some(&data))?;
    assert!(first.contains(&format!("produced {SLICE_ROWS}")), "{first}");
    assert!(
        first.contains(&format!("{SLICE_ROWS} records are queryable")),
        "{first}"
    );
    assert_eq!(
        stack
            .count("SELECT count(*) AS n FROM quotes WHERE symbol = 'HSI'")
            .await?,
        SLICE_ROWS
    );

    // A sink killed with SIGKILL is restarted by the next `stack.sh start`, at once: the killed
    // process stays a zombie until something reaps it, and `kill -0` alone calls that running.
    let pid_file = stack.var.path().join("run").join("s3-sink.pid");
    let killed = std::fs::read_to_string(&pid_file)?.trim().to_string();
    let status = Command::new("kill").args(["-KILL", &killed]).status()?;
    assert!(status.success(), "kill -KILL {killed}");
    let restarted = stack.script("stack.sh", &["start"], None)?;
    assert!(
        restarted.contains("s3-sink ready (pid") && !restarted.contains("s3-sink already running"),
        "{restarted}"
    );
    assert!(
        restarted.contains("query-api already running"),
        "{restarted}"
    );
    let new_pid = std::fs::read_to_string(&pid_file)?.trim().to_string();
    assert_ne!(new_pid, killed, "the pid file still names the killed sink");
    let status = stack.script("stack.sh", &["status"], None)?;
    assert!(status.contains("s3-sink: running"), "{status}");

    // make stop; make run: nothing lost, nothing sent or written twice.
    let stopped = stack.script("stack.sh", &["stop"], None)?;
    assert!(stopped.contains("s3-sink stopped"), "{stopped}");
    let second = stack.script("run.sh", &[], Some(&data))?;
    assert!(
        second.contains("produced 0") && second.contains(&format!("{SLICE_ROWS} already replayed")),
        "{second}"
    );
    assert_eq!(
        stack.count("SELECT count(*) FROM quotes").await?,
        SLICE_ROWS
    );
    assert_eq!(
        stack
            .count("SELECT count(DISTINCT kafka_offset) FROM quotes")
            .await?,
        SLICE_ROWS
    );

    // New data after the restart reach the lake through the restarted services.
    let generated = stack.var.path().join("generated.csv");
    let bin = PathBuf::from(std::env::var("STOCKSTREAM_BIN")?);
    let status = Command::new(bin.join("stockstream-ingest"))
        .args([
            "generate",
            "--symbols",
            "AAA,BBB",
            "--days",
            "20",
            "--output",
        ])
        .arg(&generated)
        .status()?;
    assert!(status.success());
    let third = stack.script("run.sh", &[], Some(&generated))?;
    assert!(third.contains("produced 40"), "{third}");
    assert_eq!(
        stack.count("SELECT count(*) FROM quotes").await?,
        SLICE_ROWS + 40
    );
    Ok(())
}

/// `deploy/env/ports.env` is the one place of the local stack's ports: the scripts and the
/// Makefile read it, and every Rust default and every file of `deploy/env/local/` must agree.
#[test]
fn every_default_port_is_the_one_of_ports_env() -> Result<()> {
    let root = stockstream_e2e::repo_root();
    let ports = read_env(&root.join("deploy/env/ports.env"))?;
    let port = |name: &str| -> Result<u16> {
        ports
            .get(name)
            .with_context(|| format!("deploy/env/ports.env lacks {name}"))?
            .parse()
            .with_context(|| format!("{name} in deploy/env/ports.env is not a port"))
    };
    let (kafka, ingest, sink, crawler, query) = (
        port("DEFAULT_KAFKA_PORT")?,
        port("DEFAULT_INGEST_PORT")?,
        port("DEFAULT_SINK_PORT")?,
        port("DEFAULT_CRAWLER_PORT")?,
        port("DEFAULT_QUERY_PORT")?,
    );
    let bootstrap = format!("127.0.0.1:{kafka}");

    // The Rust defaults.
    let sink_config = stockstream_s3_sink::Config::load(None)?;
    let crawler_config = stockstream_glue_crawler::Config::load(None)?;
    let ingest_config = stockstream_ingest::Config::load(None)?;
    let api_config = stockstream_query_api::Config::load(None)?;
    assert_eq!(sink_config.http.listen.port(), sink, "s3-sink http.listen");
    assert_eq!(
        crawler_config.http.listen.port(),
        crawler,
        "glue-crawler http.listen"
    );
    assert_eq!(
        ingest_config.http.listen.port(),
        ingest,
        "ingest http.listen"
    );
    assert_eq!(
        api_config.http.listen.port(),
        query,
        "query-api http.listen"
    );
    for (service, servers) in [
        ("s3-sink", &sink_config.kafka.bootstrap_servers),
        ("glue-crawler", &crawler_config.kafka.bootstrap_servers),
        ("ingest", &ingest_config.kafka.bootstrap_servers),
        ("query-api", &api_config.kafka.bootstrap_servers),
    ] {
        assert_eq!(servers, &bootstrap, "{service} kafka.bootstrap_servers");
    }
    let status: Vec<(String, String)> = api_config.status.services.clone();
    let expected: Vec<(String, String)> = [
        ("stockstream-ingest", ingest),
        ("stockstream-s3-sink", sink),
        ("stockstream-glue-crawler", crawler),
    ]
    .into_iter()
    .map(|(name, port)| (name.to_string(), format!("http://127.0.0.1:{port}")))
    .collect();
    assert_eq!(status, expected, "query-api status.services");

    // The systemd units' local settings.
    let local = root.join("deploy/env/local");
    let listen = |file: &str| -> Result<Option<String>> {
        Ok(read_env(&local.join(file))?.remove("STOCKSTREAM__HTTP__LISTEN"))
    };
    assert_eq!(listen("s3-sink.env")?, Some(format!("127.0.0.1:{sink}")));
    assert_eq!(
        listen("glue-crawler.env")?,
        Some(format!("127.0.0.1:{crawler}"))
    );
    assert_eq!(listen("query-api.env")?, Some(format!("127.0.0.1:{query}")));
    assert_eq!(listen("ingest.env")?, Some(format!("0.0.0.0:{ingest}")));
    assert_eq!(
        read_env(&local.join("stockstream.env"))?.remove("STOCKSTREAM__KAFKA__BOOTSTRAP_SERVERS"),
        Some(bootstrap)
    );
    assert_eq!(
        read_env(&root.join("deploy/env/aws/query-api.env"))?.remove("STOCKSTREAM__HTTP__LISTEN"),
        Some(format!("0.0.0.0:{query}"))
    );
    let probe_targets = format!(
        "ingest=127.0.0.1:{ingest} s3-sink=127.0.0.1:{sink} glue-crawler=127.0.0.1:{crawler} query-api=127.0.0.1:{query}"
    );
    for probe in [
        local.join("probe.env"),
        root.join("deploy/env/aws/probe.env"),
    ] {
        assert_eq!(
            read_env(&probe)?.remove("STOCKSTREAM_PROBE_TARGETS"),
            Some(probe_targets.clone()),
            "{}",
            probe.display()
        );
    }
    let probe_script = std::fs::read_to_string(root.join("deploy/stockstream-probe"))?;
    assert!(
        probe_script.contains(&probe_targets),
        "deploy/stockstream-probe's default targets are not {probe_targets}"
    );
    Ok(())
}
