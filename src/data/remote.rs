//! Data in object stores: `--data s3://bucket/prefix` (and `gs://`,
//! `az://`/`abfss://`, `http(s)://`), read through the `object_store` crate.
//!
//! A data directory in a store is named by its URL wherever a local one is
//! named by its path: the files of [`super::DataDir`] are `PathBuf`s that
//! spell their URLs (`s3://bucket/prefix/events/part-0.parquet`), so every
//! message names the object as the user would write it. [`url_of`] tells
//! the two apart.
//!
//! How the store is reached:
//! - One client per bucket (or host) and process, built by the crate's
//!   builders from the store's standard environment (`AWS_*`,
//!   `GOOGLE_*`, `AZURE_*`; see docs/data.md), with at most
//!   [`CONCURRENT_REQUESTS`] requests in flight and the crate's retries with
//!   backoff on 5xx and timeouts, for at most [`RETRY_TIMEOUT`].
//! - Every request runs on one runtime of this module ([`block_on`], and
//!   [`Stores`] for DataFusion's scans), whichever runtime asked: a
//!   connection of the HTTP client's pool belongs to the runtime that opened
//!   it, and a REPL or a test opens and drops runtimes while the client
//!   lives on.
//! - [`RemoteFile`] reads a file as the synchronous Parquet reader wants:
//!   its footer, and what follows it, in one ranged GET of its last
//!   [`TAIL`] bytes.
//! - [`stats`] counts requests and bytes (`SEG_STORE_STATS=1` prints them
//!   after a run).

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Buf, Bytes};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::reader::{ChunkReader, Length};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use url::Url;

use super::DataError;

/// The URL schemes read as object stores.
const SCHEMES: [&str; 10] = [
    "s3", "s3a", "gs", "az", "adl", "azure", "abfs", "abfss", "http", "https",
];

/// Requests in flight to one store at most.
pub const CONCURRENT_REQUESTS: usize = 32;

/// How long a request is retried (with backoff) before its error is
/// reported.
pub const RETRY_TIMEOUT: Duration = Duration::from_secs(30);

/// The bytes fetched from the end of a file to read its footer: most
/// footers fit, and one that does not costs one more request.
pub const TAIL: u64 = 64 << 10;

/// How many files [`RemoteFile::open_shared`] keeps.
const SHARED_FILES: usize = 16;

/// The object-store URL `path` spells, when it spells one.
pub fn url_of(path: &Path) -> Option<Url> {
    let text = path.to_str()?;
    let (scheme, _) = text.split_once("://")?;
    if !SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
        return None;
    }
    Url::parse(text).ok()
}

/// `child` of the directory `dir` (a URL or a local path).
pub fn join(dir: &Path, child: &str) -> PathBuf {
    match dir.to_str() {
        Some(text) if url_of(dir).is_some() => {
            PathBuf::from(format!("{}/{child}", text.trim_end_matches('/')))
        }
        _ => dir.join(child),
    }
}

/// An object (or a prefix) in a store.
#[derive(Clone)]
pub struct Object {
    /// As the user wrote it (as DataFusion names it, for a file).
    pub url: Url,
    pub store: Arc<dyn ObjectStore>,
    /// Where the object is in the store.
    pub location: ObjectPath,
}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Object({})", self.url)
    }
}

impl Object {
    /// The object at `path` (an object-store URL).
    pub fn at(path: &Path) -> Result<Object, DataError> {
        let url = url_of(path).ok_or_else(|| {
            DataError::new(format!("{}: not an object-store URL", path.display()))
        })?;
        let store = store_for(&url)?;
        let location = ObjectPath::from_url_path(url.path())
            .map_err(|e| DataError::new(format!("{url}: {e}")))?;
        Ok(Object {
            url,
            store,
            location,
        })
    }

    /// Its metadata, or `None` when there is no such object.
    pub fn head(&self) -> Result<Option<ObjectMeta>, DataError> {
        let (store, location) = (Arc::clone(&self.store), self.location.clone());
        match block_on(async move { store.head(&location).await }) {
            Ok(meta) => Ok(Some(meta)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(&e)),
        }
    }

