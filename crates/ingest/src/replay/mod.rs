//! Replaying quote files into Kafka in three modes:
//!
//! - `max`: every row in file order, as fast as the broker acknowledges (backfills, benchmarks);
//!   several files one after the other, each resumable on its own ([`max`]);
//! - `ordered`: a market replay — rows of every index (of every file) merged in trade-date
//!   order, paced by `speed` (trading days per second) or `rate` (rows per second) ([`ordered`]);
//! - `sample`: the original tutorial's producer — a random row every `interval`, forever or
//!   `count` times ([`sample`]).
//!
//! Sources are files, directories, globs and `s3://` objects, plain or gzip/zstd
//! ([`crate::sources`]); how each file is written is inferred before anything is sent
//! ([`crate::sniff`]). `max` and `ordered` remember how far they got per file content
//! ([`checkpoint`], [`crate::offsets`]): a restart resumes after the last acknowledged row, and
//! first reads back what the previous run sent after that point, so after any crash — SIGKILL
//! included — each row is on the topic exactly once. `--from-start` and `--loop` start new passes.

mod checkpoint;
mod max;
mod ordered;
mod run;
mod sample;
mod summary;

use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

pub use self::ordered::{OrderedRow, ordered_rows};
pub use self::summary::{FileSummary, ReplaySummary, Tally};
use crate::config::Config;
use crate::emit::Emitter;
use crate::error::{Error, Result};
use crate::sniff::{FormatOptions, Inference, infer};
use crate::sources::{Source, expand};
use run::Run;

/// How rows are taken from the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every row in file order, as fast as the broker takes them.
    Max,
    /// Every row in trade-date order (all indices of all files merged), paced by `--speed` or
    /// `--rate`.
    Ordered,
    /// A random row every `--interval`, like the original tutorial's producer.
    Sample,
}

impl Mode {
    /// The mode's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Max => "max",
            Mode::Ordered => "ordered",
            Mode::Sample => "sample",
        }
    }
}

/// What to replay and how (also the options of `stockstream-ingest replay`).
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayOptions {
    /// Files, directories (their *.csv, *.tsv, *.txt files, plain or .gz/.zst), glob patterns
    /// (quoted: 'exports/*.csv.gz') and S3 objects (s3://bucket/key, or s3://bucket/prefix/ for
    /// every data object under it).
    #[arg(value_name = "SOURCE")]
    pub sources: Vec<String>,
    /// A source, as the positional arguments (repeatable).
    #[arg(long = "file", value_name = "SOURCE")]
    pub files: Vec<String>,
    /// max: file order, as fast as the broker takes it; ordered: all indices merged in
    /// trade-date order, paced by --speed or --rate; sample: a random row every --interval
    /// (the original tutorial's producer).
    #[arg(long, value_enum, default_value = "max")]
    pub mode: Mode,
    /// Rows per second (max, ordered); unpaced when absent.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Trading days per second (ordered).
    #[arg(long)]
    pub speed: Option<f64>,
    /// Time between two rows in sample mode (e.g. 1s, 250ms).
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,
    /// Stop after this many rows (sample); runs until stopped when absent.
    #[arg(long)]
    pub count: Option<u64>,
    /// Seed of the random choice (sample); the same seed picks the same rows.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Start a new pass over the files each time one completes, until stopped.
    #[arg(long = "loop")]
    pub looping: bool,
    /// Forget recorded progress and replay the whole files again.
    #[arg(long)]
    pub from_start: bool,
    /// Infer each file's format, validate and encode every row and print what was found per
    /// file, without producing.
    #[arg(long)]
    pub dry_run: bool,
    /// Stop (exit status 3) once more than N rows of this run were dead-lettered.
    #[arg(long, value_name = "N")]
    pub max_bad_rows: Option<u64>,
    /// How the files are written, when inference should not decide.
    #[command(flatten)]
    pub format: FormatOptions,
    /// Draw a progress bar (on a terminal).
    #[arg(skip = true)]
    pub progress: bool,
}

fn parse_interval(text: &str) -> std::result::Result<Duration, String> {
    humantime::parse_duration(text).map_err(|error| format!("`{text}`: {error}"))
}

impl ReplayOptions {
    /// Options for a plain `max` replay of `source` (a file, directory, glob or `s3://` URL).
    pub fn new(source: impl AsRef<std::path::Path>) -> Self {
        Self {
            sources: vec![source.as_ref().display().to_string()],
            files: Vec::new(),
            mode: Mode::Max,
            rate: None,
            speed: None,
            interval: Duration::from_secs(1),
            count: None,
            seed: None,
            looping: false,
            from_start: false,
            dry_run: false,
            max_bad_rows: None,
            format: FormatOptions::default(),
            progress: false,
        }
    }

    /// Every source argument: `--file` values, then positional ones.
    pub fn source_arguments(&self) -> Vec<String> {
        self.files.iter().chain(&self.sources).cloned().collect()
    }

