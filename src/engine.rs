//! Runs checked programs over a data directory with DataFusion.

use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::{provider_as_source, MemTable, TableProvider};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::{LogicalPlan, TableSource};
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};

use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::SessionStateBuilder;
use datafusion::optimizer::{Optimizer, OptimizerRule};

use crate::check::{ObjectIndex, Program};
use crate::data::{load_objects, remote, DataDir, DataError};
use crate::plan::{segment_plan, segments_plan, PlanEnv};

pub mod cluster;
mod dense_count;
mod dictionary_eq;
mod event_scans;
mod events_table;
mod fast_expr;
mod filter_order;
mod int_set;
mod kept_order;
mod mmap_store;
mod narrowing;
mod sample_test;
mod time_rules;
mod union_partitions;

/// A data directory opened for queries: validated tables registered in a
/// DataFusion session, and the dimension tables indexed.
pub struct Engine {
    ctx: SessionContext,
    data: DataDir,
    objects: ObjectIndex,
    events: Arc<dyn TableSource>,
    profiles: Option<Arc<dyn TableSource>>,
    /// `DataDir::profiles_range`, once a query has needed it (shared with
    /// the physical optimizer's [`dense_count::DenseCounts`]).
    profiles_range: Arc<OnceLock<Option<(i64, i64)>>>,
    /// `profiles_range`, being read in the background (see
    /// [`Engine::open_for_queries`]).
    pending_range: Mutex<Option<std::thread::JoinHandle<RangeResult>>>,
    /// The memory pool's size.
    memory_limit: usize,
    /// Whether queries run on a Ballista cluster ([`Engine::open_on_cluster`]).
    on_cluster: bool,
}

impl Engine {
    /// [`Engine::open`], for a caller about to query: whether the profile
    /// ids form a range (which planning needs) is read in the background
    /// meanwhile, instead of at the first query (2–3 ms of a run at 1 M
    /// profiles).
    pub fn open_for_queries(root: &std::path::Path) -> Result<Engine, DataError> {
        let profiles = root.join("profiles.parquet");
        let pending = profiles.is_file().then(|| {
            std::thread::spawn(move || {
                let range = crate::data::dense_range(&profiles);
                (profiles, range)
            })
        });
        let engine = Engine::open(root)?;
        if let Some(handle) = pending {
            if let Ok(mut slot) = engine.pending_range.lock() {
                *slot = Some(handle);
            }
        }
        Ok(engine)
    }