    /// Every object below this prefix, sorted by location, as the store
    /// lists them now. The listing is kept (see [`known`]).
    pub fn list(&self) -> Result<Arc<Vec<ObjectMeta>>, DataError> {
        let (store, location) = (Arc::clone(&self.store), self.location.clone());
        let mut all = block_on(async move {
            let prefix = (!location.as_ref().is_empty()).then_some(location);
            store.list(prefix.as_ref()).try_collect::<Vec<_>>().await
        })
        .map_err(|e| self.error(&e))?;
        all.sort_by(|a, b| a.location.cmp(&b.location));
        let all = Arc::new(all);
        if let Ok(mut listings) = listings().lock() {
            listings.insert(self.prefix_key(), Arc::clone(&all));
        }
        Ok(all)
    }

    /// The listing of this prefix, from the last [`Object::list`] of it
    /// when there was one.
    pub fn listing(&self) -> Result<Arc<Vec<ObjectMeta>>, DataError> {
        let kept = listings()
            .lock()
            .ok()
            .and_then(|l| l.get(&self.prefix_key()).cloned());
        match kept {
            Some(all) => Ok(all),
            None => self.list(),
        }
    }

    fn prefix_key(&self) -> String {
        format!("{}/{}", store_key(&self.url), self.location)
    }

    /// Where `location` is below this prefix (`events/part-0.parquet`),
    /// when it is below it.
    pub fn name_of(&self, location: &ObjectPath) -> Option<String> {
        let parts: Vec<_> = location.prefix_match(&self.location)?.collect();
        Some(
            parts
                .iter()
                .map(|p| p.as_ref())
                .collect::<Vec<_>>()
                .join("/"),
        )
    }

    /// The location of `name` (`events/part-0.parquet`) below this prefix,
    /// the name kept as it is: a folder `channel=max%5Fbot` (as DuckDB and
    /// Spark encode partition values) is not encoded again. A part that
    /// cannot be a key as it is (a control character) is encoded.
    pub fn location_of(&self, name: &str) -> ObjectPath {
        name.split('/').fold(self.location.clone(), |path, part| {
            match object_store::path::PathPart::parse(part) {
                Ok(kept) => path.join(kept),
                Err(_) => path.join(part),
            }
        })
    }

    /// The URL of `location`, an object of the same store: its key
    /// percent-encoded where a URL would read it otherwise (`%`, `#`, `?`,
    /// spaces), so that parsing the URL gives the key back.
    pub fn url_of_location(&self, location: &ObjectPath) -> PathBuf {
        use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
        const IN_URL: &AsciiSet = &CONTROLS
            .add(b' ')
            .add(b'"')
            .add(b'#')
            .add(b'%')
            .add(b'<')
            .add(b'>')
            .add(b'?')
            .add(b'`')
            .add(b'{')
            .add(b'}');
        let key = utf8_percent_encode(location.as_ref(), IN_URL);
        PathBuf::from(format!("{}/{key}", store_key(&self.url)))
    }

    /// A store's error about this object, as Seg reports it: the URL, then
    /// the store's words (which carry the HTTP status and its message).
    pub fn error(&self, e: &object_store::Error) -> DataError {
        DataError::new(format!("{}: {}", self.url, describe(e)))
    }
}

/// The listings of prefixes made by this process, by `scheme://authority/prefix`.
fn listings() -> &'static Mutex<HashMap<String, Arc<Vec<ObjectMeta>>>> {
    static LISTINGS: OnceLock<Mutex<HashMap<String, Arc<Vec<ObjectMeta>>>>> = OnceLock::new();
    LISTINGS.get_or_init(Default::default)
}

/// What a listing made by this process says of `object`: `Some(meta)` when
/// it was listed, `Some(None)` when a listing of a prefix it is under did
/// not have it, `None` when no listing covers it. Spares a HEAD request per
/// file of a data directory just listed.
fn known(object: &Object) -> Option<Option<ObjectMeta>> {
    let listings = listings().lock().ok()?;
    let key = format!("{}/{}", store_key(&object.url), object.location);
    listings.iter().find_map(|(prefix, all)| {
        let inside = prefix.ends_with('/') || key.starts_with(&format!("{prefix}/"));
        (key.starts_with(prefix.as_str()) && inside).then(|| {
            all.binary_search_by(|m| m.location.cmp(&object.location))
                .ok()
                .map(|i| all[i].clone())
        })
    })
}

