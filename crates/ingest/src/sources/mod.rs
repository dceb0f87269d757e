//! Where a replay's bytes come from: files, directories and globs on local disk ([`local`]),
//! objects on S3 ([`s3`]), each plain or compressed with gzip or zstd ([`compression`]).
//!
//! A replay names its sources as arguments (`data/quotes.csv`, `exports/`, `'exports/*.csv.gz'`,
//! `s3://bucket/raw/hsi.csv`, `s3://bucket/raw/`); [`expand`] turns them into a list of
//! [`Source`]s, each opened as decoded text as often as needed (once to infer its format, once to
//! replay it) and identified by its content ([`Source::fingerprint`]).

pub mod compression;
pub mod local;
pub mod s3;

use std::io::{BufRead, Read};
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::config::S3Settings;
use crate::error::{Error, Result};
pub use compression::Compression;
use s3::S3Objects;

/// Bytes of a source's decoded text that identify it.
const FINGERPRINT_BYTES: u64 = 64 * 1024;

/// Where one source lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A file on local disk.
    Local(PathBuf),
    /// An object on S3.
    S3 {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
    },
}

/// One input file of a replay.
#[derive(Debug, Clone)]
pub struct Source {
    location: Location,
    s3: Option<S3Objects>,
}

/// A source opened for reading: its decoded text and what is known about it.
pub struct Opened {
    /// The decoded text.
    pub reader: Box<dyn BufRead + Send>,
    /// The compression found from the first bytes.
    pub compression: Compression,
    /// Size of the decoded text, when known without reading it (a plain local file).
    pub total_bytes: Option<u64>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Opened")
            .field("compression", &self.compression)
            .field("total_bytes", &self.total_bytes)
            .finish_non_exhaustive()
    }
}

impl Source {
    /// A local file.
    pub fn local(path: impl Into<PathBuf>) -> Self {
        Self {
            location: Location::Local(path.into()),
            s3: None,
        }
    }

    /// Where the source lives.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The name shown to people and stamped on dead letters: the path or `s3://bucket/key`.
    pub fn name(&self) -> String {
        match &self.location {
            Location::Local(path) => path.display().to_string(),
            Location::S3 { bucket, key } => format!("s3://{bucket}/{key}"),
        }
    }

    /// The file name without directories and without the `.csv`/`.tsv`/`.txt` and
    /// compression extensions: `exports/^HSI.csv.gz` → `^HSI` (a symbol when the file has none).
    pub fn stem(&self) -> String {
        let name = match &self.location {
            Location::Local(path) => path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
            Location::S3 { key, .. } => key.rsplit('/').next().unwrap_or(key).to_string(),
        };
        let mut stem = name.as_str();
        for extensions in [
            compression::EXTENSIONS.as_slice(),
            DATA_EXTENSIONS.as_slice(),
        ] {
            if let Some(stripped) = extensions.iter().find_map(|extension| {
                let at = stem.len().checked_sub(extension.len())?;
                let tail = stem.get(at..)?;
                tail.eq_ignore_ascii_case(extension).then(|| &stem[..at])
            }) {
                stem = stripped;
            }
        }
        stem.to_string()
    }

    /// Opens the source's decoded text from the start.
    pub fn open(&self) -> Result<Opened> {
        let (raw, raw_size): (Box<dyn Read + Send>, Option<u64>) = match &self.location {
            Location::Local(path) => {
                let file = std::fs::File::open(path).map_err(|source| Error::Read {
                    path: path.clone(),
                    source,
                })?;
                let size = file.metadata().ok().map(|metadata| metadata.len());
                (Box::new(file), size)
            }
            Location::S3 { bucket, key } => {
                let objects = self.s3.as_ref().ok_or_else(|| {
                    Error::Internal(format!("{}: no S3 client was configured", self.name()))
                })?;
                (Box::new(objects.open(bucket, key)?), None)
            }
        };
        let (reader, compression) =
            compression::decode(raw).map_err(|source| self.read_error(source))?;
        Ok(Opened {
            reader,
            compression,
            total_bytes: raw_size.filter(|_| compression == Compression::None),
        })
    }

