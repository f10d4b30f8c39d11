//! Seg on an Apache DataFusion Ballista cluster: the codecs that carry
//! Seg's plans to the scheduler and the executors, and the two servers as
//! `seg scheduler` and `seg executor` start them (docs/cluster.md).
//!
//! What runs on a cluster is DataFusion's own operators. The events are the
//! files `DataDir` found, by path, size and time ([`FilesTable`], which the
//! codecs carry: a listing table would list again on the scheduler, where a
//! path that is not there lists as no files, which is a wrong answer). The
//! plan is the one Seg runs locally without the parts that live in one
//! process: the dense counters (one array shared by every partition), the
//! per-file time split and the row-group pruning from the footers read at
//! opening (both keyed by this process's footers), and the dictionary-key
//! comparison (a physical expression of Seg's own). Those are
//! optimizations: the ids are the same. The sequence aggregate (SPEC §10)
//! travels in the codecs below with its parameters. Every node must use
//! these codecs: a stock `ballista-scheduler` cannot decode the events
//! table.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::TableReference;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::datasource::listing::{ListingTableUrl, PartitionedFile};
use datafusion::datasource::physical_plan::ParquetSource;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{
    AggregateUDF, Expr, Extension, LogicalPlan, ScalarUDF, TableProviderFilterPushDown, WindowUDF,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};

use crate::plan::sequence::{SequenceSpec, SequenceUdaf};

/// The name `SequenceUdaf` goes by; its parameters travel in the codec.
const SEQUENCE: &str = "seg_sequence";

/// The sequence aggregate's parameters as bytes: `steps within negated`,
/// with `-` for no `within`.
fn encode_sequence(udaf: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
    let Some(s) = (udaf.inner().as_ref() as &dyn std::any::Any).downcast_ref::<SequenceUdaf>()
    else {
        return Err(DataFusionError::Internal(format!(
            "{SEQUENCE}: an aggregate of another kind goes by its name"
        )));
    };
    let spec = s.spec();
    let within = spec.within.map_or("-".to_string(), |w| w.to_string());
    buf.extend_from_slice(format!("{} {within} {}", spec.steps, u8::from(spec.negated)).as_bytes());
    Ok(())
}

fn decode_sequence(buf: &[u8]) -> Result<Arc<AggregateUDF>> {
    let bad = || DataFusionError::Internal(format!("{SEQUENCE}: cannot decode {buf:?}"));
    let text = std::str::from_utf8(buf).map_err(|_| bad())?;
    let parts: Vec<&str> = text.split(' ').collect();
    let [steps, within, negated] = parts.as_slice() else {
        return Err(bad());
    };
    let spec = SequenceSpec {
        steps: steps.parse().map_err(|_| bad())?,
        within: match *within {
            "-" => None,
            w => Some(w.parse().map_err(|_| bad())?),
        },
        negated: match *negated {
            "0" => false,
            "1" => true,
            _ => return Err(bad()),
        },
    };
    Ok(SequenceUdaf::udaf(spec))
}

/// A table of Parquet files named by path, with the size each had when the
/// client opened the data: the scheduler plans a scan of exactly those
/// files (an error, naming the file, where one is missing or changed), and
/// each executor reads its share of them.
#[derive(Debug, Clone)]
pub struct FilesTable {
    schema: SchemaRef,
    files: Vec<TableFile>,
}

/// One file of a [`FilesTable`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TableFile {
    /// Absolute, or an object-store URL.
    pub path: PathBuf,
    pub size: u64,
    /// When it was last written, as the client saw it: with the size, what
    /// tells a footer cached on an executor from one of a rewritten file.
    pub modified: std::time::SystemTime,
    /// Its values of the table's Hive partition columns, the last fields
    /// of the table's schema (see `data::Partitions`): as the folder names
    /// spell them, `None` for NULL.
    #[serde(default)]
    pub partition_values: Vec<Option<String>>,
}

/// How a [`FilesTable`] travels: its files (the schema travels beside).
#[derive(serde::Serialize, serde::Deserialize)]
struct EncodedFiles {
    seg_files: Vec<TableFile>,
}

impl FilesTable {
    pub fn new(schema: SchemaRef, files: Vec<TableFile>) -> Self {
        FilesTable { schema, files }
    }