/// Whether the object at `path` (an object-store URL) exists.
pub fn exists(path: &Path) -> Result<bool, DataError> {
    let object = Object::at(path)?;
    match known(&object) {
        Some(meta) => Ok(meta.is_some()),
        None => Ok(object.head()?.is_some()),
    }
}

/// What went wrong with a request, shortest first: a missing object or
/// bucket, refused credentials, then the store's own words.
/// The causes the store's client wraps (a timeout inside "error sending
/// request") are kept.
pub fn describe(e: &object_store::Error) -> String {
    let mut text = match e {
        object_store::Error::NotFound { source, .. } => format!("not found ({source})"),
        object_store::Error::PermissionDenied { source, .. }
        | object_store::Error::Unauthenticated { source, .. } => {
            format!("access denied ({source})")
        }
        e => e.to_string(),
    };
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let said = c.to_string();
        if !text.contains(said.trim()) {
            text = format!("{}: {said}", text.trim_end());
        }
        cause = c.source();
    }
    condensed(&text).unwrap_or(text)
}

/// A refusal's status and the store's code and message, out of the text of
/// the client's error (which holds the whole XML or JSON body the store
/// answered): `HTTP 403 Forbidden: InvalidAccessKeyId: The AWS Access Key
/// Id you provided does not exist in our records. (GET http://…)`.
fn condensed(text: &str) -> Option<String> {
    let between = |from: &str, to: &str| -> Option<&str> {
        let start = text.find(from)? + from.len();
        let len = text[start..].find(to)?;
        Some(text[start..start + len].trim())
    };
    let status = between("status code: ", ":")?;
    let code = between("<Code>", "</Code>");
    let message = between("<Message>", "</Message>").or_else(|| between("\"message\": \"", "\""));
    // The innermost "Error performing GET …" names the request.
    let request = text.rfind("Error performing ").and_then(|at| {
        let rest = &text[at + "Error performing ".len()..];
        rest.find(" in ").map(|end| &rest[..end])
    });
    let mut out = format!("HTTP {status}");
    for part in [code, message].into_iter().flatten() {
        out = format!("{out}: {part}");
    }
    if let Some(request) = request {
        out = format!("{out} ({request})");
    }
    if status.starts_with("401") || status.starts_with("403") {
        out.push_str("; the credentials come from the environment (see docs/data.md)");
    }
    Some(out)
}

/// What a query's failure was, when a request to the store of the data
/// directory `root` failed: the object's URL (or the directory's) and the
/// store's words.
pub fn explain(root: &Path, err: &(dyn std::error::Error + 'static)) -> Option<String> {
    url_of(root)?;
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(e) = e.downcast_ref::<object_store::Error>() {
            let place = match (e, Object::at(root)) {
                (object_store::Error::NotFound { path, .. }, Ok(dir)) => {
                    let url = dir.url_of_location(&ObjectPath::from(path.as_str()));
                    return Some(format!(
                        "{}: not found; it was deleted after the data was listed (run again)",
                        url.display()
                    ));
                }
                _ => root.display().to_string(),
            };
            return Some(format!("{place}: {}", describe(e)));
        }
        next = e.source();
    }
    None
}

/// `scheme://authority` of `url`: the store it lives in.
fn store_key(url: &Url) -> String {
    format!("{}://{}", url.scheme(), url.authority())
}

/// The runtime every request to a store runs on (see the module
/// documentation).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("seg-store")
            .enable_all()
            .build()
            .expect("the object-store runtime starts")
    })
}

/// Runs `future` on the store's runtime and waits for it, from any thread
/// (a runtime's own included).
pub fn block_on<F>(future: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handle = runtime().spawn(future);
    match futures::executor::block_on(handle) {
        Ok(out) => out,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("an object-store request was cancelled: {e}"),
    }
}

/// Runs `future` on the store's runtime, for a caller on any runtime.
async fn on_store_runtime<F>(future: F) -> object_store::Result<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    runtime()
        .spawn(future)
        .await
        .map_err(|e| object_store::Error::Generic {
            store: "seg",
            source: Box::new(e),
        })
}

