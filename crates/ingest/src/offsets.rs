//! Source offsets: how far each input file has been replayed, like a Kafka Connect source offset.
//!
//! A file is identified by its content, not its name ([`crate::sources::Source::fingerprint`]):
//! renaming, moving, compressing or uploading a file keeps its progress, and appending rows to a
//! file resumes at the first new row. The store is a JSON document in `ingest.state_dir`, replaced
//! atomically.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Version of the store's format.
const DOCUMENT_VERSION: u32 = 2;

/// Progress of one file (or, in `ordered` mode, one set of files) into one topic, like a Kafka
/// Connect source offset.
///
/// A replay goes through the file in *passes* (`--from-start` and `--loop` start a new one). Within
/// a pass every row has a *position* in the order the mode sends rows (the file line in `max`
/// mode, the rank in trade-date order in `ordered` mode); all rows up to [`SourceOffset::position`]
/// are acknowledged by Kafka. Rows after it may be on the log too (acknowledged, or in flight when
/// the process died): they lie at or after [`SourceOffset::scan_from`], where a restart reads them
/// back instead of sending them again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceOffset {
    /// Path the file was last replayed from (informational).
    pub file: PathBuf,
    /// Replay mode of the pass (`max` or `ordered`): positions mean different things in each.
    pub mode: String,
    /// Number of the current pass, from 1.
    pub pass: u64,
    /// Every row of the pass up to this position is acknowledged.
    pub position: u64,
    /// Whether the pass reached the end of the file.
    pub complete: bool,
    /// Records produced in this pass so far.
    pub produced: u64,
    /// Rows dead-lettered in this pass so far.
    pub dead_lettered: u64,
    /// All-empty rows skipped in this pass so far.
    pub skipped_empty: u64,
    /// Per `topic/partition`: the offset from which records of this pass beyond `position` may
    /// be on the log.
    pub scan_from: BTreeMap<String, i64>,
    /// When the offset was recorded.
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Document {
    version: u32,
    sources: BTreeMap<String, SourceOffset>,
}

/// The source-offset store.
#[derive(Debug)]
pub struct OffsetStore {
    path: PathBuf,
    document: Document,
}

impl OffsetStore {
    /// Opens the store in `state_dir` (created if missing).
    pub fn open(state_dir: &Path) -> Result<Self> {
        let path = state_dir.join("source-offsets.json");
        let error = |message: String| Error::Offsets {
            path: path.clone(),
            message,
        };
        std::fs::create_dir_all(state_dir).map_err(|io| error(io.to_string()))?;
        let fresh = Document {
            version: DOCUMENT_VERSION,
            sources: BTreeMap::new(),
        };
        let document = match std::fs::read(&path) {
            Ok(bytes) => {
                let document: Document =
                    serde_json::from_slice(&bytes).map_err(|json| error(json.to_string()))?;
                if document.version != DOCUMENT_VERSION {
                    return Err(error(format!(
                        "format version {} is not {DOCUMENT_VERSION}; move the file away to start over",
                        document.version
                    )));
                }
                document
            }
            Err(io) if io.kind() == std::io::ErrorKind::NotFound => fresh,
            Err(io) => return Err(error(io.to_string())),
        };
        Ok(Self { path, document })
    }

    fn key(topic: &str, fingerprint: &str) -> String {
        format!("{topic}/{fingerprint}")
    }

    /// Progress of the file with `fingerprint` into `topic`.
    pub fn get(&self, topic: &str, fingerprint: &str) -> Option<&SourceOffset> {
        self.document.sources.get(&Self::key(topic, fingerprint))
    }

    /// Records progress and writes the store atomically (write, fsync, rename).
    pub fn record(&mut self, topic: &str, fingerprint: &str, offset: SourceOffset) -> Result<()> {
        self.document
            .sources
            .insert(Self::key(topic, fingerprint), offset);
        let error = |message: String| Error::Offsets {
            path: self.path.clone(),
            message,
        };
        let bytes =
            serde_json::to_vec_pretty(&self.document).map_err(|json| error(json.to_string()))?;
        let staging = self.path.with_extension("json.partial");
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut file = std::fs::File::create(&staging)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&staging, &self.path)
        };
        write().map_err(|io| error(io.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_persist() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = OffsetStore::open(dir.path()).expect("open");
        assert!(store.get("quotes", "f").is_none());
        let offset = SourceOffset {
            file: "x.csv".into(),
            mode: "max".into(),
            pass: 1,
            position: 42,
            complete: false,
            produced: 41,
            dead_lettered: 0,
            skipped_empty: 0,
            scan_from: BTreeMap::from([("quotes/0".to_string(), 17)]),
            updated_at: Utc::now(),
        };
        store.record("quotes", "f", offset.clone()).expect("record");
        let reopened = OffsetStore::open(dir.path()).expect("reopen");
        assert_eq!(reopened.get("quotes", "f"), Some(&offset));
        assert!(reopened.get("other", "f").is_none());
    }
}