    /// The store the files are in: the local file system, or the bucket of
    /// their URLs (which every node reaches with its own environment's
    /// credentials).
    fn store(&self) -> Result<ObjectStoreUrl> {
        match self.files.first() {
            Some(f) if crate::data::remote::url_of(&f.path).is_some() => {
                let url = ListingTableUrl::parse(f.path.to_string_lossy())?;
                Ok(url.object_store())
            }
            _ => Ok(ObjectStoreUrl::local_filesystem()),
        }
    }

    /// The file as the object store names it, if this node sees it as the
    /// client did. A file in an object store is named by its URL, and not
    /// asked for again: a file deleted since is an error when it is read.
    fn located(&self, file: &TableFile) -> Result<PartitionedFile> {
        if crate::data::remote::url_of(&file.path).is_some() {
            let url = ListingTableUrl::parse(file.path.to_string_lossy())?;
            return Ok(PartitionedFile::new_from_meta(object_store::ObjectMeta {
                location: url.prefix().clone(),
                last_modified: chrono::DateTime::<chrono::Utc>::from(file.modified),
                size: file.size,
                e_tag: None,
                version: None,
            }));
        }
        let node = format!("the scheduler on {}", host_name());
        let meta = std::fs::metadata(&file.path).map_err(|e| {
            DataFusionError::Execution(format!(
                "{}: cannot be read on {node}: {e}; every node of the cluster must see --data at the same path",
                file.path.display()
            ))
        })?;
        if meta.len() != file.size {
            return Err(DataFusionError::Execution(format!(
                "{}: {} bytes on {node}, {} where the query was sent from; every node must see the same files",
                file.path.display(),
                meta.len(),
                file.size
            )));
        }
        if meta.modified().ok() != Some(file.modified) {
            return Err(DataFusionError::Execution(format!(
                "{}: written at another time on {node} than where the query was sent from; \
                 every node must see the same files (or the file changed: run again)",
                file.path.display()
            )));
        }
        let location = object_store::path::Path::from_absolute_path(&file.path)
            .map_err(|e| DataFusionError::Execution(format!("{}: {e}", file.path.display())))?;
        Ok(PartitionedFile::new_from_meta(object_store::ObjectMeta {
            location,
            last_modified: chrono::DateTime::<chrono::Utc>::from(file.modified),
            size: file.size,
            e_tag: None,
            version: None,
        }))
    }
}

#[async_trait::async_trait]
impl TableProvider for FilesTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // The filter stays above the scan; the scan may use it to skip data.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let partition_cols = self.files.first().map_or(0, |f| f.partition_values.len());
        let table = super::events_table::table_schema(&self.schema, partition_cols);
        let files = self
            .files
            .iter()
            .map(|f| {
                let mut file = self.located(f)?;
                file.partition_values = crate::data::partition_scalars(
                    table.table_partition_cols().iter().map(AsRef::as_ref),
                    &f.partition_values,
                );
                Ok(file)
            })
            .collect::<Result<Vec<_>>>()?;
        let source = ParquetSource::new(table);
        super::events_table::parquet_scan(state, self.store()?, source, files, projection, limit)
    }
}

/// Ballista's logical codec, and Seg's sequence aggregate.
#[derive(Debug, Default)]
pub struct SegLogicalCodec {
    inner: BallistaLogicalExtensionCodec,
}

impl LogicalExtensionCodec for SegLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        match serde_json::from_slice::<EncodedFiles>(buf) {
            Ok(files) => Ok(Arc::new(FilesTable::new(schema, files.seg_files))),
            Err(_) => self
                .inner
                .try_decode_table_provider(buf, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        match (node.as_ref() as &dyn std::any::Any).downcast_ref::<FilesTable>() {
            Some(table) => {
                let encoded = EncodedFiles {
                    seg_files: table.files.clone(),
                };
                serde_json::to_writer(buf, &encoded)
                    .map_err(|e| DataFusionError::Internal(format!("encoding the files: {e}")))
            }
            None => self.inner.try_encode_table_provider(table_ref, node, buf),
        }
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.inner.try_encode_file_format(buf, node)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        self.inner.try_decode_udf(name, buf)
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udf(node, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        match name {
            SEQUENCE => decode_sequence(buf),
            _ => self.inner.try_decode_udaf(name, buf),
        }
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        match node.name() {
            SEQUENCE => encode_sequence(node, buf),
            _ => self.inner.try_encode_udaf(node, buf),
        }
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        self.inner.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udwf(node, buf)
    }
}

/// Ballista's physical codec (its shuffle operators), and Seg's sequence
/// aggregate.
#[derive(Debug, Default)]
pub struct SegPhysicalCodec {
    inner: BallistaPhysicalExtensionCodec,
}

impl PhysicalExtensionCodec for SegPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.inner.try_decode(buf, inputs, ctx, proto_converter)
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        self.inner.try_encode(node, buf, proto_converter)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        self.inner.try_decode_udf(name, buf)
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udf(node, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        match name {
            SEQUENCE => decode_sequence(buf),
            _ => self.inner.try_decode_udaf(name, buf),
        }
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        match node.name() {
            SEQUENCE => encode_sequence(node, buf),
            _ => self.inner.try_encode_udaf(node, buf),
        }
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        self.inner.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udwf(node, buf)
    }
}