/// The client of the store `url` is in: one per process and store.
pub fn store_for(url: &Url) -> Result<Arc<dyn ObjectStore>, DataError> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let key = store_key(url);
    let mut stores = STORES
        .get_or_init(Default::default)
        .lock()
        .map_err(|_| DataError::new("the object-store clients are poisoned"))?;
    if let Some(store) = stores.get(&key) {
        return Ok(Arc::clone(store));
    }
    let store = Arc::new(Counted::new(build(url).map_err(|e| {
        DataError::new(format!("{url}: cannot reach the store: {}", describe(&e)))
    })?));
    stores.insert(key, Arc::clone(&store) as Arc<dyn ObjectStore>);
    Ok(store)
}

/// A client for `url`'s store, configured from the environment.
fn build(url: &Url) -> object_store::Result<Arc<dyn ObjectStore>> {
    use object_store::aws::AmazonS3Builder;
    use object_store::azure::MicrosoftAzureBuilder;
    use object_store::gcp::GoogleCloudStorageBuilder;
    use object_store::http::HttpBuilder;
    use object_store::limit::LimitStore;
    use object_store::{BackoffConfig, RetryConfig};

    let retry = RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: 5,
        retry_timeout: RETRY_TIMEOUT,
    };
    let store: Arc<dyn ObjectStore> = match url.scheme() {
        "s3" | "s3a" => Arc::new(
            AmazonS3Builder::from_env()
                .with_url(url.as_str())
                .with_retry(retry)
                .build()?,
        ),
        "gs" => Arc::new(
            GoogleCloudStorageBuilder::from_env()
                .with_url(url.as_str())
                .with_retry(retry)
                .build()?,
        ),
        "http" | "https" => Arc::new(
            HttpBuilder::new()
                .with_url(store_key(url))
                .with_client_options(
                    object_store::ClientOptions::new().with_allow_http(url.scheme() == "http"),
                )
                .with_retry(retry)
                .build()?,
        ),
        _ => Arc::new(
            MicrosoftAzureBuilder::from_env()
                .with_url(url.as_str())
                .with_retry(retry)
                .build()?,
        ),
    };
    Ok(Arc::new(LimitStore::new(store, CONCURRENT_REQUESTS)))
}

/// Deletes `locations` of `prefix`'s store.
pub fn delete(prefix: &Object, locations: Vec<ObjectPath>) -> Result<(), DataError> {
    if locations.is_empty() {
        return Ok(());
    }
    let store = Arc::clone(&prefix.store);
    block_on(async move {
        let stream = futures::stream::iter(locations.into_iter().map(Ok)).boxed();
        store.delete_stream(stream).try_collect::<Vec<_>>().await
    })
    .map(drop)
    .map_err(|e| prefix.error(&e))
}

/// Uploads every file below the local directory `dir` to `prefix`, at the
/// same relative paths: files past a few megabytes in multipart uploads, a
/// few files at a time. Returns the bytes uploaded.
pub fn upload_dir(dir: &Path, prefix: &Object) -> Result<u64, DataError> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let entries = std::fs::read_dir(&next)
            .map_err(|e| DataError::new(format!("{}: {e}", next.display())))?;
        for entry in entries {
            let path = entry
                .map_err(|e| DataError::new(format!("{}: {e}", next.display())))?
                .path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    let uploads = files.into_iter().map(|file| {
        let relative = file.strip_prefix(dir).unwrap_or(&file).to_string_lossy();
        let location = prefix.location_of(&relative.replace('\\', "/"));
        (file, location)
    });
    let store = Arc::clone(&prefix.store);
    let uploads: Vec<_> = uploads.collect();
    let failed = |file: &Path, location: &ObjectPath, e: &dyn fmt::Display| {
        DataError::new(format!(
            "{}: uploading {}: {e}",
            prefix.url_of_location(location).display(),
            file.display()
        ))
    };
    let results = block_on(async move {
        futures::stream::iter(uploads)
            .map(|(file, location)| {
                let store = Arc::clone(&store);
                async move {
                    let outcome = upload(store, &file, &location).await;
                    (file, location, outcome)
                }
            })
            .buffer_unordered(4)
            .collect::<Vec<_>>()
            .await
    });
    let mut total = 0;
    for (file, location, outcome) in results {
        total += outcome.map_err(|e| failed(&file, &location, &e))?;
    }
    Ok(total)
}

