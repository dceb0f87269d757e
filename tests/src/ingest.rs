//! Running the `stockstream-ingest` binary in tests: a broker, topics named after the test, a
//! private state directory, and the replay summary parsed from `--json`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result, bail, ensure};

use crate::Tansu;

/// Runs the ingest binary with a broker, topics named after the test, and a private state dir.
#[derive(Debug)]
pub struct Ingest {
    bin: PathBuf,
    /// The broker.
    pub bootstrap: String,
    name: String,
    state: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Ingest {
    /// A runner for `tansu` with topics `{name}.quotes` and `{name}.quotes.dlq`.
    pub fn new(tansu: &Tansu, name: &str) -> Result<Self> {
        let bin = PathBuf::from(
            std::env::var("STOCKSTREAM_BIN")
                .context("STOCKSTREAM_BIN is not set: run the tests with `make test`")?,
        )
        .join("stockstream-ingest");
        ensure!(
            bin.is_file(),
            "{} is missing: run `cargo build --workspace --bins` (make test does)",
            bin.display()
        );
        Ok(Self {
            bin,
            bootstrap: tansu.bootstrap.clone(),
            name: name.to_string(),
            state: tempfile::tempdir()?,
            env: Vec::new(),
        })
    }

    /// Sets an environment variable of every command (e.g. the lake's S3 settings).
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// The quotes topic.
    pub fn quotes(&self) -> String {
        format!("{}.quotes", self.name)
    }

    /// The dead-letter topic.
    pub fn dlq(&self) -> String {
        format!("{}.quotes.dlq", self.name)
    }

    /// The state directory (source offsets).
    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// The binary with `args` and the test's environment; a test that starts it in the
    /// background spawns it as a [`crate::TestProcess`], so it never outlives the test.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .args(args)
            .env("STOCKSTREAM__KAFKA__BOOTSTRAP_SERVERS", &self.bootstrap)
            .env("STOCKSTREAM__KAFKA__TOPICS__QUOTES", self.quotes())
            .env("STOCKSTREAM__KAFKA__TOPICS__DLQ", self.dlq())
            .env(
                "STOCKSTREAM__KAFKA__TOPICS__LAKE_COMMITS",
                format!("{}.lake.commits", self.name),
            )
            .env("STOCKSTREAM__INGEST__STATE_DIR", self.state.path())
            .env("STOCKSTREAM__TELEMETRY__LOG_LEVEL", "warn")
            .stdin(Stdio::null());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }

    /// Runs the binary to completion.
    pub fn run(&self, args: &[&str]) -> Result<Output> {
        Ok(self.command(args).output()?)
    }

    /// Runs a replay with `--json` and returns its summary; fails unless the exit status is `code`.
    pub fn replay(&self, args: &[&str], code: i32) -> Result<serde_json::Value> {
        let mut all = vec!["replay", "--json"];
        all.extend_from_slice(args);
        let output = self.run(&all)?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        ensure!(
            output.status.code() == Some(code),
            "replay {args:?} exited with {} (expected {code}):\n{stdout}\n{stderr}",
            output.status
        );
        serde_json::from_str(&stdout).with_context(|| format!("summary of {args:?}: {stdout}"))
    }

    /// How many records `topic` holds.
    pub fn count(&self, topic: &str) -> Result<u64> {
        let output = self.run(&["count", "--topic", topic])?;
        ensure!(output.status.success(), "count failed: {output:?}");
        Ok(String::from_utf8_lossy(&output.stdout).trim().parse()?)
    }

    /// How many records `topic` holds once nothing lands any more: counted until two counts a
    /// second apart agree. After a SIGKILL the broker may still complete the dead producer's last
    /// request; a run started before that can send those rows again, the window docs/ingest.md
    /// documents ("Assumptions and failure cases") and a supervisor's restart delay closes.
    pub fn count_when_quiet(&self, topic: &str) -> Result<u64> {
        let mut last = self.count(topic)?;
        for _ in 0..30 {
            std::thread::sleep(std::time::Duration::from_secs(1));
            let now = self.count(topic)?;
            if now == last {
                return Ok(now);
            }
            last = now;
        }
        bail!("{topic} was still growing 30 s after its producer was killed")
    }
}

/// A counter of a replay summary (`u64::MAX` when absent, so a missing one fails comparisons).
pub fn number(summary: &serde_json::Value, field: &str) -> u64 {
    summary[field].as_u64().unwrap_or(u64::MAX)
}

/// Writes `content` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, content: &[u8]) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, content)?;
    Ok(path)
}