/// The scheduler's gRPC address for a `df://HOST:PORT` URL (port 50050 when
/// none is given), or why the URL is not one.
pub fn scheduler_address(url: &str) -> std::result::Result<(String, u16), String> {
    let rest = url.strip_prefix("df://").ok_or_else(|| {
        format!("`{url}` is not a scheduler URL: write df://HOST:PORT (for example df://localhost:50050)")
    })?;
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.strip_prefix('[') {
        // An IPv6 address: [::1]:6000.
        Some(v6) => match v6.split_once(']') {
            Some((h, "")) => (h, None),
            Some((h, p)) => (h, Some(p.strip_prefix(':').unwrap_or(p))),
            None => ("", None),
        },
        None => match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        },
    };
    let port = match port {
        None => 50050,
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("`{url}`: `{p}` is not a port number"))?,
    };
    if host.is_empty() || host.contains('/') {
        return Err(format!(
            "`{url}` names no host: write df://HOST:PORT (for example df://localhost:50050)"
        ));
    }
    Ok((host.to_string(), port))
}

/// Whether the scheduler at `host:port` answers, within `wait`.
pub async fn reach_scheduler(
    host: &str,
    port: u16,
    wait: std::time::Duration,
) -> std::result::Result<(), String> {
    let url = format!("http://{host}:{port}");
    let connect =
        ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient::connect(
            url.clone(),
        );
    match tokio::time::timeout(wait, connect).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!(
            "cannot reach the scheduler at df://{host}:{port}: {}",
            error_chain(&e)
        )),
        Err(_) => Err(format!(
            "cannot reach the scheduler at df://{host}:{port}: no answer within {} s",
            wait.as_secs()
        )),
    }
}

/// An error and its sources, joined by `: ` (tonic's transport errors say
/// little at the top: "transport error").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// How often an executor tells the scheduler it is alive.
const HEARTBEAT_SECONDS: u64 = 2;

/// How long the scheduler waits for a heartbeat before it declares an
/// executor lost.
pub const EXECUTOR_TIMEOUT_SECONDS: u64 = 10;

/// `seg scheduler`: Ballista's scheduler with Seg's codecs, until the
/// process ends.
pub async fn serve_scheduler(bind: SocketAddr) -> std::result::Result<(), String> {
    use ballista_scheduler::cluster::BallistaCluster;
    use ballista_scheduler::config::SchedulerConfig;
    let config = SchedulerConfig {
        bind_host: bind.ip().to_string(),
        bind_port: bind.port(),
        override_logical_codec: Some(Arc::new(SegLogicalCodec::default())),
        override_physical_codec: Some(Arc::new(SegPhysicalCodec::default())),
        // An executor silent for this long is lost: its tasks and the
        // shuffle output it held run again elsewhere (Ballista's defaults,
        // 180 s, leave a query that lost one waiting for three minutes).
        executor_timeout_seconds: EXECUTOR_TIMEOUT_SECONDS,
        expire_dead_executor_interval_seconds: 2,
        no_executors_grace_period_seconds: EXECUTOR_TIMEOUT_SECONDS,
        ..Default::default()
    };
    // Binding first turns a port in use into an error here, not a log line.
    std::net::TcpListener::bind(bind).map_err(|e| format!("cannot listen on {bind}: {e}"))?;
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| format!("cannot start the scheduler: {e}"))?;
    ballista_scheduler::scheduler_process::start_server(cluster, bind, Arc::new(config))
        .await
        .map_err(|e| format!("the scheduler stopped: {e}"))
}