/// One file to `location`, through the crate's buffered writer (a single
/// PUT for a small file, a multipart upload for a large one).
async fn upload(
    store: Arc<dyn ObjectStore>,
    file: &Path,
    location: &ObjectPath,
) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut source = tokio::fs::File::open(file).await?;
    let mut writer =
        object_store::buffered::BufWriter::with_capacity(store, location.clone(), 8 << 20);
    let mut buffer = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = source.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        writer.write_all(&buffer[..n]).await?;
        total += n as u64;
    }
    writer.shutdown().await?;
    Ok(total)
}

/// Requests and bytes sent to every store by this process.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Ranged or whole GETs.
    pub gets: u64,
    /// HEAD requests.
    pub heads: u64,
    /// Listings (a store answers one in pages of a thousand objects, a
    /// request each).
    pub lists: u64,
    /// Bytes of the GETs' bodies.
    pub bytes: u64,
}

/// Whether every request is printed on stderr (`SEG_STORE_TRACE=1`).
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("SEG_STORE_TRACE").is_some_and(|v| v == "1"))
}

static GETS: AtomicU64 = AtomicU64::new(0);
static HEADS: AtomicU64 = AtomicU64::new(0);
static LISTS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

/// The requests made so far.
pub fn stats() -> Stats {
    Stats {
        gets: GETS.load(Ordering::Relaxed),
        heads: HEADS.load(Ordering::Relaxed),
        lists: LISTS.load(Ordering::Relaxed),
        bytes: BYTES.load(Ordering::Relaxed),
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} requests ({} GET, {} HEAD, {} LIST), {} bytes fetched",
            self.gets + self.heads + self.lists,
            self.gets,
            self.heads,
            self.lists,
            self.bytes
        )
    }
}

/// A store whose reads run on this module's runtime and are counted in
/// [`stats`]. Writes go straight to the store: only `seg gen` writes, from
/// [`block_on`].
#[derive(Debug)]
struct Counted {
    inner: Arc<dyn ObjectStore>,
}

impl Counted {
    fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Counted { inner }
    }
}

impl fmt::Display for Counted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner)
    }
}

#[async_trait]
impl ObjectStore for Counted {
    async fn put_opts(
        &self,
        location: &ObjectPath,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &ObjectPath,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let (inner, location) = (Arc::clone(&self.inner), location.clone());
        let head = options.head;
        // The body is read on the store's runtime too: a GET is a column
        // chunk's range or a footer, not a whole file.
        let (mut got, body) = on_store_runtime(async move {
            let got = inner.get_opts(&location, options).await?;
            if head {
                return Ok((got, None));
            }
            let meta = got.meta.clone();
            let (range, attributes) = (got.range.clone(), got.attributes.clone());
            let body = got.bytes().await?;
            let rebuilt = GetResult {
                payload: GetResultPayload::Stream(futures::stream::empty().boxed()),
                meta,
                range,
                attributes,
            };
            Ok::<_, object_store::Error>((rebuilt, Some(body)))
        })
        .await??;
        match body {
            None => {
                HEADS.fetch_add(1, Ordering::Relaxed);
            }
            Some(body) => {
                if trace() {
                    eprintln!("store: GET {} {:?}", got.meta.location, got.range);
                }
                GETS.fetch_add(1, Ordering::Relaxed);
                BYTES.fetch_add(body.len() as u64, Ordering::Relaxed);
                got.payload = GetResultPayload::Stream(
                    futures::stream::once(async move { Ok(body) }).boxed(),
                );
            }
        }
        Ok(got)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<ObjectPath>>,
    ) -> BoxStream<'static, object_store::Result<ObjectPath>> {
        self.inner.delete_stream(locations)
    }

    fn list(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let (inner, prefix) = (Arc::clone(&self.inner), prefix.cloned());
        let all = on_store_runtime(async move {
            LISTS.fetch_add(1, Ordering::Relaxed);
            inner.list(prefix.as_ref()).try_collect::<Vec<_>>().await
        });
        futures::stream::once(all)
            .map(|r| match r {
                Ok(Ok(all)) => futures::stream::iter(all.into_iter().map(Ok)).boxed(),
                Ok(Err(e)) | Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            })
            .flatten()
            .boxed()
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> object_store::Result<ListResult> {
        let (inner, prefix) = (Arc::clone(&self.inner), prefix.cloned());
        LISTS.fetch_add(1, Ordering::Relaxed);
        on_store_runtime(async move { inner.list_with_delimiter(prefix.as_ref()).await }).await?
    }

    async fn copy_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// DataFusion's registry of stores, which builds the client of an
/// object-store URL it has not seen with [`store_for`] (the executors of a
/// cluster meet the URLs in the plans they are sent).
#[derive(Debug, Default)]
pub struct Stores {
    inner: DefaultObjectStoreRegistry,
}

impl ObjectStoreRegistry for Stores {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.inner.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        self.inner.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        match self.inner.get_store(url) {
            Ok(store) => Ok(store),
            Err(_) if SCHEMES.contains(&url.scheme()) => {
                let store = store_for(url)
                    .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
                self.inner.register_store(url, Arc::clone(&store));
                Ok(store)
            }
            Err(e) => Err(e),
        }
    }
}