    /// The source's identity: hex SHA-256 of the first 64 KiB of its decoded text (as Vector's
    /// checksum fingerprint). The same content keeps its progress when renamed, moved,
    /// compressed or uploaded; appending rows resumes at the first new row.
    pub fn fingerprint(&self) -> Result<String> {
        let opened = self.open()?;
        let mut head = Vec::new();
        opened
            .reader
            .take(FINGERPRINT_BYTES)
            .read_to_end(&mut head)
            .map_err(|source| self.read_error(source))?;
        Ok(Sha256::digest(&head)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect())
    }

    /// A read error naming the source.
    pub fn read_error(&self, source: std::io::Error) -> Error {
        Error::Read {
            path: PathBuf::from(self.name()),
            source,
        }
    }
}

/// Extensions of the files a directory or S3 prefix contributes (before any compression
/// extension).
pub const DATA_EXTENSIONS: [&str; 3] = [".csv", ".tsv", ".txt"];

/// Whether a file name is a data file, plain or compressed.
pub fn is_data_file(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let base = compression::EXTENSIONS
        .iter()
        .find_map(|extension| lower.strip_suffix(extension))
        .unwrap_or(&lower);
    !lower.starts_with('.')
        && DATA_EXTENSIONS
            .iter()
            .any(|extension| base.ends_with(extension))
}

/// Turns source arguments into sources, in the order given (a directory's or glob's files and an
/// S3 prefix's objects sorted by name), each once.
pub fn expand(arguments: &[String], s3: &S3Settings) -> Result<Vec<Source>> {
    let mut sources: Vec<Source> = Vec::new();
    let mut objects: Option<S3Objects> = None;
    for argument in arguments {
        let found = match argument.strip_prefix("s3://") {
            Some(rest) => {
                let client = match &objects {
                    Some(client) => client.clone(),
                    None => objects.insert(S3Objects::connect(s3)?).clone(),
                };
                client.expand(argument, rest)?
            }
            None => local::expand(argument)?,
        };
        for source in found {
            if !sources
                .iter()
                .any(|known| known.location == source.location)
            {
                sources.push(source);
            }
        }
    }
    if sources.is_empty() {
        return Err(Error::Usage(
            "nothing to replay: give a file, a directory, a glob or an s3:// URL".into(),
        ));
    }
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_drop_directories_and_extensions() {
        assert_eq!(Source::local("exports/^HSI.csv.gz").stem(), "^HSI");
        assert_eq!(Source::local("GDAXI.CSV").stem(), "GDAXI");
        assert_eq!(Source::local("n225.tsv.zst").stem(), "n225");
        assert_eq!(Source::local("plain").stem(), "plain");
        let object = Source {
            location: Location::S3 {
                bucket: "b".into(),
                key: "raw/2024/AAPL.csv".into(),
            },
            s3: None,
        };
        assert_eq!(object.stem(), "AAPL");
        assert_eq!(object.name(), "s3://b/raw/2024/AAPL.csv");
    }

    #[test]
    fn data_files_by_extension() {
        assert!(is_data_file("a.csv"));
        assert!(is_data_file("a.CSV.gz"));
        assert!(is_data_file("a.tsv.zst"));
        assert!(!is_data_file("README.md"));
        assert!(!is_data_file(".hidden.csv"));
        assert!(!is_data_file("a.gz"));
    }

    #[test]
    fn fingerprints_follow_decoded_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let plain = dir.path().join("a.csv");
        let renamed = dir.path().join("b.csv");
        let gzipped = dir.path().join("a.csv.gz");
        std::fs::write(&plain, "same").expect("write");
        std::fs::write(&renamed, "same").expect("write");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut encoder, b"same").expect("gzip");
        std::fs::write(&gzipped, encoder.finish().expect("gzip")).expect("write");
        let of = |path: &std::path::Path| Source::local(path).fingerprint().expect("fingerprint");
        assert_eq!(of(&plain), of(&renamed));
        assert_eq!(of(&plain), of(&gzipped));
        std::fs::write(&renamed, "other").expect("write");
        assert_ne!(of(&plain), of(&renamed));
    }
}