/// The local file system as an executor reads it: errors name the
/// executor, so that a path one node of a cluster cannot read is found.
#[derive(Debug)]
struct NodeStore {
    inner: object_store::local::LocalFileSystem,
    node: String,
}

impl std::fmt::Display for NodeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the file system of executor {}", self.node)
    }
}

impl NodeStore {
    fn named(&self, e: object_store::Error) -> object_store::Error {
        object_store::Error::Generic {
            store: "executor",
            source: format!("{}: {e}", self.node).into(),
        }
    }
}

#[async_trait::async_trait]
impl object_store::ObjectStore for NodeStore {
    async fn put_opts(
        &self,
        location: &object_store::path::Path,
        payload: object_store::PutPayload,
        opts: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        self.inner
            .put_opts(location, payload, opts)
            .await
            .map_err(|e| self.named(e))
    }

    async fn put_multipart_opts(
        &self,
        location: &object_store::path::Path,
        opts: object_store::PutMultipartOptions,
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
        self.inner
            .put_multipart_opts(location, opts)
            .await
            .map_err(|e| self.named(e))
    }

    async fn get_opts(
        &self,
        location: &object_store::path::Path,
        options: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        self.inner
            .get_opts(location, options)
            .await
            .map_err(|e| self.named(e))
    }

    async fn get_ranges(
        &self,
        location: &object_store::path::Path,
        ranges: &[std::ops::Range<u64>],
    ) -> object_store::Result<Vec<bytes::Bytes>> {
        self.inner
            .get_ranges(location, ranges)
            .await
            .map_err(|e| self.named(e))
    }

    fn delete_stream(
        &self,
        locations: futures::stream::BoxStream<
            'static,
            object_store::Result<object_store::path::Path>,
        >,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::path::Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> object_store::Result<object_store::ListResult> {
        self.inner
            .list_with_delimiter(prefix)
            .await
            .map_err(|e| self.named(e))
    }

    async fn copy_opts(
        &self,
        from: &object_store::path::Path,
        to: &object_store::path::Path,
        options: object_store::CopyOptions,
    ) -> object_store::Result<()> {
        self.inner
            .copy_opts(from, to, options)
            .await
            .map_err(|e| self.named(e))
    }
}

/// This machine's name.
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; the name is cut to it.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(name) if ok && !name.is_empty() => name.to_string(),
        _ => "this host".to_string(),
    }
}

/// A failed job's message as Ballista's client gives it, without the
/// wrappers each layer added (`Execution error: Job … failed: Job failed due
/// to stage 0 failed: Task failed due to runtime execution error:
/// DataFusionError(Shared(ParquetError(General("…"))))`): what failed, on
/// which node, and the job and stage.
pub fn explain_failure(text: &str) -> String {
    let mut rest = text.trim();
    let mut job = None;
    let mut stage = None;
    loop {
        let before = rest;
        for prefix in [
            "Execution error: ",
            "DataFusion error: ",
            "External error: ",
        ] {
            rest = rest.strip_prefix(prefix).unwrap_or(rest);
        }
        if let Some(after) = rest.strip_prefix("Job ") {
            if let Some((id, tail)) = after.split_once(" failed: ") {
                if !id.contains(' ') {
                    job = Some(id.to_string());
                    rest = tail;
                }
            }
        }
        if let Some(after) = rest.strip_prefix("Job failed due to stage ") {
            if let Some((n, tail)) = after.split_once(" failed: ") {
                stage = Some(n.to_string());
                rest = tail;
            }
        }
        for prefix in [
            "Task failed due to runtime execution error: ",
            "Task failed due to panic: ",
        ] {
            rest = rest.strip_prefix(prefix).unwrap_or(rest);
        }
        // Debug forms: Name(…) around the message, the innermost quoted.
        if let Some(open) = rest.find('(') {
            let name = &rest[..open];
            if !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric())
                && name.starts_with(|c: char| c.is_ascii_uppercase())
                && rest.ends_with(')')
            {
                rest = &rest[open + 1..rest.len() - 1];
                // DataFusion's ArrowError(…, backtrace) carries a second
                // field after the error.
                for backtrace in [", Some(\"\")", ", None"] {
                    rest = rest.strip_suffix(backtrace).unwrap_or(rest);
                }
            }
        }
        if rest.len() > 1 && rest.starts_with('"') && rest.ends_with('"') {
            rest = &rest[1..rest.len() - 1];
        }
        if rest == before {
            break;
        }
    }
    let message = rest.replace("\\\"", "\"").replace("\\\\", "\\");
    match (job, stage) {
        (Some(job), Some(stage)) => {
            format!("the cluster's job {job} failed in stage {stage}: {message}")
        }
        (Some(job), None) => format!("the cluster's job {job} failed: {message}"),
        _ => message,
    }
}

