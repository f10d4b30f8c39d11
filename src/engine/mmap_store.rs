//! The local file system as DataFusion reads it, with ranged reads served
//! from memory maps.
//!
//! `object_store`'s `LocalFileSystem` reads every byte range the Parquet
//! reader asks for (whole column chunks) into a fresh buffer: the kernel
//! zeroes the new pages and then copies the file into them. On a
//! tag-and-window segment that was a fifth of the run. Here the ranges of a
//! request are slices of one memory map of the file: no copy, no zeroing,
//! the page cache's pages themselves (short spans are read, on the calling
//! thread, without `LocalFileSystem`'s hop to a blocking one). Everything
//! else (listing, `head`, writes) goes to `LocalFileSystem`.
//!
//! A file truncated by another process while it is mapped makes reads past
//! its new end fault (SIGBUS). [`MmapStore::new`] installs a handler for
//! that signal which says so on stderr and exits with code 2 (a data
//! error) instead of letting the signal kill the process; `SEG_MMAP=0`
//! reads with plain reads instead, where such a change is an ordinary
//! error.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

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
}

/// Makes a SIGBUS (a mapped file shrank under the reader) end the process
/// with a message and exit code 2, as other data errors do. Installed once.
fn install_sigbus_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        extern "C" fn on_sigbus(_: libc::c_int) {
            const TEXT: &[u8] =
                b"error: a data file was truncated or replaced while seg was reading it \
(SIGBUS on its memory map); nothing was written. Run again once the data is stable, \
or set SEG_MMAP=0 to read without memory maps.\n";
            // SAFETY: write(2) and _exit(2) are async-signal-safe.
            unsafe {
                libc::write(2, TEXT.as_ptr().cast(), TEXT.len());
                libc::_exit(2);
            }
        }
        // SAFETY: the handler only calls async-signal-safe functions.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
        }
    });
}

/// Maps start at a multiple of this (a multiple of every page size Linux
/// uses).
const ALIGN: u64 = 1 << 16;

/// Spans shorter than this are read into memory instead of mapped: a map
/// costs a page fault per few pages and, when it is dropped, an unmap that
/// interrupts every core to flush its TLB. On 2 000 files of 90 kB the
/// unmaps alone were a tenth of a run; past a few hundred kilobytes the
/// copy a read makes costs more.
const SMALL: u64 = 256 << 10;

impl MmapStore {
    /// The store, with the SIGBUS handler of the module documentation.
    pub fn new() -> Self {
        install_sigbus_handler();
        MmapStore::default()
    }

    /// The file at `location`, open, with its metadata and its path in the
    /// file system (errors name the path).
    fn open(&self, location: &Path) -> Result<(std::fs::File, std::fs::Metadata, PathBuf)> {
        let path = self.inner.path_to_filesystem(location)?;
        let opened = std::fs::File::open(&path).and_then(|file| {
            let metadata = file.metadata()?;
            if metadata.is_dir() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::IsADirectory,
                    "is a directory",
                ));
            }
            Ok((file, metadata))
        });
        match opened {
            Ok((file, metadata)) => Ok((file, metadata, path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(object_store::Error::NotFound {
                    path: path.display().to_string(),
                    source: e.into(),
                })
            }
            Err(e) => Err(failure(&path, &e)),
        }
    }

    /// `ranges` of the file at `location`, from one map of the span they
    /// cover (one read when it is short), or an error naming a range that
    /// lies outside the file. The map
    /// lives as long as one of the slices does, so only the ranges in use
    /// are mapped (and count in the process's resident memory).
    fn slices(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<bytes::Bytes>> {
        let (file, metadata, path) = self.open(location)?;
        slices_of(&file, metadata.len(), &path, ranges)
    }
}

/// An error of the store naming the file.
fn failure(path: &std::path::Path, e: &dyn fmt::Display) -> object_store::Error {
    object_store::Error::Generic {
        store: "MmapStore",
        source: format!("{}: {e}", path.display()).into(),
    }
}

/// `ranges` of `file` (`len` bytes, at `path`): see [`MmapStore::slices`].
fn slices_of(
    file: &std::fs::File,
    len: u64,
    path: &std::path::Path,
    ranges: &[Range<u64>],
) -> Result<Vec<bytes::Bytes>> {
    let fail = |e: &dyn fmt::Display| failure(path, e);
    for r in ranges {
        if r.start > r.end || r.end > len {
            return Err(fail(&format!(
                "range {}..{} is outside the file ({len} bytes)",
                r.start, r.end
            )));
        }
    }
    let lo = ranges.iter().map(|r| r.start).min().unwrap_or(0);
    let hi = ranges.iter().map(|r| r.end).max().unwrap_or(0);
    if hi <= lo {
        return Ok(vec![bytes::Bytes::new(); ranges.len()]);
    }
    if hi - lo < SMALL {
        use std::os::unix::fs::FileExt;
        let mut buffer = vec![0; usize::try_from(hi - lo).map_err(|e| fail(&e))?];
        file.read_exact_at(&mut buffer, lo).map_err(|e| fail(&e))?;
        let all = bytes::Bytes::from(buffer);
        return Ok(ranges
            .iter()
            .map(|r| all.slice((r.start - lo) as usize..(r.end - lo) as usize))
            .collect());
    }
    let base = lo - lo % ALIGN;
    let span = usize::try_from(hi - base).map_err(|e| fail(&e))?;
    // SAFETY: the map is read-only and lives as long as the `Bytes` that
    // own it; see the module documentation on files truncated while
    // mapped.
    let map = unsafe { memmap2::MmapOptions::new().offset(base).len(span).map(file) }
        .map_err(|e| fail(&e))?;
    let all = bytes::Bytes::from_owner(map);
    Ok(ranges
        .iter()
        .map(|r| all.slice((r.start - base) as usize..(r.end - base) as usize))
        .collect())
}

