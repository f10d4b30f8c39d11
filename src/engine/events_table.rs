//! The events table as DataFusion scans it: the files `DataDir` found and
//! read the footers of, without listing them again.
//!
//! A `ListingTable` over the same files lists each one (a blocking call on
//! a thread of its own per file), then reads and parses every footer again
//! to collect statistics while the plan is built, on one thread: 140 ms of
//! a run over 2 000 small files, before any row was read. Here the files,
//! their sizes and their footers are known: the scan is planned from them,
//! and the footers wait in DataFusion's metadata cache (see
//! [`prime_metadata_cache`]) so its reader does not fetch them again. Filters
//! reach the scan as they do a listing table's, through DataFusion's
//! physical filter pushdown; Seg's rule `EventScans` then prunes and deals
//! the row groups. A file whose size or time changed since its footer was
//! read is an error when a query plans its scan, not a misread.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::ScalarValue;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::metadata::CachedParquetMetaData;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::cache::cache_manager::CachedFileMetadataEntry;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::parquet::file::metadata::ParquetMetaData;
use datafusion::physical_plan::ExecutionPlan;
use object_store::ObjectMeta;

use crate::data::Footer;

/// One events file: where the object store finds it and its footer.
#[derive(Debug, Clone)]
pub struct EventsFile {
    pub path: PathBuf,
    /// The store it is in (the local file system, or a bucket).
    pub store: ObjectStoreUrl,
    pub meta: ObjectMeta,
    pub footer: Footer,
    /// Its values of the table's Hive partition columns (see
    /// `data::Partitions`), in their order.
    pub partition_values: Vec<ScalarValue>,
}

impl EventsFile {
    /// `location` is the object-store path of the file at `path` in
    /// `store` (as `ListingTableUrl::prefix` and `object_store` give them).
    pub fn new(
        path: PathBuf,
        store: ObjectStoreUrl,
        location: object_store::path::Path,
        footer: Footer,
        partition_values: Vec<ScalarValue>,
    ) -> Self {
        let meta = ObjectMeta {
            location,
            last_modified: DateTime::<Utc>::from(footer.modified),
            size: footer.size,
            e_tag: None,
            version: None,
        };
        EventsFile {
            path,
            store,
            meta,
            footer,
            partition_values,
        }
    }

    /// An error when the file is no longer the one whose footer was read
    /// (its size or time changed): the footer would misread it. A file in
    /// an object store is not asked again (a request per file and query):
    /// one deleted since is an error when it is read, naming it.
    fn check_unchanged(&self) -> Result<()> {
        if self.store != ObjectStoreUrl::local_filesystem() {
            return Ok(());
        }
        let now = std::fs::metadata(&self.path)
            .map_err(|e| DataFusionError::Execution(format!("{}: {e}", self.path.display())))?;
        if now.len() == self.footer.size && now.modified().ok() == Some(self.footer.modified) {
            return Ok(());
        }
        Err(DataFusionError::Execution(format!(
            "{}: changed since the data directory was opened (was {} bytes, is {}); \
             open the data again (`:data DIR` in the REPL)",
            self.path.display(),
            self.footer.size,
            now.len()
        )))
    }
}

/// Puts the footers of `files` in the runtime's metadata cache, where
/// DataFusion's Parquet reader looks before it reads a footer (an entry
/// counts while the file's size and time are those of `meta`).
pub fn prime_metadata_cache(runtime: &RuntimeEnv, files: &[EventsFile]) {
    let cache = runtime.cache_manager.get_file_metadata_cache();
    for file in files {
        let metadata = CachedParquetMetaData::new(Arc::clone(&file.footer.metadata));
        cache.put(
            &file.meta.location,
            CachedFileMetadataEntry::new(file.meta.clone(), Arc::new(metadata)),
        );
    }
}

/// Where each row group with rows of a file starts: its index in the
/// footer and the offset of its first page. DataFusion reads a row group in
/// the byte range of the file that holds that offset.
pub fn row_group_starts(metadata: &ParquetMetaData) -> Vec<(usize, u64)> {
    metadata
        .row_groups()
        .iter()
        .enumerate()
        .filter(|(_, g)| g.num_rows() > 0 && g.num_columns() > 0)
        .map(|(i, g)| {
            let c = g.column(0);
            let start = c
                .dictionary_page_offset()
                .unwrap_or_else(|| c.data_page_offset());
            (i, u64::try_from(start).unwrap_or(0))
        })
        .collect()
}

