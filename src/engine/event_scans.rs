//! A physical optimizer rule for the scans of events files: each file is read
//! with the Arrow schema `DataDir` chose for it, and the row groups of a
//! scan are dealt to its partitions in turn.
//!
//! **Schemas.** DuckDB, pyarrow, Spark and most other writers declare
//! `channel` and `event` as plain strings while dictionary-encoding their
//! pages. Read as plain strings, every row's text is copied out of the
//! page's dictionary (with its offsets, into freshly zeroed buffers) before
//! the filter sees it; read as `Dictionary(Int32, Utf8)`, the page's keys
//! are kept and `DictionaryEq` compares them. The events table declares both
//! columns as dictionaries, so nothing casts them back. DataFusion's Parquet
//! reader takes such a schema per file (`PartitionedFile::arrow_schema`).
//!
//! **Row groups.** DataFusion splits a scan's files into contiguous byte
//! ranges, one per partition, before the row groups are pruned by their
//! statistics. In a time-sorted file the row groups a window keeps are
//! neighbours, so they all fall in one partition and one core reads them
//! while the other waits (DuckDB's files: 82 row groups of 122 880 rows in
//! one file, of which a 30-day window keeps the last seven). And a row group
//! is read whole by one partition: pyarrow's and `seg gen`'s files hold one
//! row group of a million rows each, of which a 30-day window keeps three or
//! four. Here the row groups the statistics keep are dealt after pruning,
//! by cost: each partition reads a contiguous run of about the same number
//! of rows (and of row groups' fixed costs), and a row group across the
//! boundary of two runs is read in two parts, each with a row selection
//! (the reader skips the pages of the other part without decompressing
//! them; each part reads the row group's dictionary pages). Each row group
//! is still named by the byte range that holds it (DataFusion reads a row
//! group in the range that holds its first page), so a plan shows what each
//! partition reads. The number of partitions stays the one DataFusion
//! chose. Files in an object store are not cut (a part would fetch its row
//! group's whole column chunks), nor files with a page index, which keep the
//! predicate for DataFusion's reader: on `seg gen`'s files (LZ4, a page
//! index) reading a row group in two parts made a one-condition segment
//! 9–14 % slower, where on pyarrow's (Snappy, no page index) it made it
//! 6–9 % faster.
//!
//! **Statistics.** DataFusion's reader prunes row groups by their
//! statistics file by file: for each file it adapts the scan's predicate to
//! the file, builds a pruning predicate from it (twice, once for the file
//! and once for its row groups; and one per conjunct for the page index),
//! evaluates it, and looks for bloom filters. On 2 000 files of 5 000 events
//! that was half of a run, more than decoding the data. Here the statistics
//! of every row group of every file of the scan (from the footers `DataDir`
//! read once) are evaluated against one pruning predicate in one call; row
//! groups that cannot hold a matching row are not scanned, and files with
//! none left are dropped. The predicate's static part then leaves the scan
//! (the filter above it still tests every row) unless a file of the scan has
//! bloom filters or a page index, which only DataFusion's reader uses, or
//! Parquet filter pushdown is on (then the predicate filters rows). Dynamic
//! filters (known only while the query runs) stay on the scan.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, Array, ArrayRef, UInt64Array};
use datafusion::arrow::compute::{cast, concat};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::{ParquetAccessPlan, RowGroupAccess};
use datafusion::datasource::physical_plan::{
    FileGroup, FileScanConfig, FileScanConfigBuilder, FileSource, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::Result;
use datafusion::parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use datafusion::parquet::arrow::arrow_reader::{RowSelection, RowSelector};
use datafusion::parquet::file::metadata::RowGroupMetaData;
use datafusion::physical_expr::expressions::{lit, DynamicFilterPhysicalExpr};
use datafusion::physical_expr::{conjunction, split_conjunction, PhysicalExpr};
use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;

use super::events_table::{row_group_range, row_group_starts};
use crate::data::Footer;

/// What the rule knows of one events file.
#[derive(Debug, Clone)]
pub struct EventFile {
    /// The schema to read it as, when not its own.
    pub read_schema: Option<SchemaRef>,
    /// Its footer.
    footer: Footer,
    /// Its row groups with rows: their index in the file and where they
    /// start (the offset of their first page).
    row_groups: Vec<(usize, u64)>,
    /// Whether a column chunk has a bloom filter or a page index.
    indexed: bool,
    /// Its values of the table's Hive partition columns, in their order.
    partition_values: Vec<ScalarValue>,
}

impl EventFile {
    pub fn new(
        read_schema: Option<SchemaRef>,
        footer: Footer,
        partition_values: Vec<ScalarValue>,
    ) -> Self {
        let row_groups = row_group_starts(&footer.metadata);
        let indexed = footer
            .metadata
            .row_groups()
            .iter()
            .flat_map(|g| g.columns())
            .any(|c| c.bloom_filter_offset().is_some() || c.column_index_offset().is_some());
        EventFile {
            read_schema,
            footer,
            row_groups,
            indexed,
            partition_values,
        }
    }

    /// The index of the row group `part` of this file starts with, when its
    /// byte range starts where one does (as the parts of [`deal`] do).
    fn row_group_of(&self, part: &PartitionedFile) -> Option<usize> {
        let start = u64::try_from(part.range.as_ref()?.start).ok()?;
        self.row_groups
            .iter()
            .find(|&&(_, s)| s == start)
            .map(|&(index, _)| index)
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct EventScans {
    /// By object-store location (as `ListingTableUrl` names the file).
    files: HashMap<String, EventFile>,
    /// Whether a row group may be read in parts (see [`deal`] and the
    /// module documentation): not from an object store, where a part
    /// fetches its row group's whole column chunks.
    cut: bool,
}

/// Which row groups of a scan's files can hold a row its predicate keeps.
struct Kept {
    /// By location, per row group of the file (indexed as in its footer).
    row_groups: HashMap<String, Vec<bool>>,
}

impl Kept {
    fn row_group(&self, location: &str, index: usize) -> bool {
        self.row_groups
            .get(location)
            .and_then(|kept| kept.get(index).copied())
            .unwrap_or(true)
    }
}

impl EventScans {
    pub fn new(files: HashMap<String, EventFile>, cut: bool) -> Self {
        EventScans { files, cut }
    }

    /// The file with its read schema, when it has one.
    fn with_schema(&self, f: &PartitionedFile) -> PartitionedFile {
        match self.files.get(f.object_meta.location.as_ref()) {
            Some(EventFile {
                read_schema: Some(schema),
                ..
            }) if f.arrow_schema.is_none() => f.clone().with_arrow_schema(Arc::clone(schema)),
            _ => f.clone(),
        }
    }

    /// Whether a file of `config` is an events file (whose row groups the
    /// rule deals, and which it may read with another schema).
    fn touches(&self, config: &FileScanConfig) -> bool {
        config
            .file_groups
            .iter()
            .flat_map(FileGroup::iter)
            .any(|f| self.files.contains_key(f.object_meta.location.as_ref()))
    }

    /// The scan's files, as events files; `None` when one is something
    /// else.
    fn event_files<'a>(&'a self, config: &'a FileScanConfig) -> Option<Vec<&'a EventFile>> {
        config
            .file_groups
            .iter()
            .flat_map(FileGroup::iter)
            .map(|f| self.files.get(f.object_meta.location.as_ref()))
            .collect()
    }

    /// The row groups of the scan's files that `predicate` (over the table
    /// schema) may keep, from their statistics in one evaluation. `None`
    /// when the predicate cannot be evaluated on statistics.
    fn kept(
        &self,
        config: &FileScanConfig,
        table: &TableSchema,
        predicate: &Arc<dyn PhysicalExpr>,
        max_in_list_size: usize,
    ) -> Option<Kept> {
        let pruning = PruningPredicateBuilder::new()
            .with_file_schema(Arc::clone(table.table_schema()))
            .with_max_in_list_size(max_in_list_size)
            .build(Arc::clone(predicate))?;
        let mut seen = HashSet::new();
        let files: Vec<(&str, &EventFile)> = config
            .file_groups
            .iter()
            .flat_map(FileGroup::iter)
            .filter_map(|f| {
                let location = f.object_meta.location.as_ref();
                let file = self.files.get(location)?;
                seen.insert(location).then_some((location, file))
            })
            .collect();
        let statistics = RowGroupStatistics::new(table, files.iter().map(|(_, f)| *f).collect());
        let mut verdicts = pruning.prune(&statistics).ok()?.into_iter();
        let row_groups = files
            .iter()
            .map(|(location, file)| {
                let mut kept = vec![true; file.footer.metadata.num_row_groups()];
                for &(i, _) in &file.row_groups {
                    kept[i] = verdicts.next().unwrap_or(true);
                }
                (location.to_string(), kept)
            })
            .collect();
        Some(Kept { row_groups })
    }

    /// The row groups the scan reads, each once, in the order of its files:
    /// those a file's range holds (DataFusion reads a row group in the
    /// range that holds its start) and `kept` keeps.
    fn units(&self, config: &FileScanConfig, kept: Option<&Kept>) -> Option<Vec<Unit>> {
        let mut units = Vec::new();
        let mut seen = HashSet::new();
        for f in config.file_groups.iter().flat_map(FileGroup::iter) {
            if f.extension::<ParquetAccessPlan>().is_some() {
                return None;
            }
            let location = f.object_meta.location.as_ref();
            let file = self.files.get(location)?;
            let within = |start: u64| {
                f.range.as_ref().is_none_or(|r| {
                    i64::try_from(start).is_ok_and(|start| r.start <= start && start < r.end)
                })
            };
            for (n, &(index, start)) in file.row_groups.iter().enumerate() {
                if !within(start)
                    || !kept.is_none_or(|k| k.row_group(location, index))
                    || !seen.insert((location, index))
                {
                    continue;
                }
                let range = row_group_range(&file.row_groups, n, f.object_meta.size);
                let (Ok(start), Ok(end)) = (i64::try_from(range.start), i64::try_from(range.end))
                else {
                    return None;
                };
                let mut read = self.with_schema(f);
                read.range = None;
                units.push(Unit {
                    file: read.with_range(start, end),
                    cut: self.cut && !file.indexed,
                    index,
                    rows: usize::try_from(file.footer.metadata.row_group(index).num_rows())
                        .unwrap_or(0),
                    row_groups: file.footer.metadata.num_row_groups(),
                });
            }
        }
        Some(units)
    }

    /// A partition's `files` (as [`deal`] gives them, a row group or a part
    /// of one each) with the neighbours from one file made one, up to
    /// [`MERGED_ROWS`] rows: its byte range spans theirs and an access plan
    /// names their row groups (and the rows of a part). DataFusion opens
    /// each file it is given anew: it adapts the predicate, builds its
    /// pruning predicates and prunes the row groups again, which on DuckDB's
    /// files (163 row groups of 122 880 rows in a file at 20 M events) cost
    /// more than a segment that reads few rows.
    fn merged(&self, files: Vec<PartitionedFile>) -> Vec<PartitionedFile> {
        let mut merged: Vec<PartitionedFile> = Vec::with_capacity(files.len());
        // Runs of parts of one file, and the rows of the last run.
        let mut runs: Vec<Vec<PartitionedFile>> = Vec::new();
        let mut rows = 0;
        for f in files {
            let file = self.files.get(f.object_meta.location.as_ref());
            let own = file.map_or(MERGED_ROWS, |file| part_rows(&f, file));
            match runs.last_mut() {
                Some(run)
                    if run[0].object_meta.location == f.object_meta.location
                        && rows + own <= MERGED_ROWS =>
                {
                    rows += own;
                    run.push(f);
                }
                _ => {
                    rows = own;
                    runs.push(vec![f]);
                }
            }
        }
        for run in runs {
            let file = self.files.get(run[0].object_meta.location.as_ref());
            match (run.len(), file) {
                (2.., Some(file)) => match merge(&run, file) {
                    Some(one) => merged.push(one),
                    None => merged.extend(run),
                },
                _ => merged.extend(run),
            }
        }
        merged
    }

    /// A scan of events files with its row groups pruned and dealt to its
    /// partitions, its predicate's static part taken off where nothing else
    /// uses it (see the module documentation); `None` when the rule leaves
    /// the scan as it is.
    fn rewrite(&self, exec: &DataSourceExec) -> Option<DataSourceExec> {
        let (config, source) = exec.downcast_to_file_source::<ParquetSource>()?;
        let files = self.event_files(config);
        let options = &source.table_parquet_options().global;
        // The predicate's conjuncts: those known when planning, and the
        // dynamic ones.
        let (fixed, dynamic): (Vec<_>, Vec<_>) = FileSource::filter(source)
            .map(|p| {
                split_conjunction(&p)
                    .into_iter()
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
            .into_iter()
            .partition(|c| !is_dynamic(c));
        let kept = match (&files, conjunction_of(&fixed)) {
            (Some(_), Some(predicate)) if options.pruning => self.kept(
                config,
                FileSource::table_schema(source),
                &predicate,
                options.max_in_list_size,
            ),
            _ => None,
        };
        if kept.is_none() && !self.touches(config) {
            return None;
        }
        let partitions = config.file_groups.len();
        let units = (files.is_some() && partitions > 0 && !config.preserve_order)
            .then(|| self.units(config, kept.as_ref()))
            .flatten();
        // Bloom filters and page indexes of the files still read.
        let indexed = units.iter().flatten().any(|u| {
            self.files
                .get(u.file.object_meta.location.as_ref())
                .is_some_and(|f| f.indexed)
        });
        // Whether the kept row groups are the ones scanned.
        let pruned = kept.is_some() && units.is_some();
        let groups: Vec<FileGroup> = match units {
            Some(units) => deal(units, partitions)
                .into_iter()
                .map(|files| FileGroup::new(self.merged(files)))
                .collect(),
            // Not only events files: the schemas alone.
            None => config
                .file_groups
                .iter()
                .map(|group| {
                    let files = group.iter().map(|f| self.with_schema(f)).collect();
                    match group.file_statistics(None) {
                        Some(s) => FileGroup::new(files).with_statistics(Arc::new(s.clone())),
                        None => FileGroup::new(files),
                    }
                })
                .collect(),
        };
        let mut builder = FileScanConfigBuilder::from(config.clone()).with_file_groups(groups);
        if !options.pushdown_filters && fixed.iter().any(is_one_link) {
            builder = builder.with_source(Arc::new(source.clone().with_pushdown_filters(true)));
        } else if pruned && !options.pushdown_filters && !indexed {
            let rest = conjunction_of(&dynamic).unwrap_or_else(|| lit(true));
            builder = builder.with_source(Arc::new(source.with_predicate(rest)));
        }
        Some(exec.clone().with_data_source(Arc::new(builder.build())))
    }
}

/// One row group to read: its file (with the byte range that holds the
/// row group, and the schema to read it with), whether it may be read in
/// parts, its index in the file, its rows, and the file's number of row
/// groups.
struct Unit {
    file: PartitionedFile,
    cut: bool,
    index: usize,
    rows: usize,
    row_groups: usize,
}

/// The fewest rows of a part of a row group read on its own (four of
/// DataFusion's default batches): a part re-reads the row group's
/// dictionary pages and the page it starts in.
const MIN_PART: usize = 32 * 1024;

/// What reading a row group costs besides its rows, in rows: opening its
/// file, a partial last batch. Measured on Spark's layout (30 conditions,
/// one partition): 150 files took 10 % longer than 50 files of as many
/// rows, about 5 600 rows' work a file.
const UNIT_COST: usize = 8 * 1024;

/// `units` dealt to `partitions` in contiguous runs of about equal cost
/// (each row group's rows and [`UNIT_COST`]). A row group across the
/// boundary of two runs is cut there (when it may be, and both sides keep
/// at least [`MIN_PART`] rows): each side is read by its own run, with a row
/// selection, and the reader skips the other side's pages without
/// decompressing them. Otherwise a row group goes whole to the run that
/// holds its middle. Dealt by cost, not by row groups: a 30-day window over
/// files of one million-row group each keeps three or four row groups,
/// which two partitions cannot share evenly.
fn deal(units: Vec<Unit>, partitions: usize) -> Vec<Vec<PartitionedFile>> {
    let partitions = partitions.max(1);
    let total: usize = units.iter().map(|u| UNIT_COST + u.rows).sum();
    let bound = |p: usize| -> usize {
        usize::try_from(total as u128 * p as u128 / partitions as u128).unwrap_or(total)
    };
    let run_of = |at: usize| (1..partitions).rev().find(|&p| bound(p) <= at).unwrap_or(0);
    let mut dealt = vec![Vec::new(); partitions];
    let mut at = 0;
    for unit in units {
        // The unit's cost is [start, end); its rows are [first, end).
        let (start, first, end) = (at, at + UNIT_COST, at + UNIT_COST + unit.rows);
        at = end;
        let mut cuts = vec![first];
        if unit.cut {
            for c in (1..partitions).map(bound) {
                let last = cuts.last().copied().unwrap_or(first);
                if c > last && c - last >= MIN_PART && end.saturating_sub(c) >= MIN_PART {
                    cuts.push(c);
                }
            }
        }
        cuts.push(end);
        if cuts.len() == 2 {
            dealt[run_of(start + (end - start) / 2)].push(unit.file);
            continue;
        }
        for part in cuts.windows(2) {
            let (from, to) = (part[0], part[1]);
            let selectors: Vec<RowSelector> = [
                RowSelector::skip(from - first),
                RowSelector::select(to - from),
                RowSelector::skip(end - to),
            ]
            .into_iter()
            .filter(|s| s.row_count > 0)
            .collect();
            let mut plan = ParquetAccessPlan::new_none(unit.row_groups);
            plan.set(
                unit.index,
                RowGroupAccess::Selection(RowSelection::from(selectors)),
            );
            let from = if from == first { start } else { from };
            dealt[run_of(from + (to - from) / 2)].push(unit.file.clone().with_extension(plan));
        }
    }
    dealt
}

/// The most rows of row groups of one file read as one part
/// ([`EventScans::merged`]). DataFusion's partitions take the parts of a scan
/// from one queue as they finish the last, so parts no longer than this
/// keep them finishing together (a part of half a million rows is a few
/// milliseconds of decoding) while a file of 163 row groups is opened 41
/// times, not 163.
const MERGED_ROWS: usize = 1 << 19;

/// The rows of row groups `part` (a row group or a part of one of `file`,
/// named by its byte range) reads.
fn part_rows(part: &PartitionedFile, file: &EventFile) -> usize {
    let Some(index) = file.row_group_of(part) else {
        return MERGED_ROWS;
    };
    match part
        .extension::<ParquetAccessPlan>()
        .and_then(|plan| plan.inner().get(index))
    {
        Some(RowGroupAccess::Selection(selection)) => selection.row_count(),
        _ => usize::try_from(file.footer.metadata.row_group(index).num_rows()).unwrap_or(0),
    }
}

/// `run` (parts of one `file`, each a row group or part of one named by its
/// byte range, in the file's order) as one part: its range spans theirs,
/// and its access plan reads what each of them reads. `None` when a part
/// is not one that [`deal`] makes.
fn merge(run: &[PartitionedFile], file: &EventFile) -> Option<PartitionedFile> {
    let row_groups = file.footer.metadata.num_row_groups();
    let mut plan = ParquetAccessPlan::new_none(row_groups);
    for part in run {
        let index = file.row_group_of(part)?;
        let access = match part.extension::<ParquetAccessPlan>() {
            Some(own) => own.inner().get(index)?.clone(),
            None => RowGroupAccess::Scan,
        };
        if !matches!(plan.inner()[index], RowGroupAccess::Skip) {
            return None;
        }
        plan.set(index, access);
    }
    let (first, last) = (run.first()?.range.as_ref()?, run.last()?.range.as_ref()?);
    if first.start >= last.end {
        return None;
    }
    Some(
        run[0]
            .clone()
            .with_range(first.start, last.end)
            .with_extension(plan),
    )
}

/// `a AND b AND …`, or `None` for no conjunct.
fn conjunction_of(conjuncts: &[Arc<dyn PhysicalExpr>]) -> Option<Arc<dyn PhysicalExpr>> {
    (!conjuncts.is_empty()).then(|| conjunction(conjuncts.iter().cloned()))
}

/// Whether `conjunct` keeps only the rows of given links (`link = '…'`,
/// `link IN (…)`). Such a scan reads its rows with Parquet filter pushdown:
/// the filter's columns first, then the others only for the rows kept,
/// skipping the pages that hold none without decompressing them. One link
/// is most often in few rows or none (a link no Spark-written row group
/// holds: 0.29 s read whole, 0.07 s this way, at 20 M events), where
/// pushdown for every scan cost more than it saved (a `LIKE` of links:
/// 0.33 against 0.43 s).
fn is_one_link(conjunct: &Arc<dyn PhysicalExpr>) -> bool {
    use datafusion::logical_expr::Operator;
    use datafusion::physical_expr::expressions::{
        BinaryExpr, Column as ColumnExpr, InListExpr, Literal,
    };
    let is_link = |e: &Arc<dyn PhysicalExpr>| {
        e.downcast_ref::<ColumnExpr>()
            .is_some_and(|c| c.name() == "link")
    };
    let is_literal = |e: &Arc<dyn PhysicalExpr>| e.downcast_ref::<Literal>().is_some();
    if let Some(b) = conjunct.downcast_ref::<BinaryExpr>() {
        return *b.op() == Operator::Eq
            && ((is_link(b.left()) && is_literal(b.right()))
                || (is_literal(b.left()) && is_link(b.right())));
    }
    conjunct
        .downcast_ref::<InListExpr>()
        .is_some_and(|l| !l.negated() && is_link(l.expr()) && l.list().iter().all(is_literal))
}

/// Whether `expr` holds a filter that is known only while the query runs.
fn is_dynamic(expr: &Arc<dyn PhysicalExpr>) -> bool {
    expr.exists(|e| Ok(e.downcast_ref::<DynamicFilterPhysicalExpr>().is_some()))
        .unwrap_or(true)
}

/// The statistics of the row groups with rows of several files, in order,
/// as the containers of one pruning evaluation: each file's statistics are
/// read with its own schema and cast to the table's type (a file whose
/// statistics cannot be read or cast gives NULLs, which prune nothing).
/// A Hive partition column is its file's value in every row group.
/// A column's minimums, maximums and null counts are read together, once.
struct RowGroupStatistics<'a> {
    table: &'a TableSchema,
    files: Vec<&'a EventFile>,
    read: RefCell<HashMap<String, Option<[ArrayRef; 3]>>>,
}

#[derive(Clone, Copy)]
enum Statistic {
    Min = 0,
    Max = 1,
    NullCount = 2,
}

impl<'a> RowGroupStatistics<'a> {
    fn new(table: &'a TableSchema, files: Vec<&'a EventFile>) -> Self {
        RowGroupStatistics {
            table,
            files,
            read: RefCell::new(HashMap::new()),
        }
    }

    fn groups<'f>(file: &'f EventFile) -> impl Iterator<Item = &'f RowGroupMetaData> + 'f {
        file.row_groups
            .iter()
            .map(|&(i, _)| file.footer.metadata.row_group(i))
    }

    fn column(&self, column: &Column, statistic: Statistic) -> Option<ArrayRef> {
        let mut read = self.read.borrow_mut();
        let arrays = read
            .entry(column.name.clone())
            .or_insert_with(|| self.read_column(&column.name));
        arrays.as_ref().map(|a| Arc::clone(&a[statistic as usize]))
    }

    /// The minimums, maximums and null counts of `name` over every
    /// container.
    fn read_column(&self, name: &str) -> Option<[ArrayRef; 3]> {
        let value = match self
            .table
            .table_schema()
            .field_with_name(name)
            .ok()?
            .data_type()
        {
            DataType::Dictionary(_, value) => value.as_ref().clone(),
            t => t.clone(),
        };
        let types = [value.clone(), value, DataType::UInt64];
        if let Some(at) = self
            .table
            .table_partition_cols()
            .iter()
            .position(|f| f.name() == name)
        {
            return self.partition_column(at, &types);
        }
        let mut parts: [Vec<ArrayRef>; 3] = Default::default();
        // Files written alike (the same Arrow and Parquet schemas) are read
        // by one converter in one pass over their row groups: a table of
        // 20 000 small files would otherwise make three small arrays per
        // file, hundreds of megabytes of them, only to concatenate them.
        let same_schemas = |a: &EventFile, b: &EventFile| {
            a.footer.schema == b.footer.schema
                && a.footer.metadata.file_metadata().schema_descr()
                    == b.footer.metadata.file_metadata().schema_descr()
        };
        for run in self.files.chunk_by(|a, b| same_schemas(a, b)) {
            let first = run[0];
            let schema: &Schema = &first.footer.schema;
            let converter = StatisticsConverter::try_new(
                name,
                schema,
                first.footer.metadata.file_metadata().schema_descr(),
            )
            .ok();
            let groups = || run.iter().flat_map(|f| Self::groups(f));
            let read = |statistic: Statistic| -> Option<ArrayRef> {
                let c = converter.as_ref()?;
                let a: ArrayRef = match statistic {
                    Statistic::Min => c.row_group_mins(groups()).ok()?,
                    Statistic::Max => c.row_group_maxes(groups()).ok()?,
                    Statistic::NullCount => Arc::new(c.row_group_null_counts(groups()).ok()?),
                };
                cast(&a, &types[statistic as usize]).ok()
            };
            let containers = run.iter().map(|f| f.row_groups.len()).sum();
            for statistic in [Statistic::Min, Statistic::Max, Statistic::NullCount] {
                let i = statistic as usize;
                parts[i]
                    .push(read(statistic).unwrap_or_else(|| new_null_array(&types[i], containers)));
            }
        }
        let concatenated = |arrays: &[ArrayRef]| {
            let arrays: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
            concat(&arrays).ok()
        };
        Some([
            concatenated(&parts[0])?,
            concatenated(&parts[1])?,
            concatenated(&parts[2])?,
        ])
    }
}

impl RowGroupStatistics<'_> {
    /// [`Self::read_column`] of the `at`th partition column: each file's
    /// value is the minimum and the maximum of its row groups, and counts
    /// all their rows as NULLs when it is NULL.
    fn partition_column(&self, at: usize, types: &[DataType; 3]) -> Option<[ArrayRef; 3]> {
        let mut bounds = Vec::with_capacity(self.files.len());
        let mut nulls: Vec<u64> = Vec::new();
        for file in &self.files {
            let value = file.partition_values.get(at)?;
            let value = match value {
                ScalarValue::Dictionary(_, inner) => inner.as_ref(),
                v => v,
            };
            bounds.push(value.to_array_of_size(file.row_groups.len()).ok()?);
            nulls.extend(Self::groups(file).map(|g| match value.is_null() {
                true => u64::try_from(g.num_rows()).unwrap_or(0),
                false => 0,
            }));
        }
        let bounds: Vec<&dyn Array> = bounds.iter().map(|a| a.as_ref()).collect();
        let bounds = cast(&concat(&bounds).ok()?, &types[0]).ok()?;
        Some([
            Arc::clone(&bounds),
            bounds,
            Arc::new(UInt64Array::from(nulls)),
        ])
    }
}

impl PruningStatistics for RowGroupStatistics<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.column(column, Statistic::Min)
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.column(column, Statistic::Max)
    }

    fn num_containers(&self) -> usize {
        self.files.iter().map(|f| f.row_groups.len()).sum()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        self.column(column, Statistic::NullCount)
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        let counts: UInt64Array = self
            .files
            .iter()
            .flat_map(|f| Self::groups(f))
            .map(|g| u64::try_from(g.num_rows()).ok())
            .collect();
        Some(Arc::new(counts))
    }

    fn contained(
        &self,
        _column: &Column,
        _values: &HashSet<ScalarValue>,
    ) -> Option<datafusion::arrow::array::BooleanArray> {
        None
    }
}

