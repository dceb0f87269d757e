//! Shared foundation of every stockstream service.
//!
//! stockstream moves market data through a pipeline of small services:
//!
//! ```text
//! CSV / feeds ──ingest──▶ Kafka `quotes` ──s3-sink──▶ Parquet lake ──lake.commits──▶ glue-crawler ──▶ catalog
//!                                                                                       query-api ◀──┘ (SQL)
//! ```
//!
//! This crate holds what they must agree on:
//! - [`record`]: the quote record, its validation and its wire format on Kafka;
//! - [`lake`]: the lake's layout (Hive-style partition paths, object keys), the Arrow/Parquet schema
//!   and the [`lake::LakeStore`] trait with its local-filesystem and S3 backends;
//! - [`catalog`]: the Glue-shaped catalog model shared by the crawler (writer) and the query API (reader);
//! - [`events`]: the `lake.commits` event the sink publishes for every committed file;
//! - [`headers`]: the names of the Kafka headers (origin, dead-letter reason, schema version);
//! - [`config`]: layered, typed and validated configuration (defaults → TOML → `STOCKSTREAM__…` env);
//!   [`config_checks`]: the check every service's tests run that config errors name their key;
//! - [`kafka`]: librdkafka client settings and topic administration;
//! - [`aws_error`]: AWS SDK errors classified by code and status (what may be retried);
//! - [`secret`]: which settings are secrets, their redaction in `Debug` output and errors, and the
//!   refusal of configuration files with secrets that every user can read;
//! - [`telemetry`], [`http`], [`shutdown`]: logs, Prometheus metrics, health endpoints and signals;
//! - [`sync`]: locks that keep working after a panic elsewhere.
//!
//! Files: `lib.rs`, `error.rs` (the crate's error and whether it is retryable), `record.rs`,
//! `events.rs`, `headers.rs`, `catalog.rs`, `config_checks.rs`, `secret.rs`, `aws_error.rs`,
//! `telemetry.rs`, `shutdown.rs`, `sync.rs`; `config/` — `mod.rs` (loading, the Kafka, telemetry
//! and HTTP sections, shared validators), `lake.rs` (the `[lake]` section); `kafka/` — `mod.rs`
//! (client settings, topic administration, watermarks, headers), `producer.rs` (the
//! delivery-tracking producer); `http/` — `mod.rs`
//! (readiness and the operations endpoints), `openapi.rs` (their OpenAPI description and `/openapi.json`), `server.rs` (the bounded HTTP/1
//! server); `lake/` — `mod.rs` (the lake's public face and store selection), `store.rs` (the
//! [`lake::LakeStore`] trait and the local-disk backend), `s3.rs` (the S3 backend: conditional
//! writes, multipart uploads), `layout.rs` (keys, Hive paths, data-file names and ranges),
//! `template.rs` (partition templates), `parquet.rs` (the Arrow schema and Parquet encoding),
//! `intent.rs` (the sink's flush intents), `maintenance.rs` (`[lake.compaction]` and
//! `[lake.retention]` settings).

pub mod aws_error;
pub mod catalog;
pub mod config;
pub mod config_checks;
pub mod error;
pub mod events;
pub mod headers;
pub mod http;
pub mod kafka;
pub mod lake;
pub mod record;
pub mod secret;
pub mod shutdown;
pub mod sync;
pub mod telemetry;

pub use error::{Error, Result};