/// A file in a store, read as the synchronous Parquet reader reads a local
/// one: its last [`TAIL`] bytes (the footer) fetched once, and other reads
/// in aligned blocks of [`BLOCK`] bytes of which the last [`RECENT`] are
/// kept. The reader asks for a row group's column chunk at a time (a
/// profiles file of a million ids has a hundred); in blocks, a file read
/// from start to end costs a request per block, not per chunk, and no byte
/// twice.
#[derive(Clone)]
pub struct RemoteFile(Arc<RemoteInner>);

/// What a [`RemoteFile`] and the readers of it share.
pub struct RemoteInner {
    object: Object,
    size: u64,
    tail: OnceLock<Bytes>,
    recent: Mutex<std::collections::VecDeque<(u64, Bytes)>>,
}

impl std::ops::Deref for RemoteFile {
    type Target = RemoteInner;

    fn deref(&self) -> &RemoteInner {
        &self.0
    }
}

/// See [`RemoteFile`].
pub const BLOCK: u64 = 1 << 20;
const RECENT: usize = 8;

impl RemoteFile {
    /// The object `meta` describes.
    pub fn new(object: Object, size: u64) -> Self {
        RemoteFile(Arc::new(RemoteInner {
            object,
            size,
            tail: OnceLock::new(),
            recent: Mutex::new(Default::default()),
        }))
    }

    /// The object at `path`, or an error naming it when there is none.
    fn open(path: &Path) -> Result<(RemoteFile, ObjectMeta), DataError> {
        let object = Object::at(path)?;
        let meta = match known(&object).flatten() {
            Some(meta) => meta,
            None => object
                .head()?
                .ok_or_else(|| DataError::new(format!("{}: not found", object.url)))?,
        };
        Ok((RemoteFile::new(object, meta.size), meta))
    }

    /// [`RemoteFile::open`], shared with the earlier opens of the same
    /// object (same size and time) by this process: the profiles and the
    /// dimension tables are opened more than once (their schema, then their
    /// rows), and their footers are fetched once. Keeps the last
    /// [`SHARED_FILES`] files opened.
    pub fn open_shared(path: &Path) -> Result<(RemoteFile, ObjectMeta), DataError> {
        type Shared = Vec<(String, RemoteFile, ObjectMeta)>;
        static SHARED: OnceLock<Mutex<Shared>> = OnceLock::new();
        let (file, meta) = RemoteFile::open(path)?;
        let key = format!("{}@{}@{:?}", file.object.url, meta.size, meta.last_modified);
        let shared = SHARED.get_or_init(Default::default);
        let mut shared = shared
            .lock()
            .map_err(|_| DataError::new("the shared remote files are poisoned"))?;
        if let Some((_, file, meta)) = shared.iter().find(|(k, _, _)| *k == key) {
            return Ok((file.clone(), meta.clone()));
        }
        if shared.len() == SHARED_FILES {
            shared.remove(0);
        }
        shared.push((key, file.clone(), meta.clone()));
        Ok((file, meta))
    }
}