/// The metadata `LocalFileSystem` gives a file, with its entity tag
/// (inode, modification time in microseconds and size, as it makes it).
fn object_meta(
    location: &Path,
    metadata: &std::fs::Metadata,
    path: &std::path::Path,
) -> Result<ObjectMeta> {
    use std::os::unix::fs::MetadataExt;
    let modified = metadata.modified().map_err(|e| failure(path, &e))?;
    let micros = modified
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros();
    Ok(ObjectMeta {
        location: location.clone(),
        last_modified: modified.into(),
        size: metadata.len(),
        e_tag: Some(format!(
            "{:x}-{micros:x}-{:x}",
            metadata.ino(),
            metadata.len()
        )),
        version: None,
    })
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
        self.slices(location, ranges)
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

    /// A get is served here, without `LocalFileSystem`'s hop to a blocking
    /// thread: the Parquet reader asks for each bloom filter of each row
    /// group with one (490 on a 163-row-group file whose link, channel and
    /// event have bloom filters), and each hop cost two opens, two `stat`s
    /// and a thread's wake-up.
    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        if options.head {
            return self.inner.get_opts(location, options).await;
        }
        let (file, metadata, path) = self.open(location)?;
        let meta = object_meta(location, &metadata, &path)?;
        options.check_preconditions(&meta)?;
        let range = match &options.range {
            Some(range) => range.as_range(meta.size).map_err(|e| failure(&path, &e))?,
            None => 0..meta.size,
        };
        let bytes = slices_of(&file, meta.size, &path, std::slice::from_ref(&range))?.remove(0);
        Ok(GetResult {
            payload: GetResultPayload::Stream(
                futures::stream::once(async move { Ok(bytes) }).boxed(),
            ),
            meta,
            range,
            attributes: Default::default(),
        })
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
    use object_store::{GetRange, ObjectStoreExt};

    #[tokio::test]
    async fn ranges_come_from_the_file_and_bad_ranges_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.bin");
        // Past ALIGN and SMALL: long spans are maps starting at an offset,
        // short ones reads.
        let data: Vec<u8> = (0..=250u8).cycle().take(600_000).collect();
        std::fs::write(&file, &data).unwrap();
        let store = MmapStore::new();
        let location = Path::from_filesystem_path(&file).unwrap();
        let got = store
            .get_ranges(
                &location,
                &[150_000..150_100, 70_000..70_010, 500..500, 599_990..600_000],
            )
            .await
            .unwrap();
        assert_eq!(got[0].as_ref(), &data[150_000..150_100]);
        assert_eq!(got[1].as_ref(), &data[70_000..70_010]);
        assert!(got[2].is_empty());
        assert_eq!(got[3].as_ref(), &data[599_990..600_000]);
        let short = store
            .get_ranges(&location, &[400_100..400_200, 400_000..400_010])
            .await
            .unwrap();
        assert_eq!(short[0].as_ref(), &data[400_100..400_200]);
        assert_eq!(short[1].as_ref(), &data[400_000..400_010]);
        assert_eq!(
            store
                .get_range(&location, 131_072..131_200)
                .await
                .unwrap()
                .as_ref(),
            &data[131_072..131_200]
        );
        assert_eq!(
            store.get(&location).await.unwrap().bytes().await.unwrap(),
            data
        );
        assert_eq!(store.head(&location).await.unwrap().size, 600_000);
        for past_the_end in [9_000..600_001, 599_000..600_001] {
            let err = store
                .get_ranges(&location, std::slice::from_ref(&past_the_end))
                .await
                .unwrap_err();
            assert!(err.to_string().contains("outside the file"), "{err}");
        }
        let past_the_end = 9_000..600_001;
        let err = store
            .get_ranges(&location, std::slice::from_ref(&past_the_end))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("outside the file"), "{err}");
        // Gets are answered here, with the metadata and entity tag
        // `LocalFileSystem` gives, and its preconditions.
        let local = LocalFileSystem::new().head(&location).await.unwrap();
        let got = store
            .get_opts(
                &location,
                GetOptions::new().with_range(Some(GetRange::Suffix(10))),
            )
            .await
            .unwrap();
        assert_eq!(got.meta, local);
        assert_eq!(got.range, 599_990..600_000);
        assert_eq!(got.bytes().await.unwrap().as_ref(), &data[599_990..]);
        let tagged = |tag: &str| GetOptions {
            if_match: Some(tag.to_string()),
            ..GetOptions::new()
        };
        let tag = local.e_tag.clone().unwrap();
        assert!(store.get_opts(&location, tagged(&tag)).await.is_ok());
        let stale = store
            .get_opts(&location, tagged("0-0-0"))
            .await
            .unwrap_err();
        assert!(
            matches!(stale, object_store::Error::Precondition { .. }),
            "{stale}"
        );
        let beyond = GetOptions::new().with_range(Some(GetRange::Offset(700_000)));
        assert!(store.get_opts(&location, beyond).await.is_err());
        assert!(store
            .get_range(&Path::from_filesystem_path(dir.path()).unwrap(), 0..1)
            .await
            .is_err());
        let missing = Path::from_filesystem_path(dir.path().join("nope"))
            .unwrap_or_else(|_| Path::from("nope"));
        assert!(store.get_range(&missing, 0..1).await.is_err());
    }
}