    /// Checks the options without touching the sources.
    pub fn validate(&self) -> Result<()> {
        if self.source_arguments().is_empty() {
            return Err(Error::Usage(
                "give the files to replay (a file, a directory, a glob or an s3:// URL)".into(),
            ));
        }
        let positive = |name: &str, value: Option<f64>| match value {
            Some(value) if !(value.is_finite() && value > 0.0) => Err(Error::Usage(format!(
                "--{name} must be a positive number, found {value}"
            ))),
            _ => Ok(()),
        };
        positive("rate", self.rate)?;
        positive("speed", self.speed)?;
        if self.rate.is_some() && self.speed.is_some() {
            return Err(Error::Usage("give --rate or --speed, not both".into()));
        }
        if self.speed.is_some() && self.mode != Mode::Ordered {
            return Err(Error::Usage(
                "--speed (trading days per second) needs --mode ordered".into(),
            ));
        }
        if self.mode == Mode::Sample {
            if self.rate.is_some() {
                return Err(Error::Usage(
                    "--mode sample is paced by --interval, not --rate".into(),
                ));
            }
            if self.interval.is_zero() {
                return Err(Error::Usage("--interval must be above zero".into()));
            }
        } else if self.count.is_some() || self.seed.is_some() {
            return Err(Error::Usage(
                "--count and --seed apply to --mode sample".into(),
            ));
        }
        self.format.validate()?;
        Ok(())
    }
}

/// One input file, its identity and what was inferred about it.
#[derive(Debug, Clone)]
pub struct Member {
    /// Where it is read from.
    pub source: Source,
    /// Its name (path or URL).
    pub name: String,
    /// Its content fingerprint.
    pub fingerprint: String,
    /// How it is written.
    pub format: Inference,
    /// Its index in the summary's files.
    pub index: usize,
}

/// Files that are checkpointed together: one file in `max` mode, every file in `ordered` mode
/// (their rows interleave by trade date).
#[derive(Debug, Clone)]
pub struct Unit {
    /// The identity of its progress: the file's fingerprint, or for several files the hash of
    /// theirs (so the same set of contents resumes, whatever the names or the order given).
    pub fingerprint: String,
    /// The files, ordered by fingerprint when there are several.
    pub members: Vec<Member>,
}

impl Unit {
    fn of(mut members: Vec<Member>) -> Self {
        if members.len() == 1 {
            return Self {
                fingerprint: members[0].fingerprint.clone(),
                members,
            };
        }
        members.sort_by(|a, b| (&a.fingerprint, &a.name).cmp(&(&b.fingerprint, &b.name)));
        let mut hasher = Sha256::new();
        hasher.update(b"stockstream ordered set\n");
        for member in &members {
            hasher.update(member.fingerprint.as_bytes());
            hasher.update(b"\n");
        }
        let fingerprint = hasher
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Self {
            fingerprint,
            members,
        }
    }