impl PhysicalOptimizerRule for EventScans {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if self.files.is_empty() {
            return Ok(plan);
        }
        plan.transform_up(|node| {
            match node
                .downcast_ref::<DataSourceExec>()
                .and_then(|exec| self.rewrite(exec))
            {
                Some(exec) => Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>)),
                None => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "EventScans"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Units of `rows` each, one row group per file, the files named by
    /// their index.
    fn units(rows: &[usize], cut: bool) -> Vec<Unit> {
        rows.iter()
            .enumerate()
            .map(|(i, &rows)| Unit {
                file: PartitionedFile::new(format!("u{i}.parquet"), 1000),
                cut,
                index: 0,
                rows,
                row_groups: 1,
            })
            .collect()
    }

    /// What a dealt file reads: its unit and the rows of that unit (as
    /// `first..end` within it).
    fn read(file: &PartitionedFile, rows: &[usize]) -> (usize, std::ops::Range<usize>) {
        let name = file.object_meta.location.as_ref();
        let unit: usize = name[1..name.len() - ".parquet".len()]
            .parse()
            .expect("unit");
        let Some(plan) = file.extension::<ParquetAccessPlan>() else {
            return (unit, 0..rows[unit]);
        };
        let RowGroupAccess::Selection(selection) = &plan.inner()[0] else {
            panic!("a part reads a selection: {plan:?}");
        };
        let mut at = 0;
        let mut read = None;
        for s in selection.iter() {
            if !s.skip {
                assert!(read.is_none(), "one run of rows per part");
                read = Some(at..at + s.row_count);
            }
            at += s.row_count;
        }
        assert_eq!(at, rows[unit], "the selection covers the row group");
        (unit, read.expect("a part reads rows"))
    }

    #[test]
    fn three_large_row_groups_are_shared_by_two_partitions_in_halves() {
        let rows = [1_000_000; 3];
        // Each partition: the cost of 1 500 000 rows and of opening one and
        // a half row groups (a row group's opening goes with its first rows).
        let dealt = deal(units(&rows, true), 2);
        let reads: Vec<Vec<_>> = dealt
            .iter()
            .map(|files| files.iter().map(|f| read(f, &rows)).collect())
            .collect();
        assert_eq!(
            reads,
            [
                vec![(0, 0..1_000_000), (1, 0..495_904)],
                vec![(1, 495_904..1_000_000), (2, 0..1_000_000)],
            ]
        );
        // Uncut, the middle row group goes whole to the run of its middle.
        let dealt = deal(units(&rows, false), 2);
        assert_eq!(dealt.iter().map(Vec::len).collect::<Vec<_>>(), [1, 2]);
        assert!(dealt
            .iter()
            .flatten()
            .all(|f| f.extension::<ParquetAccessPlan>().is_none()));
    }

    #[test]
    fn small_row_groups_are_never_cut() {
        let rows = [5_000; 7];
        let dealt = deal(units(&rows, true), 2);
        assert_eq!(dealt.iter().map(Vec::len).collect::<Vec<_>>(), [3, 4]);
        assert!(dealt
            .iter()
            .flatten()
            .all(|f| f.extension::<ParquetAccessPlan>().is_none()));
    }

    /// The footer of a Parquet file of `groups` row groups of 40 000 rows
    /// (one `Int64` column), and the file's size.
    fn footer_of(groups: usize) -> (Footer, u64) {
        use datafusion::arrow::array::Int64Array;
        use datafusion::arrow::datatypes::Field;
        use datafusion::arrow::record_batch::RecordBatch;
        use datafusion::parquet::arrow::ArrowWriter;
        use datafusion::parquet::file::properties::WriterProperties;
        let schema = Arc::new(Schema::new(vec![Field::new(
            "profile_id",
            DataType::Int64,
            false,
        )]));
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(40_000))
            .build();
        let mut bytes = Vec::new();
        let mut writer =
            ArrowWriter::try_new(&mut bytes, Arc::clone(&schema), Some(props)).unwrap();
        let ids = Int64Array::from_iter_values(0..(groups * 40_000) as i64);
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(ids)]).unwrap();
        writer.write(&batch).unwrap();
        let metadata = writer.close().unwrap();
        assert_eq!(metadata.num_row_groups(), groups);
        let metadata = datafusion::parquet::file::metadata::ParquetMetaDataReader::new()
            .parse_and_finish(&bytes::Bytes::from(bytes.clone()))
            .unwrap();
        let footer = Footer {
            schema,
            metadata: Arc::new(metadata),
            size: bytes.len() as u64,
            modified: std::time::SystemTime::UNIX_EPOCH,
        };
        (footer, bytes.len() as u64)
    }

    #[test]
    fn neighbouring_row_groups_of_a_file_are_read_as_one_part() {
        let (footer, size) = footer_of(6);
        let file = EventFile::new(None, footer, Vec::new());
        let scans = EventScans::new(
            HashMap::from([("e.parquet".to_string(), file.clone())]),
            true,
        );
        // Row groups 0, 1, 2, 4 and 5 kept (3 pruned), in two partitions;
        // row group 2 cut between them.
        let whole = |n: usize| {
            let range = row_group_range(&file.row_groups, n, size);
            PartitionedFile::new("e.parquet", size).with_range(range.start as i64, range.end as i64)
        };
        let cut_plan = |skip: usize, select: usize| {
            let mut plan = ParquetAccessPlan::new_none(6);
            let selectors: Vec<RowSelector> =
                [RowSelector::skip(skip), RowSelector::select(select)]
                    .into_iter()
                    .filter(|s| s.row_count > 0)
                    .collect();
            plan.set(2, RowGroupAccess::Selection(RowSelection::from(selectors)));
            plan
        };
        let first = vec![
            whole(0),
            whole(1),
            whole(2).with_extension(cut_plan(0, 15_000)),
        ];
        let second = vec![
            whole(2).with_extension(cut_plan(15_000, 25_000)),
            whole(4),
            whole(5),
        ];
        let merged: Vec<Vec<PartitionedFile>> = [first, second]
            .into_iter()
            .map(|files| scans.merged(files))
            .collect();
        let described: Vec<Vec<(std::ops::Range<i64>, Vec<String>)>> = merged
            .iter()
            .map(|files| {
                files
                    .iter()
                    .map(|f| {
                        let range = f.range.as_ref().unwrap();
                        let plan = f.extension::<ParquetAccessPlan>().unwrap();
                        let access = plan
                            .inner()
                            .iter()
                            .map(|a| match a {
                                RowGroupAccess::Skip => "skip".to_string(),
                                RowGroupAccess::Scan => "scan".to_string(),
                                RowGroupAccess::Selection(s) => {
                                    format!("rows {}", s.row_count())
                                }
                            })
                            .collect();
                        (range.start..range.end, access)
                    })
                    .collect()
            })
            .collect();
        let start = |n: usize| row_group_range(&file.row_groups, n, size).start as i64;
        let end = |n: usize| row_group_range(&file.row_groups, n, size).end as i64;
        let plan = |a: [&str; 6]| a.map(String::from).to_vec();
        assert_eq!(
            described,
            [
                vec![(
                    start(0)..end(2),
                    plan(["scan", "scan", "rows 15000", "skip", "skip", "skip"])
                )],
                vec![(
                    start(2)..end(5),
                    plan(["skip", "skip", "rows 25000", "skip", "scan", "scan"])
                )],
            ]
        );
        // Twenty row groups of 40 000 rows: parts of at most MERGED_ROWS.
        let (footer, size) = footer_of(20);
        let file = EventFile::new(None, footer, Vec::new());
        let scans = EventScans::new(
            HashMap::from([("e.parquet".to_string(), file.clone())]),
            true,
        );
        let all = (0..20)
            .map(|n| {
                let range = row_group_range(&file.row_groups, n, size);
                PartitionedFile::new("e.parquet", size)
                    .with_range(range.start as i64, range.end as i64)
            })
            .collect();
        let scanned: Vec<usize> = scans
            .merged(all)
            .iter()
            .map(|f| {
                let plan = f.extension::<ParquetAccessPlan>().unwrap();
                plan.inner()
                    .iter()
                    .filter(|a| matches!(a, RowGroupAccess::Scan))
                    .count()
            })
            .collect();
        assert_eq!(scanned, [MERGED_ROWS / 40_000, 20 - MERGED_ROWS / 40_000]);
        // A lone part, and a file the rule does not know, stay as they are.
        let lone = scans.merged(vec![whole(3)]);
        assert!(lone[0].extension::<ParquetAccessPlan>().is_none());
        let other = PartitionedFile::new("other.parquet", 10);
        assert_eq!(scans.merged(vec![other.clone(), other]).len(), 2);
    }

    #[test]
    fn only_conjuncts_that_name_links_read_with_pushdown() {
        use datafusion::logical_expr::Operator;
        use datafusion::physical_expr::expressions::{binary, col, in_list, like};
        let schema = Schema::new(vec![
            datafusion::arrow::datatypes::Field::new("link", DataType::Utf8, true),
            datafusion::arrow::datatypes::Field::new("event", DataType::Utf8, true),
        ]);
        let link = col("link", &schema).unwrap();
        let event = col("event", &schema).unwrap();
        let url = lit("https://shop/a");
        let eq = |l: &Arc<dyn PhysicalExpr>, r: &Arc<dyn PhysicalExpr>| {
            binary(Arc::clone(l), Operator::Eq, Arc::clone(r), &schema).unwrap()
        };
        let list = |negated: bool| {
            in_list(
                Arc::clone(&link),
                vec![url.clone(), lit("https://shop/b")],
                &negated,
                &schema,
            )
            .unwrap()
        };
        assert!(is_one_link(&eq(&link, &url)));
        assert!(is_one_link(&eq(&url, &link)));
        assert!(is_one_link(&list(false)));
        assert!(!is_one_link(&list(true)));
        assert!(!is_one_link(&eq(&event, &lit("click"))));
        assert!(!is_one_link(&eq(&link, &event)));
        let pattern = like(
            false,
            false,
            Arc::clone(&link),
            lit("https://shop/%"),
            &schema,
        )
        .unwrap();
        assert!(!is_one_link(&pattern));
    }

    proptest! {
        /// Every row of every row group is read exactly once, no part is
        /// smaller than `MIN_PART` rows, and every partition's cost is its
        /// share give or take two parts' minimum and fixed costs when
        /// cutting (the largest row group when not).
        #[test]
        fn every_row_is_read_once_and_the_shares_are_even(
            rows in proptest::collection::vec(1usize..3_000_000, 0..12),
            partitions in 1usize..6,
            cut: bool,
        ) {
            let dealt = deal(units(&rows, cut), partitions);
            prop_assert_eq!(dealt.len(), partitions);
            let mut parts: Vec<Vec<std::ops::Range<usize>>> = vec![Vec::new(); rows.len()];
            let mut loads = Vec::new();
            for files in &dealt {
                let mut load = 0;
                for f in files {
                    let (unit, range) = read(f, &rows);
                    if range.len() < rows[unit] {
                        prop_assert!(cut && range.len() >= MIN_PART, "{range:?} of {}", rows[unit]);
                    }
                    // A unit's fixed cost goes with its first rows.
                    load += range.len() + if range.start == 0 { UNIT_COST } else { 0 };
                    parts[unit].push(range);
                }
                loads.push(load);
            }
            for (unit, mut ranges) in parts.into_iter().enumerate() {
                ranges.sort_by_key(|r| r.start);
                let mut at = 0;
                for r in ranges {
                    prop_assert_eq!(r.start, at);
                    at = r.end;
                }
                prop_assert_eq!(at, rows[unit]);
            }
            let total: usize = rows.iter().map(|r| r + UNIT_COST).sum();
            let largest = rows.iter().copied().max().unwrap_or(0) + UNIT_COST;
            for load in loads {
                let share = total / partitions;
                let slack = if cut { 2 * (MIN_PART + UNIT_COST) + 1 } else { largest };
                prop_assert!(load.abs_diff(share) <= slack, "{load} of {total}");
            }
        }
    }
}