impl RemoteInner {
    fn fetch(&self, range: Range<u64>) -> Result<Bytes, ParquetError> {
        let (store, location) = (Arc::clone(&self.object.store), self.object.location.clone());
        block_on(async move { store.get_range(&location, range).await })
            .map_err(|e| ParquetError::External(Box::new(self.object.error(&e))))
    }

    /// Block `index` (the last one is short), from the kept ones or the
    /// store.
    fn block(&self, index: u64) -> Result<Bytes, ParquetError> {
        let kept = |recent: &std::collections::VecDeque<(u64, Bytes)>| {
            recent
                .iter()
                .find(|(i, _)| *i == index)
                .map(|(_, b)| b.clone())
        };
        if let Some(block) = self.recent.lock().ok().and_then(|r| kept(&r)) {
            return Ok(block);
        }
        let start = index * BLOCK;
        let block = self.fetch(start..(start + BLOCK).min(self.size))?;
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() == RECENT {
                recent.pop_front();
            }
            recent.push_back((index, block.clone()));
        }
        Ok(block)
    }

    /// `start..end` (within the file) from the tail or the blocks.
    fn read(&self, start: u64, end: u64) -> Result<Bytes, ParquetError> {
        let tail_start = self.size.saturating_sub(TAIL);
        if start >= tail_start {
            let tail = match self.tail.get() {
                Some(tail) => tail,
                None => {
                    let fetched = self.fetch(tail_start..self.size)?;
                    self.tail.get_or_init(|| fetched)
                }
            };
            return Ok(tail.slice((start - tail_start) as usize..(end - tail_start) as usize));
        }
        let (first, last) = (start / BLOCK, end.saturating_sub(1) / BLOCK);
        if first == last {
            let block = self.block(first)?;
            let at = (first * BLOCK) as usize;
            return Ok(block.slice(start as usize - at..end as usize - at));
        }
        // Across blocks: a chunk larger than a block is fetched whole.
        if end - start > BLOCK {
            return self.fetch(start..end);
        }
        let mut joined = Vec::with_capacity((end - start) as usize);
        for index in first..=last {
            let block = self.block(index)?;
            let at = index * BLOCK;
            let from = start.max(at) - at;
            let to = end.min(at + block.len() as u64) - at;
            joined.extend_from_slice(&block[from as usize..to as usize]);
        }
        Ok(Bytes::from(joined))
    }
}

impl Length for RemoteFile {
    fn len(&self) -> u64 {
        self.size
    }
}

/// A [`RemoteFile`] read from an offset on, a block at a time as it is
/// read (not to the end of the file at once).
pub struct RemoteRead {
    file: RemoteFile,
    at: u64,
    buffer: Bytes,
}

impl std::io::Read for RemoteRead {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.buffer.is_empty() {
            if self.at >= self.file.size {
                return Ok(0);
            }
            let end = ((self.at / BLOCK + 1) * BLOCK).min(self.file.size);
            self.buffer = self
                .file
                .read(self.at, end)
                .map_err(std::io::Error::other)?;
            self.at = end;
        }
        let n = out.len().min(self.buffer.len());
        out[..n].copy_from_slice(&self.buffer[..n]);
        self.buffer.advance(n);
        Ok(n)
    }
}

impl ChunkReader for RemoteFile {
    type T = RemoteRead;

