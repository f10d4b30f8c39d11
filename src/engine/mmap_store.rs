//! The local file system as DataFusion reads it, with ranged reads served
//! from memory maps.
//!
//! `object_store`'s `LocalFileSystem` reads every byte range the Parquet
//! reader asks for (whole column chunks) into a fresh buffer: the kernel
//! zeroes the new pages and then copies the file into them. On a
//! tag-and-window segment that was a fifth of the run. Here each file is
//! mapped once and a range is a slice of the map: no copy, no zeroing, the
//! page cache's pages themselves. Everything else (listing, metadata, writes)
//! goes to `LocalFileSystem`.
//!
//! A file truncated by another process while it is mapped would make reads
//! past its new end fault; Seg reads data directories that nothing writes
//! while a query runs, as every Parquet reader assumes anyway.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::Mutex;

use async_trait::async_trait;
use futures::stream::{BoxStream, StreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// See the module documentation.
#[derive(Debug, Default)]
pub struct MmapStore {
    inner: LocalFileSystem,
    /// Each file's whole contents, mapped, by path.
    maps: Mutex<HashMap<std::path::PathBuf, bytes::Bytes>>,
}

impl MmapStore {
    pub fn new() -> Self {
        MmapStore::default()
    }

    /// The mapped contents of the file at `location`.
    fn map(&self, location: &Path) -> Result<bytes::Bytes> {
        let path = self.inner.path_to_filesystem(location)?;
        if let Some(b) = self.maps.lock().ok().and_then(|m| m.get(&path).cloned()) {
            return Ok(b);
        }
        let fail = |e: std::io::Error| object_store::Error::Generic {
            store: "MmapStore",
            source: format!("{}: {e}", path.display()).into(),
        };
        let file = std::fs::File::open(&path).map_err(fail)?;
        let len = file.metadata().map_err(fail)?.len();
        let bytes = if len == 0 {
            bytes::Bytes::new()
        } else {
            // SAFETY: the map is read-only and lives as long as the `Bytes`
            // that own it; see the module documentation on files truncated
            // while mapped.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(fail)?;
            bytes::Bytes::from_owner(map)
        };
        if let Ok(mut maps) = self.maps.lock() {
            maps.insert(path, bytes.clone());
        }
        Ok(bytes)
    }

    /// `range` of the mapped file, or an error naming both when it lies
    /// outside the file.
    fn slice(&self, location: &Path, range: Range<u64>) -> Result<bytes::Bytes> {
        let all = self.map(location)?;
        let len = all.len() as u64;
        if range.start > range.end || range.end > len {
            return Err(object_store::Error::Generic {
                store: "MmapStore",
                source: format!(
                    "{location}: range {}..{} is outside the file ({len} bytes)",
                    range.start, range.end
                )
                .into(),
            });
        }
        Ok(all.slice(range.start as usize..range.end as usize))
    }
}

impl fmt::Display for MmapStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MmapStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for MmapStore {
    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> Result<Vec<bytes::Bytes>> {
        ranges
            .iter()
            .map(|r| self.slice(location, r.clone()))
            .collect()
    }

    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        if options.head {
            return self.inner.get_opts(location, options).await;
        }
        // The file system checks the options and resolves the range; the
        // bytes come from the map.
        let mut got = self.inner.get_opts(location, options).await?;
        if !got.range.is_empty() {
            let bytes = self.slice(location, got.range.clone())?;
            got.payload =
                GetResultPayload::Stream(futures::stream::once(async move { Ok(bytes) }).boxed());
        }
        Ok(got)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;

    #[tokio::test]
    async fn ranges_come_from_the_file_and_bad_ranges_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.bin");
        let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        std::fs::write(&file, &data).unwrap();
        let store = MmapStore::new();
        let location = Path::from_filesystem_path(&file).unwrap();
        let got = store
            .get_ranges(&location, &[0..10, 9_990..10_000, 500..500])
            .await
            .unwrap();
        assert_eq!(got[0].as_ref(), &data[0..10]);
        assert_eq!(got[1].as_ref(), &data[9_990..10_000]);
        assert!(got[2].is_empty());
        assert_eq!(
            store.get_range(&location, 100..200).await.unwrap().as_ref(),
            &data[100..200]
        );
        assert_eq!(
            store.get(&location).await.unwrap().bytes().await.unwrap(),
            data
        );
        assert_eq!(store.head(&location).await.unwrap().size, 10_000);
        let err = store
            .get_ranges(&location, &[9_000..10_001])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("outside the file"), "{err}");
        let missing = Path::from_filesystem_path(dir.path().join("nope"))
            .unwrap_or_else(|_| Path::from("nope"));
        assert!(store.get_range(&missing, 0..1).await.is_err());
    }
}
