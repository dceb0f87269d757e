//! `stockstream-ingest`: gets stock market data into Kafka, without losing or repeating a row.
//!
//! - `replay`: quote files into the `quotes` topic in one of three modes ([`Mode`]): `max` (file
//!   order, as fast as the broker takes it), `ordered` (a market replay in trade-date order paced
//!   by trading days or rows per second), `sample` (the original tutorial: a random row every
//!   interval). Sources are files, directories, globs and `s3://` objects, plain or gzip/zstd
//!   ([`sources`]); each file's delimiter, decimal separator, date format (day/month order settled
//!   by the whole file), symbol and US-dollar close are inferred before a row is sent ([`sniff`])
//!   or given by flags. Records are JSON keyed by symbol with a schema-version header, sent by an
//!   idempotent producer (`acks=all`); bad rows go to `quotes.dlq` with the file, line and
//!   reason. Progress is recorded per file content ([`offsets`]) and the tail a crashed run left
//!   on the log is read back ([`emit::recover`]), so a restart — even after SIGKILL — sends every
//!   row exactly once.
//! - `generate`: deterministic synthetic quotes (GBM prices per symbol) as a CSV or NDJSON file,
//!   or streamed to Kafka at a rate.
//! - `serve`: the push service, `POST /v1/quotes` with NDJSON or CSV bodies ([`serve`]).
//! - `topics`: creates the pipeline's topics (brokers such as tansu do not auto-create them).
//! - `count`: how many records a topic holds (used by `make run` to wait for the lake).
//!
//! Files:
//! - `lib.rs` (this overview and [`run`], the push service), `main.rs` (parses the command
//!   line and runs the service or a command), `cli.rs` (the arguments, one function per one-shot
//!   command, exit codes), `config.rs` (`[ingest]`, `[http]` and the shared sections), `error.rs`;
//! - `sources/` — where bytes come from: `mod.rs` (a source and how to open it), `local.rs`
//!   (files, directories and globs), `compression.rs` (gzip and zstd), `s3.rs` (objects);
//! - `sniff.rs` — per-file inference of delimiter, decimal separator, date format and columns;
//! - `reader/` — `mod.rs` (the reader's parts), `records.rs` (CSV records with their lines),
//!   `columns.rs` (header columns and aliases), `dates.rs`, `numbers.rs`, `rows.rs` (a row as a
//!   quote);
//! - `replay/` — `mod.rs` (options and the entry point), one file per mode (`max.rs`,
//!   `ordered.rs`, `sample.rs`), `checkpoint.rs` (passes and resume), `run.rs` (per-row handling),
//!   `summary.rs`;
//! - `offsets.rs` (the source-offset store), `emit.rs` (producing with origin headers, reading
//!   back a crashed run's tail, pacing), `generate.rs`;
//! - `serve/` — the push service: `mod.rs` (start, router, OpenAPI description, Kafka
//!   readiness), `push.rs` (the `POST /v1/quotes` handler), `body.rs` (JSON, NDJSON and CSV
//!   bodies).

pub mod cli;
pub mod config;
pub mod emit;
pub mod error;
pub mod generate;
pub mod offsets;
pub mod reader;
pub mod replay;
pub mod serve;
pub mod sniff;
pub mod sources;

pub use crate::config::Config;
pub use crate::error::{Error, Result};
pub use crate::generate::{
    FileFormat, GenerateOptions, QuoteGenerator, StreamSummary, stream, write_csv, write_file,
};
pub use crate::replay::{FileSummary, Mode, ReplayOptions, ReplaySummary, replay};

/// Runs the push service (`stockstream-ingest serve`) until `shutdown`, then drains: stops
/// accepting requests, answers the open ones and flushes the producer.
pub async fn run(config: Config, shutdown: tokio_util::sync::CancellationToken) -> Result<()> {
    serve::serve(config, shutdown).await
}
