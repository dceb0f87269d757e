//! The local lake's object store: `object_store`'s `LocalFileSystem`, except that small ranged
//! reads are done on the calling thread.
//!
//! `LocalFileSystem` sends every read to tokio's blocking pool. A full scan of a lake of small
//! files reads a few kilobytes of column chunks per file, so each file costs two thread hand-offs
//! (a futex wake, a context switch each way) for a `pread` that the page cache answers in
//! microseconds; on two cores `perf` put about a tenth of a full scan's CPU in that scheduling.
//! Reads of at most [`INLINE_READ_BYTES`] in all are done in place, as DataFusion's own decoding
//! is: a read that misses the page cache blocks the worker for one disk access. Larger reads,
//! and everything else, go to `LocalFileSystem` unchanged.

use std::fmt;
use std::ops::Range;
use std::os::unix::fs::FileExt;

use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};

/// Ranged reads of at most this many bytes in all are done on the calling thread.
pub(crate) const INLINE_READ_BYTES: u64 = 1 << 20;

/// A local directory as an object store, reading small ranges in place (see the module docs).
#[derive(Debug)]
pub(crate) struct LocalLakeStore {
    inner: LocalFileSystem,
}

impl LocalLakeStore {
    /// The store over `inner`'s directory.
    pub(crate) fn new(inner: LocalFileSystem) -> Self {
        Self { inner }
    }
}

impl fmt::Display for LocalLakeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalLakeStore({})", self.inner)
    }
}

/// Reads `ranges` of the file at `path`, each with one `pread`.
fn read_ranges(path: &std::path::Path, ranges: &[Range<u64>]) -> object_store::Result<Vec<Bytes>> {
    let file = std::fs::File::open(path).map_err(|source| io_error(path, source))?;
    ranges
        .iter()
        .map(|range| {
            let length = range.end.checked_sub(range.start).ok_or_else(|| {
                io_error(
                    path,
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("range {range:?} ends before it starts"),
                    ),
                )
            })?;
            let mut buffer = vec![0; length as usize];
            file.read_exact_at(&mut buffer, range.start)
                .map_err(|source| io_error(path, source))?;
            Ok(Bytes::from(buffer))
        })
        .collect()
}

/// `source` as `object_store`'s error: `NotFound` for a missing file, as `LocalFileSystem` says.
fn io_error(path: &std::path::Path, source: std::io::Error) -> object_store::Error {
    if source.kind() == std::io::ErrorKind::NotFound {
        object_store::Error::NotFound {
            path: path.display().to_string(),
            source: Box::new(source),
        }
    } else {
        object_store::Error::Generic {
            store: "LocalLakeStore",
            source: format!("reading {}: {source}", path.display()).into(),
        }
    }
}

#[async_trait::async_trait]
impl ObjectStore for LocalLakeStore {
    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        let total: u64 = ranges
            .iter()
            .map(|range| range.end.saturating_sub(range.start))
            .sum();
        if total > INLINE_READ_BYTES {
            return self.inner.get_ranges(location, ranges).await;
        }
        read_ranges(&self.inner.path_to_filesystem(location)?, ranges)
    }

    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use object_store::ObjectStoreExt;

    use super::*;

    /// The same bytes and errors as `LocalFileSystem`, read in place or through it.
    #[tokio::test]
    async fn ranged_reads_match_the_local_file_system() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let reference = LocalFileSystem::new_with_prefix(dir.path())?;
        let store = LocalLakeStore::new(LocalFileSystem::new_with_prefix(dir.path())?);
        let data: Vec<u8> = (0..3 * INLINE_READ_BYTES).map(|byte| byte as u8).collect();
        let location = Path::from("quotes/symbol=HSI/year=1987/file.parquet");
        store.put(&location, data.clone().into()).await?;

        let small = [0..10, 4096..8192, 100..101, 7..7];
        let large = [
            0..INLINE_READ_BYTES,
            INLINE_READ_BYTES..2 * INLINE_READ_BYTES + 3,
        ];
        for ranges in [&small[..], &large[..]] {
            let ours = store.get_ranges(&location, ranges).await?;
            assert_eq!(ours, reference.get_ranges(&location, ranges).await?);
            for (bytes, range) in ours.iter().zip(ranges) {
                assert_eq!(bytes[..], data[range.start as usize..range.end as usize]);
            }
        }

        let missing = Path::from("quotes/symbol=HSI/year=1987/gone.parquet");
        let outcome = store.get_ranges(&missing, &small).await;
        assert!(
            matches!(outcome, Err(object_store::Error::NotFound { .. })),
            "{outcome:?}"
        );
        // One range within the file, one running past its end: the read fails as a whole.
        let past_end = [0..4, data.len() as u64 - 2..data.len() as u64 + 2];
        assert!(store.get_ranges(&location, &past_end).await.is_err());
        Ok(())
    }
}