    /// Names of its files, for messages.
    pub fn names(&self) -> String {
        self.members
            .iter()
            .map(|member| member.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Replays the sources of `options`; blocks until every record is acknowledged: [`prepare`],
/// then [`execute`].
///
/// Cancelling `shutdown` stops reading, waits for what is in flight and records the progress.
/// Runs on a blocking thread (S3 sources block on the caller's Tokio runtime).
pub fn replay(
    config: &Config,
    options: &ReplayOptions,
    shutdown: &CancellationToken,
) -> Result<ReplaySummary> {
    let prepared = prepare(config, options)?;
    execute(config, options, prepared, shutdown)
}

/// The files of a replay with what was inferred about each, ready to replay.
#[derive(Debug)]
pub struct Prepared {
    members: Vec<Member>,
    summary: ReplaySummary,
    started: Instant,
}

impl Prepared {
    /// The summary so far: every file with its format, or why it cannot be replayed.
    pub fn summary(&self) -> &ReplaySummary {
        &self.summary
    }
}

/// Expands the sources, fingerprints every file and infers its format, before anything is sent
/// (and before Kafka is asked anything). A file that cannot be read or whose format cannot be
/// told is an error naming every such file — except in a dry run, whose summary reports them.
pub fn prepare(config: &Config, options: &ReplayOptions) -> Result<Prepared> {
    options.validate()?;
    let started = Instant::now();
    let sources = expand(&options.source_arguments(), &config.s3)?;
    let mut summary = ReplaySummary {
        mode: options.mode.as_str().to_string(),
        dry_run: options.dry_run,
        ..ReplaySummary::default()
    };
    let members = plan(&sources, options, &mut summary);
    let errors = summary.file_errors();
    if !errors.is_empty() && !options.dry_run {
        let failing: Vec<&FileSummary> = summary
            .files
            .iter()
            .filter(|file| file.error.is_some())
            .collect();
        return Err(match failing.as_slice() {
            [file] => Error::Format {
                path: file.file.clone().into(),
                message: format!(
                    "{} (nothing was sent)",
                    file.error.clone().unwrap_or_default()
                ),
            },
            _ => Error::Format {
                path: format!("{} of {} files", errors.len(), summary.files.len()).into(),
                message: format!(
                    "cannot be replayed, nothing was sent: {}",
                    errors.join("; ")
                ),
            },
        });
    }
    Ok(Prepared {
        members,
        summary,
        started,
    })
}

/// Replays prepared files; blocks until every record is acknowledged.
pub fn execute(
    config: &Config,
    options: &ReplayOptions,
    prepared: Prepared,
    shutdown: &CancellationToken,
) -> Result<ReplaySummary> {
    let Prepared {
        members,
        mut summary,
        started,
    } = prepared;
    let emitter = if options.dry_run {
        None
    } else {
        Some(Emitter::new(config)?)
    };
    let mut run = Run::new(config, options, shutdown, emitter.as_ref(), &mut summary);
    let units: Vec<Unit> = match options.mode {
        Mode::Sample => {
            run.sample(&members)?;
            Vec::new()
        }
        Mode::Max => members
            .into_iter()
            .map(|member| Unit::of(vec![member]))
            .collect(),
        Mode::Ordered if members.is_empty() => Vec::new(),
        Mode::Ordered => vec![Unit::of(members)],
    };
    // `--loop` goes round every unit again and again, one pass each.
    let mut first_round = true;
    'rounds: while !units.is_empty() {
        for unit in &units {
            if !run.unit(unit, first_round)? {
                break 'rounds;
            }
        }
        if !options.looping || options.dry_run {
            break;
        }
        first_round = false;
    }
    run.finish_progress();
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Fingerprints every source and infers its format; failures are recorded per file.
fn plan(sources: &[Source], options: &ReplayOptions, summary: &mut ReplaySummary) -> Vec<Member> {
    let mut members = Vec::new();
    for source in sources {
        let name = source.name();
        let index = summary.files.len();
        let inspected = source
            .fingerprint()
            .and_then(|fingerprint| Ok((fingerprint, infer(source, &options.format)?)));
        let mut file = FileSummary {
            file: name.clone(),
            ..FileSummary::default()
        };
        match inspected {
            Ok((fingerprint, format)) => {
                file.fingerprint = fingerprint.clone();
                file.format = Some(format.clone());
                members.push(Member {
                    source: source.clone(),
                    name,
                    fingerprint,
                    format,
                    index,
                });
            }
            Err(error) => {
                file.error = Some(match error {
                    Error::Format { message, .. } => message,
                    other => other.to_string(),
                });
            }
        }
        summary.files.push(file);
    }
    members
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked() {
        let mut options = ReplayOptions::new("x.csv");
        options.speed = Some(2.0);
        assert!(options.validate().is_err(), "speed needs ordered");
        options.mode = Mode::Ordered;
        assert!(options.validate().is_ok());
        options.rate = Some(10.0);
        assert!(options.validate().is_err(), "rate and speed together");
        let mut options = ReplayOptions::new("x.csv");
        options.count = Some(3);
        assert!(options.validate().is_err(), "count needs sample");
        options.mode = Mode::Sample;
        assert!(options.validate().is_ok());
        options.rate = Some(0.0);
        assert!(options.validate().is_err());
        let mut options = ReplayOptions::new("x.csv");
        options.format.symbol = Some("not a symbol".into());
        assert!(options.validate().is_err());
        options.format.symbol = None;
        options.format.date_format = Some("%d".into());
        assert!(options.validate().is_err());
        options.sources.clear();
        options.format.date_format = None;
        assert!(options.validate().is_err(), "no source");
    }

    #[test]
    fn a_set_of_files_is_identified_by_their_contents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut members = Vec::new();
        for (index, (name, content)) in [
            ("b.csv", "Date,Open,High,Low,Close,Adj Close,Volume\n"),
            ("a.csv", "Index,Date,Open,High,Low,Close,Adj Close,Volume\n"),
        ]
        .iter()
        .enumerate()
        {
            let path = dir.path().join(name);
            std::fs::write(&path, content).expect("write");
            let source = Source::local(&path);
            members.push(Member {
                fingerprint: source.fingerprint().expect("fingerprint"),
                format: infer(&source, &FormatOptions::default()).expect("infers"),
                name: name.to_string(),
                source,
                index,
            });
        }
        let forward = Unit::of(members.clone());
        members.reverse();
        let backward = Unit::of(members.clone());
        assert_eq!(forward.fingerprint, backward.fingerprint);
        assert_eq!(forward.names(), backward.names());
        let single = Unit::of(vec![members[0].clone()]);
        assert_eq!(single.fingerprint, members[0].fingerprint);
    }
}
