//! The object store behind the lake.

use std::fmt::Debug;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::config::LakeConfig;
use crate::{Error, Result};

/// An object listed in the lake.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectMeta {
    /// Key relative to the lake root, `/`-separated.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// When the object was last written, where the store says.
    pub modified: Option<chrono::DateTime<chrono::Utc>>,
}

/// Object storage for the lake, with atomic visibility: a reader sees an object whole or not at all.
///
/// Implementations: [`LocalStore`] (a directory) and [`S3Store`](super::S3Store).
#[async_trait::async_trait]
pub trait LakeStore: Send + Sync + Debug {
    /// Writes `bytes` under `key`, replacing any previous object atomically.
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()>;
    /// Writes `bytes` under `key` only if no object exists there, atomically with respect to
    /// other writers: of two concurrent calls for one key exactly one returns `true`. Returns
    /// `false` (and writes nothing) when the key is taken. The sink claims flush ranges with it.
    async fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<bool>;
    /// Reads the object at `key`; [`Error::NotFound`] if there is none.
    async fn get(&self, key: &str) -> Result<Bytes>;
    /// Whether an object exists at `key`.
    async fn exists(&self, key: &str) -> Result<bool>;
    /// Lists the objects whose keys start with `prefix`, sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>>;
    /// Deletes the object at `key`; deleting a missing object succeeds.
    async fn delete(&self, key: &str) -> Result<()>;
    /// Where the lake lives, for logs and for query engines (`file:///…`, `s3://…`).
    fn url(&self) -> String;
}

/// Opens the store described by `config`.
pub async fn open_store(config: &LakeConfig) -> Result<Arc<dyn LakeStore>> {
    match config {
        LakeConfig::Local { root } => Ok(Arc::new(LocalStore::new(root)?)),
        LakeConfig::S3 {
            bucket,
            prefix,
            aws,
            force_path_style,
            request_timeout,
        } => Ok(Arc::new(
            super::s3::S3Store::connect(bucket, prefix, aws, *force_path_style, *request_timeout)
                .await?,
        )),
    }
}

/// Directory below the root where objects are staged before their atomic rename.
const STAGING_DIR: &str = "_stockstream/staging";

/// Numbers staging files uniquely within the process (several stores may share one lake).
static STAGING_SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// A lake in a local directory. `put` writes a staging file, fsyncs it and renames it into place.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// Opens (and creates) the lake directory `root`.
    pub fn new(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root.join(STAGING_DIR)).map_err(|source| Error::Io {
            path: root.to_path_buf(),
            source,
        })?;
        let root = std::fs::canonicalize(root).map_err(|source| Error::Io {
            path: root.to_path_buf(),
            source,
        })?;
        Ok(Self { root })
    }

    /// Root directory of the lake.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &str) -> Result<PathBuf> {
        let relative = Path::new(key);
        let is_plain = !key.is_empty()
            && relative
                .components()
                .all(|component| matches!(component, Component::Normal(_)));
        if !is_plain {
            return Err(Error::InvalidKey {
                key: key.to_string(),
                reason: "keys are relative paths without `.`, `..` or a leading `/`",
            });
        }
        Ok(self.root.join(relative))
    }

    /// Writes a staging file and moves it to `path`: replacing what is there (`rename`), or only
    /// if nothing is (`hard_link`, which fails on an existing target). Returns whether it wrote.
    fn put_blocking(&self, key: &str, path: &Path, bytes: &[u8], replace: bool) -> Result<bool> {
        let lake_error = |source| Error::Lake {
            operation: "put",
            key: key.to_string(),
            source,
        };
        let parent = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(parent).map_err(lake_error)?;
        let staging = self.root.join(STAGING_DIR).join(format!(
            "{}-{}.partial",
            std::process::id(),
            STAGING_SEQUENCE.fetch_add(1, Ordering::Relaxed)
        ));
        let mut file = std::fs::File::create(&staging).map_err(lake_error)?;
        file.write_all(bytes).map_err(lake_error)?;
        file.sync_all().map_err(lake_error)?;
        drop(file);
        let written = if replace {
            std::fs::rename(&staging, path).map_err(lake_error)?;
            true
        } else {
            let linked = std::fs::hard_link(&staging, path);
            let _ = std::fs::remove_file(&staging);
            match linked {
                Ok(()) => true,
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => false,
                Err(error) => return Err(lake_error(error)),
            }
        };
        // Make the rename (or link) itself durable.
        std::fs::File::open(parent)
            .and_then(|directory| directory.sync_all())
            .map_err(lake_error)?;
        Ok(written)
    }

    async fn put_spawned(&self, key: &str, bytes: Bytes, replace: bool) -> Result<bool> {
        let path = self.path_of(key)?;
        let store = self.clone();
        let key = key.to_string();
        tokio::task::spawn_blocking(move || store.put_blocking(&key, &path, &bytes, replace))
            .await
            .map_err(|join| Error::Lake {
                operation: "put",
                key: String::new(),
                source: std::io::Error::other(join.to_string()),
            })?
    }

    fn list_blocking(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        // Walk from the deepest directory the prefix names, then filter by the full prefix.
        let directory_part = prefix
            .rsplit_once('/')
            .map_or("", |(directory, _)| directory);
        let start = if directory_part.is_empty() {
            self.root.clone()
        } else {
            self.path_of(directory_part)?
        };
        let mut objects = Vec::new();
        let mut pending = vec![start];
        while let Some(directory) = pending.pop() {
            let entries = match std::fs::read_dir(&directory) {
                Ok(entries) => entries,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(Error::Lake {
                        operation: "list",
                        key: prefix.to_string(),
                        source,
                    });
                }
            };
            for entry in entries {
                let entry = entry.map_err(|source| Error::Lake {
                    operation: "list",
                    key: prefix.to_string(),
                    source,
                })?;
                let path = entry.path();
                let metadata = entry.metadata().map_err(|source| Error::Lake {
                    operation: "list",
                    key: prefix.to_string(),
                    source,
                })?;
                let Ok(relative) = path.strip_prefix(&self.root) else {
                    continue;
                };
                let key = relative
                    .components()
                    .map(|component| component.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                if key.starts_with(STAGING_DIR) {
                    continue;
                }
                if metadata.is_dir() {
                    pending.push(path);
                } else if key.starts_with(prefix) {
                    objects.push(ObjectMeta {
                        key,
                        size: metadata.len(),
                        modified: metadata.modified().ok().map(chrono::DateTime::from),
                    });
                }
            }
        }
        objects.sort();
        Ok(objects)
    }
}