/// The byte range in which DataFusion reads the `n`th of `starts` (as
/// [`row_group_starts`] gives them) of a file of `size` bytes.
pub fn row_group_range(starts: &[(usize, u64)], n: usize, size: u64) -> Range<u64> {
    let start = starts[n].1;
    let end = starts.get(n + 1).map_or(size, |&(_, next)| next);
    start..end.max(start + 1)
}

/// See the module documentation.
#[derive(Debug)]
pub struct EventsTable {
    schema: SchemaRef,
    /// The files it scans, each whole or only the row groups in a range.
    parts: Vec<(EventsFile, Option<Range<u64>>)>,
}

impl EventsTable {
    /// A table of whole files.
    pub fn new(schema: SchemaRef, files: Vec<EventsFile>) -> Self {
        EventsTable::of_parts(schema, files.into_iter().map(|f| (f, None)).collect())
    }

    /// A table of files, each whole or the row groups in a byte range of it.
    pub fn of_parts(schema: SchemaRef, parts: Vec<(EventsFile, Option<Range<u64>>)>) -> Self {
        EventsTable { schema, parts }
    }

    /// Whether it scans exactly `n` whole files.
    pub fn is_whole(&self, n: usize) -> bool {
        self.parts.len() == n && self.parts.iter().all(|(_, range)| range.is_none())
    }
}

#[async_trait]
impl TableProvider for EventsTable {
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
        let runtime = state.runtime_env();
        let store = self
            .parts
            .first()
            .map_or_else(ObjectStoreUrl::local_filesystem, |(f, _)| f.store.clone());
        let reader = CachedParquetFileReaderFactory::new(
            runtime.object_store(&store)?,
            runtime.cache_manager.get_file_metadata_cache(),
        );
        let partition_cols = self
            .parts
            .first()
            .map_or(0, |(f, _)| f.partition_values.len());
        let source = ParquetSource::new(table_schema(&self.schema, partition_cols))
            .with_parquet_file_reader_factory(Arc::new(reader));
        let files: Vec<PartitionedFile> = self
            .parts
            .iter()
            .map(|(f, range)| {
                f.check_unchanged()?;
                let mut file = PartitionedFile::new_from_meta(f.meta.clone());
                file.partition_values = f.partition_values.clone();
                Ok(match range {
                    Some(r) => file.with_range(to_i64(r.start)?, to_i64(r.end)?),
                    None => file,
                })
            })
            .collect::<Result<_>>()?;
        parquet_scan(state, store, source, files, projection, limit)
    }
}

/// The table `schema` whose last `partition_cols` fields are Hive
/// partition columns (their values come with each file, not from it), as
/// DataFusion's scans take it.
pub fn table_schema(schema: &SchemaRef, partition_cols: usize) -> TableSchema {
    let in_files = schema.fields().len().saturating_sub(partition_cols);
    let file_schema = Schema::new_with_metadata(
        schema.fields()[..in_files].to_vec(),
        schema.metadata().clone(),
    );
    TableSchema::builder(Arc::new(file_schema))
        .with_table_partition_cols(schema.fields()[in_files..].to_vec())
        .build()
}

fn to_i64(offset: u64) -> Result<i64> {
    i64::try_from(offset)
        .map_err(|e| DataFusionError::Internal(format!("file offset {offset}: {e}")))
}

/// A scan of Parquet `files` of `store` with the session's Parquet
/// options, in one group of files per target partition.
pub fn parquet_scan(
    state: &dyn Session,
    store: ObjectStoreUrl,
    source: ParquetSource,
    files: Vec<PartitionedFile>,
    projection: Option<&Vec<usize>>,
    limit: Option<usize>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let source = source.with_table_parquet_options(state.table_options().parquet.clone());
    let partitions = state.config_options().execution.target_partitions.max(1);
    let groups = if files.is_empty() {
        vec![]
    } else {
        FileGroup::new(files).split_files(partitions)
    };
    let config = FileScanConfigBuilder::new(store, Arc::new(source))
        .with_file_groups(groups)
        .with_projection_indices(projection.cloned())?
        .with_limit(limit)
        .build();
    Ok(DataSourceExec::from_data_source(config))
}