/// What `seg executor` was asked for.
pub struct ExecutorOptions {
    pub scheduler: (String, u16),
    pub bind: SocketAddr,
    /// Another address the scheduler and clients reach this executor at.
    pub advertise: Option<String>,
    pub work_dir: Option<std::path::PathBuf>,
    /// Tasks at once (default: the cores).
    pub concurrency: Option<usize>,
    /// The memory pool in bytes (default: Ballista's share of the machine).
    pub memory_limit: Option<u64>,
}

/// `seg executor`: Ballista's executor with Seg's codecs, serving Arrow
/// Flight on `bind` and its gRPC on the next port, until the process ends.
/// Waits up to `wait` for the scheduler to answer.
pub async fn serve_executor(
    options: ExecutorOptions,
    wait: std::time::Duration,
) -> std::result::Result<(), String> {
    use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
    let (host, port) = options.scheduler.clone();
    let start = std::time::Instant::now();
    loop {
        match reach_scheduler(&host, port, std::time::Duration::from_secs(2)).await {
            Ok(()) => break,
            Err(e) if start.elapsed() >= wait => return Err(e),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
    let grpc_port = options.bind.port().checked_add(1).ok_or_else(|| {
        format!(
            "{}: the port after it serves gRPC; choose a lower one",
            options.bind
        )
    })?;
    for port in [options.bind.port(), grpc_port] {
        let addr = SocketAddr::new(options.bind.ip(), port);
        std::net::TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    }
    // Shuffle files and spills go to the work directory: the one given, or
    // a temporary one removed when the executor stops.
    let temporary;
    let work_dir = match &options.work_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("--work-dir {}: {e}", dir.display()))?;
            dir.clone()
        }
        None => {
            temporary = tempfile::Builder::new()
                .prefix("seg-executor-")
                .tempdir()
                .map_err(|e| format!("cannot make a work directory: {e}"))?;
            temporary.path().to_path_buf()
        }
    };
    let node = format!(
        "{} ({})",
        options.advertise.clone().unwrap_or_else(host_name),
        options.bind
    );
    let store = Arc::new(NodeStore {
        inner: object_store::local::LocalFileSystem::new(),
        node,
    });
    let spill_dir = work_dir.clone();
    // Ballista makes a runtime per client session (each `seg run`); the
    // footers read by one query serve the next ones through one cache (an
    // entry counts while the file's size and time are those the query
    // names).
    let footers = datafusion::execution::runtime_env::RuntimeEnv::default()
        .cache_manager
        .get_file_metadata_cache();
    let runtime: ballista_core::RuntimeProducer = Arc::new(move |_config| {
        use datafusion::execution::cache::cache_manager::CacheManagerConfig;
        let caches =
            CacheManagerConfig::default().with_file_metadata_cache(Some(Arc::clone(&footers)));
        let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
            .with_temp_file_path(spill_dir.clone())
            .with_cache_manager(caches)
            .with_object_store_registry(Arc::new(crate::data::remote::Stores::default()))
            .build()?;
        runtime.register_object_store(
            ObjectStoreUrl::local_filesystem().as_ref(),
            Arc::clone(&store) as Arc<dyn object_store::ObjectStore>,
        );
        Ok(Arc::new(runtime))
    });
    let config = ExecutorProcessConfig {
        bind_host: options.bind.ip().to_string(),
        external_host: options.advertise.clone(),
        port: options.bind.port(),
        grpc_port,
        scheduler_host: host,
        scheduler_port: port,
        vcores: options.concurrency.unwrap_or(0),
        work_dir: Some(work_dir.to_string_lossy().into_owned()),
        override_runtime_producer: Some(runtime),
        memory_pool_size: options.memory_limit,
        override_logical_codec: Some(Arc::new(SegLogicalCodec::default())),
        override_physical_codec: Some(Arc::new(SegPhysicalCodec::default())),
        executor_heartbeat_interval_seconds: HEARTBEAT_SECONDS,
        ..Default::default()
    };
    start_executor_process(Arc::new(config))
        .await
        .map_err(|e| format!("the executor stopped: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_urls() {
        assert_eq!(
            scheduler_address("df://localhost:50050"),
            Ok(("localhost".into(), 50050))
        );
        assert_eq!(
            scheduler_address("df://10.0.0.7"),
            Ok(("10.0.0.7".into(), 50050))
        );
        assert_eq!(
            scheduler_address("df://[::1]:6000/"),
            Ok(("::1".into(), 6000))
        );
        assert!(scheduler_address("http://localhost:50050").is_err());
        assert!(scheduler_address("df://localhost:port").is_err());
        assert!(scheduler_address("df://").is_err());
        assert!(scheduler_address("df://:50050").is_err());
    }

    /// Files of the given sizes in a fresh directory (a scan is planned,
    /// not read).
    fn files(sizes: &[usize]) -> (tempfile::TempDir, Vec<TableFile>) {
        let dir = tempfile::tempdir().unwrap();
        let files = sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| {
                let path = dir.path().join(format!("part-{i}.parquet"));
                std::fs::write(&path, vec![0u8; size]).unwrap();
                let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
                TableFile {
                    path,
                    size: size as u64,
                    modified,
                    partition_values: vec![],
                }
            })
            .collect();
        (dir, files)
    }

    fn schema() -> SchemaRef {
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        Arc::new(Schema::new(vec![Field::new(
            "profile_id",
            DataType::Int64,
            true,
        )]))
    }

    #[tokio::test]
    async fn each_task_scans_its_share_of_the_files() {
        use datafusion::datasource::physical_plan::FileScanConfig;
        use datafusion::datasource::source::DataSourceExec;
        use datafusion::prelude::{SessionConfig, SessionContext};
        let (_dir, files) = files(&[1000, 2000, 3000, 4000, 5000, 6000, 7000]);
        let table = FilesTable::new(schema(), files.clone());
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(3));
        let plan = table.scan(&ctx.state(), None, &[], None).await.unwrap();
        let source = plan.downcast_ref::<DataSourceExec>().unwrap();
        let (config, _): (&FileScanConfig, _) =
            source.downcast_to_file_source::<ParquetSource>().unwrap();
        assert_eq!(config.file_groups.len(), 3);
        let mut scanned: Vec<String> = config
            .file_groups
            .iter()
            .flat_map(|g| g.iter().map(|f| f.object_meta.location.to_string()))
            .collect();
        scanned.sort();
        let mut want: Vec<String> = files
            .iter()
            .map(|f| f.path.to_string_lossy().trim_start_matches('/').to_string())
            .collect();
        want.sort();
        assert_eq!(scanned, want, "every file once");
    }

    #[tokio::test]
    async fn a_file_missing_or_changed_is_an_error_naming_it() {
        use datafusion::prelude::SessionContext;
        let (_dir, mut files) = files(&[100, 200]);
        let state = SessionContext::new().state();
        let scan_error = |files: Vec<TableFile>| {
            let state = &state;
            async move {
                FilesTable::new(schema(), files)
                    .scan(state, None, &[], None)
                    .await
                    .unwrap_err()
                    .to_string()
            }
        };
        files[1].size = 201;
        let err = scan_error(files.clone()).await;
        assert!(err.contains(&*files[1].path.to_string_lossy()), "{err}");
        assert!(err.contains("200 bytes on the scheduler"), "{err}");
        files[1].size = 200;
        files[1].modified -= std::time::Duration::from_secs(1);
        let err = scan_error(files.clone()).await;
        assert!(err.contains("written at another time"), "{err}");
        std::fs::remove_file(&files[0].path).unwrap();
        let err = scan_error(files.clone()).await;
        assert!(err.contains(&*files[0].path.to_string_lossy()), "{err}");
        assert!(err.contains("cannot be read on the scheduler"), "{err}");
    }

    #[test]
    fn the_files_travel_in_the_logical_codec() {
        use datafusion::prelude::SessionContext;
        let (_dir, files) = files(&[10, 20]);
        let codec = SegLogicalCodec::default();
        let table: Arc<dyn TableProvider> = Arc::new(FilesTable::new(schema(), files.clone()));
        let name = TableReference::bare("events");
        let mut buf = Vec::new();
        codec
            .try_encode_table_provider(&name, table, &mut buf)
            .unwrap();
        let ctx = SessionContext::new().task_ctx();
        let back = codec
            .try_decode_table_provider(&buf, &name, schema(), &ctx)
            .unwrap();
        let back = (back.as_ref() as &dyn std::any::Any)
            .downcast_ref::<FilesTable>()
            .unwrap();
        assert_eq!(back.schema, schema());
        let paths: Vec<_> = back
            .files
            .iter()
            .map(|f| (&f.path, f.size, f.modified))
            .collect();
        let want: Vec<_> = files
            .iter()
            .map(|f| (&f.path, f.size, f.modified))
            .collect();
        assert_eq!(paths, want);
    }

    #[test]
    fn failures_read_without_the_wrappers() {
        let text = r#"Execution error: Job 038HQNEN7J000 failed: Job failed due to stage 0 failed: Task failed due to runtime execution error: DataFusionError(Shared(ParquetError(General("Failed to fetch metadata for file tmp/g/events/a.parquet: Object Store error: Generic executor error: n1 (127.0.0.1:50171): Object at location /tmp/g/events/a.parquet not found: No such file or directory (os error 2)"))))"#;
        assert_eq!(
            explain_failure(text),
            "the cluster's job 038HQNEN7J000 failed in stage 0: Failed to fetch metadata for file \
             tmp/g/events/a.parquet: Object Store error: Generic executor error: n1 (127.0.0.1:50171): \
             Object at location /tmp/g/events/a.parquet not found: No such file or directory (os error 2)"
        );
        let text = "Execution error: Job 038HQNAX7A000 failed: DataFusion error: Execution error: /d/events/p.parquet: cannot be read on the scheduler on h: No such file";
        assert_eq!(
            explain_failure(text),
            "the cluster's job 038HQNAX7A000 failed: /d/events/p.parquet: cannot be read on the scheduler on h: No such file"
        );
        let text = "Execution error: Job 038J2BC0B6000 failed: Job failed due to stage 1 failed: Task failed due to runtime execution error: DataFusionError(Shared(ArrowError(InvalidArgumentError(\"Encountered non UTF-8 data: invalid utf-8 sequence of 1 bytes from index 11833\"), Some(\"\"))))\n";
        assert_eq!(
            explain_failure(text),
            "the cluster's job 038J2BC0B6000 failed in stage 1: Encountered non UTF-8 data: invalid utf-8 sequence of 1 bytes from index 11833"
        );
        assert_eq!(
            explain_failure("plain words (with brackets)"),
            "plain words (with brackets)"
        );
    }

    #[test]
    fn the_sequence_aggregate_travels_with_its_parameters() {
        for spec in [
            SequenceSpec {
                steps: 2,
                within: Some(3_600_000_000),
                negated: true,
            },
            SequenceSpec {
                steps: 3,
                within: None,
                negated: false,
            },
        ] {
            let udaf = SequenceUdaf::udaf(spec);
            let codec = SegLogicalCodec::default();
            let mut buf = Vec::new();
            codec.try_encode_udaf(&udaf, &mut buf).unwrap();
            let back = codec.try_decode_udaf(SEQUENCE, &buf).unwrap();
            let back = (back.inner().as_ref() as &dyn std::any::Any)
                .downcast_ref::<SequenceUdaf>()
                .unwrap();
            assert_eq!(back.spec(), spec);
            let codec = SegPhysicalCodec::default();
            let mut buf = Vec::new();
            codec.try_encode_udaf(&udaf, &mut buf).unwrap();
            let back = codec.try_decode_udaf(SEQUENCE, &buf).unwrap();
            let back = (back.inner().as_ref() as &dyn std::any::Any)
                .downcast_ref::<SequenceUdaf>()
                .unwrap();
            assert_eq!(back.spec(), spec);
        }
        assert!(decode_sequence(b"2 x 0").is_err());
        assert!(decode_sequence(b"").is_err());
    }
}