    fn get_read(&self, start: u64) -> datafusion::parquet::errors::Result<Self::T> {
        if start > self.size {
            return Err(ParquetError::EOF(format!(
                "{}: offset {start} is past the end ({} bytes)",
                self.object.url, self.size
            )));
        }
        Ok(RemoteRead {
            file: self.clone(),
            at: start,
            buffer: Bytes::new(),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> datafusion::parquet::errors::Result<Bytes> {
        let end = start
            .checked_add(length as u64)
            .filter(|&end| end <= self.size)
            .ok_or_else(|| {
                ParquetError::EOF(format!(
                    "{}: range {start}+{length} is past the end ({} bytes)",
                    self.object.url, self.size
                ))
            })?;
        self.read(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_paths() {
        for remote in [
            "s3://bucket/prefix",
            "S3://bucket",
            "gs://b/p/",
            "abfss://c@acct.dfs.core.windows.net/p",
            "az://container/p",
            "https://example.com/data",
        ] {
            assert!(url_of(Path::new(remote)).is_some(), "{remote}");
        }
        for local in [
            "examples/data",
            "/tmp/s3",
            "ftp://host/x",
            "./s3:/b",
            "C:/x",
        ] {
            assert!(url_of(Path::new(local)).is_none(), "{local}");
        }
        assert_eq!(
            join(Path::new("s3://b/p/"), "events"),
            PathBuf::from("s3://b/p/events")
        );
        assert_eq!(
            join(Path::new("data"), "events"),
            Path::new("data").join("events")
        );
    }

    #[test]
    fn reads_come_from_the_tail_and_from_blocks_each_fetched_once() {
        // An in-memory store behind the same reader.
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let len = 3 * BLOCK as usize + 500_000;
        let data: Vec<u8> = (0..=250u8).cycle().take(len).collect();
        let location = ObjectPath::from("d/f.bin");
        {
            let (store, location, data) = (Arc::clone(&store), location.clone(), data.clone());
            block_on(async move { store.put(&location, data.into()).await }).unwrap();
        }
        let object = Object {
            url: Url::parse("memory://x/d/f.bin").unwrap(),
            store: Arc::new(Counted::new(store)),
            location,
        };
        let file = RemoteFile::new(object, len as u64);
        // (Other tests of this process may fetch too: count this file's.)
        let gets = || stats().gets;
        let before = gets();
        assert_eq!(
            file.get_bytes(len as u64 - 8, 8).unwrap().as_ref(),
            &data[len - 8..]
        );
        assert_eq!(
            file.get_bytes(len as u64 - 30_000, 100).unwrap().as_ref(),
            &data[len - 30_000..len - 29_900]
        );
        // Both from the tail: one GET.
        assert_eq!(gets() - before, 1);
        // A hundred chunks read in order, each as the page reader reads
        // it: four blocks in all.
        let before = gets();
        let step = (3 * BLOCK as usize) / 100;
        for i in 0..100 {
            let at = i * step;
            let mut chunk = vec![0; step];
            std::io::Read::read_exact(&mut file.get_read(at as u64).unwrap(), &mut chunk).unwrap();
            assert_eq!(chunk, &data[at..at + step], "chunk {i}");
            let bytes = file.get_bytes(at as u64, 10).unwrap();
            assert_eq!(bytes.as_ref(), &data[at..at + 10]);
        }
        assert!(gets() - before <= 4, "{} GETs", gets() - before);
        // Across two blocks, and larger than a block.
        let edge = BLOCK as usize - 10;
        assert_eq!(
            file.get_bytes(edge as u64, 20).unwrap().as_ref(),
            &data[edge..edge + 20]
        );
        assert_eq!(
            file.get_bytes(1000, 2 * BLOCK as usize).unwrap().as_ref(),
            &data[1000..1000 + 2 * BLOCK as usize]
        );
        let mut rest = Vec::new();
        std::io::Read::read_to_end(
            &mut file.get_read(len as u64 - 1_500_000).unwrap(),
            &mut rest,
        )
        .unwrap();
        assert_eq!(rest, &data[len - 1_500_000..]);
        let err = file.get_bytes(len as u64 - 1, 2).unwrap_err().to_string();
        assert!(
            err.contains("memory://x/d/f.bin") && err.contains("past the end"),
            "{err}"
        );
    }

    #[test]
    fn a_stores_refusal_is_condensed_to_status_code_and_message() {
        let text = "Generic S3 error: Error performing list request: Error performing GET \
            http://127.0.0.1:5056/exa?list-type=2&prefix=shop%2F in 133.3ms - Server returned \
            non-2xx status code: 403 Forbidden: <?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
            <Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided \
            does not exist in our records.</Message><RequestId>x</RequestId></Error>";
        assert_eq!(
            condensed(text).unwrap(),
            "HTTP 403 Forbidden: InvalidAccessKeyId: The AWS Access Key Id you provided does not \
             exist in our records. (GET http://127.0.0.1:5056/exa?list-type=2&prefix=shop%2F); \
             the credentials come from the environment (see docs/data.md)"
        );
        assert_eq!(condensed("HTTP error: error sending request"), None);
    }
}
