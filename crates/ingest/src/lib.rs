//! `stockstream-ingest`: gets stock market data into Kafka.
//!
//! - `replay`: every row of an `indexProcessed.csv`-shaped file into the `quotes` topic, as JSON
//!   keyed by symbol with a schema-version header, through an idempotent producer (`acks=all`).
//!   Bad rows go to `quotes.dlq` with the file, line and reason. Progress per file is recorded by
//!   content fingerprint, so replaying the same file again resumes instead of sending rows twice.
//! - `generate`: a deterministic synthetic dataset of the same shape (GBM prices per symbol).
//! - `topics`: creates the pipeline's topics (brokers such as tansu do not auto-create them).
//! - `count`: how many records a topic holds (used by `make run` to wait for the lake).

pub mod config;
pub mod error;
pub mod generate;
pub mod offsets;
pub mod replay;

pub use crate::config::Config;
pub use crate::error::{Error, Result};
pub use crate::generate::{GenerateOptions, QuoteGenerator, write_csv};
pub use crate::replay::{ReplayOptions, ReplaySummary, replay};
