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
//! one file, of which a 30-day window keeps the last seven). Here each row
//! group of a file with several becomes its own range (DataFusion reads a
//! row group in the range that holds its first page), and the ranges are
//! dealt to the scan's partitions in turn, so whatever the statistics keep
//! is spread over every partition. The number of partitions stays the one
//! DataFusion chose.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;

/// What the rule knows of one events file.
#[derive(Debug, Clone, Default)]
pub struct EventFile {
    /// The schema to read it as, when not its own.
    pub read_schema: Option<SchemaRef>,
    /// Where each of its row groups starts.
    pub row_groups: Vec<u64>,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct EventScans {
    /// By object-store location (as `ListingTableUrl` names the file).
    files: HashMap<String, EventFile>,
}

impl EventScans {
    pub fn new(files: HashMap<String, EventFile>) -> Self {
        EventScans { files }
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

    /// Whether the rule changes anything in a scan of `config`: a file to
    /// read with another schema, or one with row groups to deal.
    fn touches(&self, config: &FileScanConfig) -> bool {
        config
            .file_groups
            .iter()
            .flat_map(FileGroup::iter)
            .any(|f| {
                self.files
                    .get(f.object_meta.location.as_ref())
                    .is_some_and(|e| {
                        (e.read_schema.is_some() && f.arrow_schema.is_none())
                            || e.row_groups.len() > 1
                    })
            })
    }

    /// The scan's files as units to deal: a file with several row groups
    /// as one range per row group, another as it is. `None` when a file of
    /// the scan is not an events file or has partition values.
    fn units(&self, config: &FileScanConfig) -> Option<Vec<PartitionedFile>> {
        let mut seen = std::collections::HashSet::new();
        let mut units = Vec::new();
        for f in config.file_groups.iter().flat_map(FileGroup::iter) {
            let location = f.object_meta.location.as_ref();
            let file = self.files.get(location)?;
            if !f.partition_values.is_empty() {
                return None;
            }
            if file.row_groups.len() < 2 {
                // DataFusion may have split it into ranges: keep them.
                units.push(self.with_schema(f));
                continue;
            }
            if !seen.insert(location.to_string()) {
                continue;
            }
            let size = f.object_meta.size;
            for (i, &start) in file.row_groups.iter().enumerate() {
                let end = file
                    .row_groups
                    .get(i + 1)
                    .copied()
                    .unwrap_or(size)
                    .max(start + 1);
                let (Ok(start), Ok(end)) = (i64::try_from(start), i64::try_from(end)) else {
                    return None;
                };
                let mut unit = self.with_schema(f);
                unit.range = None;
                units.push(unit.with_range(start, end));
            }
        }
        Some(units)
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
            let Some(exec) = node.downcast_ref::<DataSourceExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some((config, _)) = exec
                .downcast_to_file_source::<ParquetSource>()
                .filter(|(config, _)| self.touches(config))
            else {
                return Ok(Transformed::no(node));
            };
            let partitions = config.file_groups.len();
            let groups: Vec<FileGroup> = match self.units(config) {
                Some(units) if partitions > 0 && !config.preserve_order => {
                    let mut dealt = vec![Vec::new(); partitions];
                    for (i, unit) in units.into_iter().enumerate() {
                        dealt[i % partitions].push(unit);
                    }
                    dealt.into_iter().map(FileGroup::new).collect()
                }
                // Not only events files: the schemas alone.
                _ => config
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
            let mut config: FileScanConfig = config.clone();
            config.file_groups = groups;
            let exec = exec.clone().with_data_source(Arc::new(config));
            Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>))
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