#[async_trait::async_trait]
impl LakeStore for LocalStore {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        self.put_spawned(key, bytes, true).await.map(|_| ())
    }

    async fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<bool> {
        self.put_spawned(key, bytes, false).await
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        let path = self.path_of(key)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Bytes::from(bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound {
                key: key.to_string(),
            }),
            Err(source) => Err(Error::Lake {
                operation: "get",
                key: key.to_string(),
                source,
            }),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let path = self.path_of(key)?;
        tokio::fs::try_exists(&path)
            .await
            .map_err(|source| Error::Lake {
                operation: "exists",
                key: key.to_string(),
                source,
            })
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let store = self.clone();
        let prefix = prefix.to_string();
        tokio::task::spawn_blocking(move || store.list_blocking(&prefix))
            .await
            .map_err(|join| Error::Lake {
                operation: "list",
                key: String::new(),
                source: std::io::Error::other(join.to_string()),
            })?
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path_of(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::Lake {
                operation: "delete",
                key: key.to_string(),
                source,
            }),
        }
    }

    fn url(&self) -> String {
        format!("file://{}/", self.root.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_store_put_get_list_delete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path()).expect("store");
        store
            .put("t/a=1/f1.parquet", Bytes::from_static(b"one"))
            .await
            .expect("put");
        store
            .put("t/a=2/f2.parquet", Bytes::from_static(b"two"))
            .await
            .expect("put");
        store
            .put("t/a=1/f1.parquet", Bytes::from_static(b"uno"))
            .await
            .expect("overwrite");
        assert_eq!(
            store.get("t/a=1/f1.parquet").await.expect("get"),
            Bytes::from_static(b"uno")
        );
        let keys: Vec<_> = store
            .list("t/")
            .await
            .expect("list")
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(keys, vec!["t/a=1/f1.parquet", "t/a=2/f2.parquet"]);
        assert!(
            store.list("_stockstream/").await.expect("list").is_empty(),
            "staging is hidden"
        );
        assert!(store.exists("t/a=2/f2.parquet").await.expect("exists"));
        store.delete("t/a=2/f2.parquet").await.expect("delete");
        store
            .delete("t/a=2/f2.parquet")
            .await
            .expect("delete twice");
        assert!(matches!(
            store.get("t/a=2/f2.parquet").await,
            Err(Error::NotFound { .. })
        ));
        assert!(
            store
                .put_if_absent("t/claim", Bytes::from_static(b"mine"))
                .await
                .expect("claims")
        );
        assert!(
            !store
                .put_if_absent("t/claim", Bytes::from_static(b"theirs"))
                .await
                .expect("refuses")
        );
        assert_eq!(
            store.get("t/claim").await.expect("get"),
            Bytes::from_static(b"mine")
        );
        assert!(matches!(
            store.put("../escape", Bytes::new()).await,
            Err(Error::InvalidKey { .. })
        ));
    }
}