    /// Opens and validates `root` (SPEC §5).
    pub fn open(root: &std::path::Path) -> Result<Engine, DataError> {
        // Local small tables are read while the events' footers are: on a
        // one-folder segment of a Hive table, reading them after took a
        // millisecond of a 17 ms run. In a store, after: the data
        // directory's listing (kept) then answers both.
        let (data, objects) = if remote::url_of(root).is_some() {
            let data = DataDir::open(root)?;
            (data, load_objects(root)?)
        } else {
            let (data, objects) = std::thread::scope(|scope| {
                let objects = scope.spawn(|| load_objects(root));
                let data = DataDir::open(root);
                let objects = objects
                    .join()
                    .unwrap_or_else(|_| Err(DataError::new("reading the small tables failed")));
                (data, objects)
            });
            (data?, objects?)
        };
        let memory_limit = memory_limit()?;
        let config = session_config()?;
        // A bounded memory pool: past it, aggregation emits early and spills
        // to disk instead of growing (30 conditions over 10 M profiles would
        // otherwise hold 30 counters per profile in every partition).
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(memory_limit)))
            .with_object_store_registry(Arc::new(remote::Stores::default()))
            .build_arc()?;
        let scan_files = scan_files(&data)?;
        events_table::prime_metadata_cache(&runtime, &scan_files);
        if read_with_mmap()? {
            runtime.register_object_store(
                ObjectStoreUrl::local_filesystem().as_ref(),
                Arc::new(mmap_store::MmapStore::new()),
            );
        }
        // Per-profile counts in arrays indexed by profile id, where the ids
        // are dense and the arrays fit half the pool; placed before
        // DataFusion distributes the plan.
        let profiles_range = Arc::new(OnceLock::new());
        let mut rules = datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules;
        let at = rules
            .iter()
            .position(|r| r.name() == "EnsureRequirements")
            .unwrap_or(0);
        rules.insert(
            at,
            Arc::new(dense_count::DenseCounts::new(
                Arc::clone(&profiles_range),
                dense_counters(memory_limit),
            )),
        );
        rules.push(Arc::new(filter_order::CheapFirst));
        rules.push(Arc::new(union_partitions::UnionPartitions));
        rules.push(Arc::new(kept_order::KeptOrder));
        rules.push(Arc::new(event_scans::EventScans::new(
            event_files(&data, &scan_files),
            remote::url_of(root).is_none(),
        )));
        // Ahead of DataFusion's rules: the plan, which holds for any data,
        // fitted to what the footers say of `ts` (see `time_rules`).
        let mut logical: Vec<Arc<dyn OptimizerRule + Send + Sync>> = vec![
            Arc::new(time_rules::ElideTime::new(data.ts_span())),
            Arc::new(time_rules::SplitByTime::new(
                Arc::clone(&data.events_schema),
                scan_files.clone(),
                data.file_ts_spans.clone(),
            )),
        ];
        logical.extend(Optimizer::new().rules);
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .with_optimizer_rules(logical)
            .with_physical_optimizer_rules(rules)
            .build();
        let ctx = SessionContext::new_with_state(state);

        let events: Arc<dyn TableProvider> = if data.event_files.is_empty() {
            Arc::new(MemTable::try_new(
                Arc::clone(&data.events_schema),
                vec![vec![]],
            )?)
        } else {
            Arc::new(events_table::EventsTable::new(
                Arc::clone(&data.events_schema),
                scan_files.clone(),
            ))
        };
        ctx.register_table("events", Arc::clone(&events))?;
        let profiles = match &data.profiles {
            Some(path) => {
                let table = listing(std::slice::from_ref(path), profiles_schema())?;
                ctx.register_table("profiles", Arc::clone(&table))?;
                Some(provider_as_source(table))
            }
            None => None,
        };
        Ok(Engine {
            ctx,
            data,
            objects,
            events: provider_as_source(events),
            profiles,
            profiles_range,
            pending_range: Mutex::new(None),
            memory_limit,
            on_cluster: false,
        })
    }

    /// Opens and validates `root` (SPEC §5) as [`Engine::open`] does, for
    /// queries that run on the Ballista cluster whose scheduler is at
    /// `scheduler` (`df://HOST:PORT`); `root` must be a path that every
    /// node of the cluster sees. Fails within `wait` when the scheduler
    /// does not answer. See `engine::cluster` for what differs from a
    /// local run (the ids do not).
    pub async fn open_on_cluster(
        root: &std::path::Path,
        scheduler: &str,
        wait: std::time::Duration,
    ) -> Result<Engine, DataError> {
        use ballista::extension::{SessionConfigExt, SessionContextExt};
        let (host, port) = cluster::scheduler_address(scheduler).map_err(DataError::new)?;
        let root = match remote::url_of(root) {
            Some(_) => root.to_path_buf(),
            None => std::path::absolute(root)
                .map_err(|e| DataError::new(format!("{}: {e}", root.display())))?,
        };
        let data = DataDir::open(&root)?;
        if data.event_files.is_empty() {
            // No events, no work to share (and Ballista does not carry
            // tables held in memory): the answers come from this process.
            return Engine::open(&root);
        }
        let objects = load_objects(&root)?;
        cluster::reach_scheduler(&host, port, wait)
            .await
            .map_err(DataError::new)?;
        // Ballista's adaptive planner (on by default) never finishes a job
        // whose join has an empty side: `click.email at_most 0 times in
        // messages 99999` over listed profiles (a left join of the universe
        // with no counts) kept the scheduler busy until the client gave up.
        let config = session_config()?
            .upgrade_for_ballista()
            .with_ballista_adaptive_query_planner(false)
            .with_ballista_logical_extension_codec(Arc::new(cluster::SegLogicalCodec::default()))
            .with_ballista_physical_extension_codec(Arc::new(cluster::SegPhysicalCodec::default()));
        // Only the logical rules that hold for any process: the plan's
        // comparisons of `ts` that every event meets go.
        let mut logical: Vec<Arc<dyn OptimizerRule + Send + Sync>> =
            vec![Arc::new(time_rules::ElideTime::new(data.ts_span()))];
        logical.extend(Optimizer::new().rules);
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .with_optimizer_rules(logical)
            .build();
        let ctx = SessionContext::remote_with_state(&format!("df://{host}:{port}"), state).await?;
        let events: Arc<dyn TableProvider> = Arc::new(cluster::FilesTable::new(
            Arc::clone(&data.events_schema),
            data.event_files
                .iter()
                .zip(&data.file_footers)
                .zip(&data.partitions.values)
                .map(|((path, footer), partition_values)| cluster::TableFile {
                    path: path.clone(),
                    size: footer.size,
                    modified: footer.modified,
                    partition_values: partition_values.clone(),
                })
                .collect(),
        ));
        ctx.register_table("events", Arc::clone(&events))?;
        let profiles = match &data.profiles {
            Some(path) => {
                let (size, modified) = crate::data::file_stat(path)?;
                let file = cluster::TableFile {
                    path: path.clone(),
                    size,
                    modified,
                    partition_values: vec![],
                };
                let table: Arc<dyn TableProvider> =
                    Arc::new(cluster::FilesTable::new(profiles_schema(), vec![file]));
                ctx.register_table("profiles", Arc::clone(&table))?;
                Some(provider_as_source(table))
            }
            None => None,
        };
        Ok(Engine {
            ctx,
            data,
            objects,
            events: provider_as_source(events),
            profiles,
            profiles_range: Arc::new(OnceLock::new()),
            pending_range: Mutex::new(None),
            memory_limit: memory_limit()?,
            on_cluster: true,
        })
    }

    /// The campaigns and templates of the data.
    pub fn objects(&self) -> &ObjectIndex {
        &self.objects
    }

    /// The validated data directory.
    pub fn data(&self) -> &DataDir {
        &self.data
    }

    /// The DataFusion session (tables `events` and, when present, `profiles`).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    fn env(&self, as_of: DateTime<Utc>) -> Result<PlanEnv<'_>, DataError> {
        let profiles_range = match self.profiles_range.get() {
            Some(r) => *r,
            None => {
                let pending = self.pending_range.lock().ok().and_then(|mut p| p.take());
                let r = match pending.map(|h| h.join()) {
                    // Read in the background, from the file validated since.
                    Some(Ok((path, r))) if self.data.profiles.as_ref() == Some(&path) => r?,
                    _ => self.data.profiles_range()?,
                };
                *self.profiles_range.get_or_init(|| r)
            }
        };
        Ok(PlanEnv {
            events: Arc::clone(&self.events),
            profiles: self.profiles.clone(),
            profiles_range,
            objects: &self.objects,
            ts_type: self.data.ts_type(),
            as_of,
            form: &crate::plan::Executed,
            // One array shared by every partition cannot be shared by
            // machines: a cluster aggregates with DataFusion's operators.
            dense_counters: if self.on_cluster {
                0
            } else {
                dense_counters(self.memory_limit)
            },
        })
    }

    /// The logical plan of a segment, as built (before optimization).
    pub fn plan(
        &self,
        program: &Program,
        segment: usize,
        as_of: DateTime<Utc>,
    ) -> Result<LogicalPlan, DataError> {
        segment_plan(program, segment, &self.env(as_of)?)
    }

    /// The ids of several segments from one scan of events: one ascending
    /// list per segment, in the order given.
    pub async fn run_many(
        &self,
        program: &Program,
        segments: &[usize],
        as_of: DateTime<Utc>,
    ) -> Result<Vec<Vec<i64>>, DataError> {
        let plan = segments_plan(program, segments, &self.env(as_of)?)?;
        let batches = self.execute(plan).await?;
        let mut out = vec![Vec::new(); segments.len()];
        for b in &batches {
            let Some(ids) = b.column_by_name("profile_id") else {
                continue;
            };
            let ids = ids.as_primitive::<Int64Type>();
            for (i, list) in out.iter_mut().enumerate() {
                let Some(m) = b.column_by_name(&format!("m{i}")) else {
                    continue;
                };
                let m = m.as_boolean();
                for row in 0..b.num_rows() {
                    if m.is_valid(row) && m.value(row) && ids.is_valid(row) {
                        list.push(ids.value(row));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The plan after DataFusion's optimizer, as it will run.
    pub fn optimized_plan(
        &self,
        program: &Program,
        segment: usize,
        as_of: DateTime<Utc>,
    ) -> Result<LogicalPlan, DataError> {
        let plan = self.plan(program, segment, as_of)?;
        Ok(self.ctx.state().optimize(&plan)?)
    }

    /// The physical plan of a segment as it will run (Seg's operators
    /// included), indented, one operator a line.
    pub async fn physical_plan(
        &self,
        program: &Program,
        segment: usize,
        as_of: DateTime<Utc>,
    ) -> Result<String, DataError> {
        let plan = self.plan(program, segment, as_of)?;
        let physical = self.ctx.state().create_physical_plan(&plan).await?;
        let shown = datafusion::physical_plan::displayable(physical.as_ref())
            .indent(false)
            .to_string();
        Ok(shown)
    }

    /// The ids of a segment, ascending.
    pub async fn run(
        &self,
        program: &Program,
        segment: usize,
        as_of: DateTime<Utc>,
    ) -> Result<Vec<i64>, DataError> {
        let plan = self.plan(program, segment, as_of)?;
        let batches = self.execute(plan).await?;
        Ok(ids(&batches))
    }

    /// Runs a plan.
    async fn execute(&self, plan: LogicalPlan) -> Result<Vec<RecordBatch>, DataError> {
        use futures::FutureExt;
        let state = self.ctx.state();
        let run = std::panic::AssertUnwindSafe(DataFrame::new(state, plan).collect());
        match run.catch_unwind().await {
            Ok(result) => result.map_err(|e| self.explain(DataError::from(e))),
            // Arrow's and Parquet's decoders can panic on corrupt pages (a
            // bit width past 64, an offset past the buffer): a data error
            // like any other failed read.
            Err(panic) => {
                let text = crate::data::panic_text(panic.as_ref());
                Err(self.located(DataError::new(format!("reading the data failed: {text}"))))
            }
        }
    }

    /// Says what a failed query's error means for the user: the memory
    /// limit to raise, or the file, column and row group that fails to
    /// decode.
    fn explain(&self, err: DataError) -> DataError {
        if self.on_cluster {
            let text = cluster::explain_failure(&err.message);
            // A file that failed to decode on an executor, in a directory
            // this client reads too: the client finds the place.
            let decoding = ["ParquetError(", "ArrowError(", "panic"]
                .iter()
                .any(|what| err.message.contains(what));
            let place = match decoding && remote::url_of(&self.data.root).is_none() {
                true => self.data.locate_read_failure(),
                false => None,
            };
            return match place {
                Some(place) => err.with_message(format!("{place}\n({text})")),
                None => err.with_message(text),
            };
        }
        if err.is_resources_exhausted() {
            let text = format!(
                "{}\nhint: the query needs more memory than SEG_MEMORY_LIMIT allows ({} bytes); raise it, for example SEG_MEMORY_LIMIT=4G",
                err.message, self.memory_limit
            );
            return err.with_message(text);
        }
        if let Some(text) = remote::explain(&self.data.root, &err) {
            // Not decoded again to find the place: it would fetch everything.
            return err.with_message(text);
        }
        if err.is_read_failure() {
            return self.located(err);
        }
        err
    }

    /// A failed read, with the file, column and row group that fail to
    /// decode when they can be found.
    fn located(&self, err: DataError) -> DataError {
        match self.data.locate_read_failure() {
            Some(place) => err.with_message(place),
            None => err,
        }
    }
}

/// Seg's session settings: DataFusion's from the environment
/// (DATAFUSION_EXECUTION_…), for tuning; Seg's defaults where the
/// environment says nothing.
///
/// Parquet filter pushdown stays off (DataFusion's default): decoding the
/// filter's columns first and the others only for the rows kept cost more
/// than it saved on every benchmark segment, from one condition (0.10 s
/// against 0.14 s for distinct days) to thirty (0.84 against 0.86 s, within
/// noise) and `--all` (0.54 against 0.46 s).
fn session_config() -> Result<SessionConfig, DataError> {
    let mut options = datafusion::config::ConfigOptions::from_env()?;
    if std::env::var_os("DATAFUSION_EXECUTION_PARQUET_REORDER_FILTERS").is_none() {
        options.execution.parquet.reorder_filters = true;
    }
    Ok(SessionConfig::from(options).with_information_schema(false))
}

/// The one column of the profiles table that queries read.
fn profiles_schema() -> datafusion::arrow::datatypes::SchemaRef {
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    Arc::new(Schema::new(vec![Field::new(
        "profile_id",
        DataType::Int64,
        true,
    )]))
}

/// The most one-byte counters `DenseCountExec` may hold: half the memory
/// pool (30 conditions over 10 M profiles, 300 MB, fit the default 1 GiB).
fn dense_counters(memory_limit: usize) -> usize {
    memory_limit / 2
}

/// Whether local files are read through memory maps (`SEG_MMAP`, on by
/// default: see docs/benchmarks.md) rather than plain reads.
fn read_with_mmap() -> Result<bool, DataError> {
    match std::env::var("SEG_MMAP").as_deref() {
        Err(_) | Ok("1" | "on" | "true") => Ok(true),
        Ok("0" | "off" | "false") => Ok(false),
        Ok(other) => Err(DataError::new(format!(
            "SEG_MMAP: `{other}` is neither 1 (read through memory maps) nor 0 (plain reads)"
        ))),
    }
}

/// A profiles file and its `dense_range`.
type RangeResult = (std::path::PathBuf, Result<Option<(i64, i64)>, DataError>);

/// The memory pool's size: `SEG_MEMORY_LIMIT` (bytes, or with a K, M or G
/// suffix), 1 GiB by default.
fn memory_limit() -> Result<usize, DataError> {
    const DEFAULT: usize = 1 << 30;
    let Ok(text) = std::env::var("SEG_MEMORY_LIMIT") else {
        return Ok(DEFAULT);
    };
    parse_size(&text).map_err(|e| DataError::new(format!("SEG_MEMORY_LIMIT: {e}")))
}

/// A size in bytes: a number, with a K, M or G suffix (KiB, MB … too).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim().to_ascii_uppercase();
    let t = t
        .strip_suffix("IB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(&t);
    let (digits, scale) = match t.char_indices().last() {
        Some((i, 'K')) => (&t[..i], 1usize << 10),
        Some((i, 'M')) => (&t[..i], 1 << 20),
        Some((i, 'G')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    digits
        .trim()
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("`{text}` is not a size (write 2G, 512M or a number of bytes)"))
}

/// A file (local, or an object-store URL) as DataFusion's listing tables
/// name it.
fn file_url(f: &std::path::Path) -> Result<ListingTableUrl, DataError> {
    if remote::url_of(f).is_some() {
        return ListingTableUrl::parse(f.to_string_lossy()).map_err(DataError::from);
    }
    // Straight to a `file://` URL: `ListingTableUrl::parse` would also ask
    // the file system whether each path is a folder (two `stat`s a file),
    // and read `*`, `?` or `[` in a folder's name as a glob.
    let abs =
        std::path::absolute(f).map_err(|e| DataError::new(format!("{}: {e}", f.display())))?;
    let url = url::Url::from_file_path(&abs)
        .ok()
        // Parsed again to resolve `.` and `..`, as `ListingTableUrl` does.
        .and_then(|u| url::Url::parse(u.as_str()).ok())
        .ok_or_else(|| DataError::new(format!("{}: not a path Seg can read", f.display())))?;
    ListingTableUrl::try_new(url, None).map_err(DataError::from)
}

/// The events files as the scans name them, with their footers.
fn scan_files(data: &DataDir) -> Result<Vec<events_table::EventsFile>, DataError> {
    data.event_files
        .iter()
        .zip(&data.file_footers)
        .enumerate()
        .map(|(n, (file, footer))| {
            let url = file_url(file)?;
            Ok(events_table::EventsFile::new(
                file.clone(),
                url.object_store(),
                url.prefix().clone(),
                footer.clone(),
                data.partitions.scalars(n),
            ))
        })
        .collect()
}

/// What the scans need to know of each events file, by the object-store
/// location a scan names it with.
fn event_files(
    data: &DataDir,
    files: &[events_table::EventsFile],
) -> std::collections::HashMap<String, event_scans::EventFile> {
    files
        .iter()
        .zip(&data.file_read_schemas)
        .map(|(file, schema)| {
            let facts = event_scans::EventFile::new(
                schema.clone(),
                file.footer.clone(),
                file.partition_values.clone(),
            );
            (file.meta.location.to_string(), facts)
        })
        .collect()
}

fn listing(
    files: &[std::path::PathBuf],
    schema: datafusion::arrow::datatypes::SchemaRef,
) -> Result<Arc<dyn TableProvider>, DataError> {
    let urls = files
        .iter()
        .map(|f| file_url(f))
        .collect::<Result<Vec<_>, _>>()?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

fn ids(batches: &[RecordBatch]) -> Vec<i64> {
    let mut out = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
    for b in batches {
        if let Some(c) = b.column_by_name("profile_id") {
            out.extend(c.as_primitive::<Int64Type>().iter().flatten());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_limit_reads_sizes_with_suffixes() {
        // One test sets the variable in turn, so no other test races it.
        for (text, want) in [
            ("2G", Some(2usize << 30)),
            ("512m", Some(512 << 20)),
            ("64 MiB", Some(64 << 20)),
            ("1000", Some(1000)),
            ("0", None),
            ("lots", None),
            ("-1G", None),
        ] {
            std::env::set_var("SEG_MEMORY_LIMIT", text);
            assert_eq!(memory_limit().ok(), want, "{text}");
        }
        std::env::remove_var("SEG_MEMORY_LIMIT");
        assert_eq!(memory_limit().ok(), Some(1 << 30));
    }
}
