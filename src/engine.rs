//! Runs checked programs over a data directory with DataFusion.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::{provider_as_source, MemTable, TableProvider};
use datafusion::logical_expr::{LogicalPlan, TableSource};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::check::{ObjectIndex, Program};
use crate::data::{load_objects, DataDir, DataError};
use crate::plan::{segment_plan, segments_plan, PlanEnv};

/// A data directory opened for queries: validated tables registered in a
/// DataFusion session, and the dimension tables indexed.
pub struct Engine {
    ctx: SessionContext,
    data: DataDir,
    objects: ObjectIndex,
    events: Arc<dyn TableSource>,
    profiles: Option<Arc<dyn TableSource>>,
}

impl Engine {
    /// Opens and validates `root` (SPEC §5).
    pub fn open(root: &std::path::Path) -> Result<Engine, DataError> {
        let data = DataDir::open(root)?;
        let objects = load_objects(root)?;
        let mut config = SessionConfig::new().with_information_schema(false);
        config.options_mut().execution.parquet.pushdown_filters = true;
        config.options_mut().execution.parquet.reorder_filters = true;
        let ctx = SessionContext::new_with_config(config);

        let events: Arc<dyn TableProvider> = if data.event_files.is_empty() {
            Arc::new(MemTable::try_new(
                Arc::clone(&data.events_schema),
                vec![vec![]],
            )?)
        } else {
            listing(&data.event_files, Arc::clone(&data.events_schema))?
        };
        ctx.register_table("events", Arc::clone(&events))?;
        let profiles = match &data.profiles {
            Some(path) => {
                let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
                    datafusion::arrow::datatypes::Field::new(
                        "profile_id",
                        datafusion::arrow::datatypes::DataType::Int64,
                        true,
                    ),
                ]));
                let table = listing(std::slice::from_ref(path), schema)?;
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

    fn env(&self, as_of: DateTime<Utc>) -> PlanEnv<'_> {
        PlanEnv {
            events: Arc::clone(&self.events),
            profiles: self.profiles.clone(),
            profiles_range: self.data.profiles_range,
            objects: &self.objects,
            ts_type: self.data.ts_type(),
            as_of,
            sql: None,
        }
    }

    /// The logical plan of a segment, as built (before optimization).
    pub fn plan(
        &self,
        program: &Program,
        segment: usize,
        as_of: DateTime<Utc>,
    ) -> Result<LogicalPlan, DataError> {
        segment_plan(program, segment, &self.env(as_of))
    }

    /// The ids of several segments from one scan of events: one ascending
    /// list per segment, in the order given.
    pub async fn run_many(
        &self,
        program: &Program,
        segments: &[usize],
        as_of: DateTime<Utc>,
    ) -> Result<Vec<Vec<i64>>, DataError> {
        let plan = segments_plan(program, segments, &self.env(as_of))?;
        let batches = self.ctx.execute_logical_plan(plan).await?.collect().await?;
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

    /// The ids of a segment, ascending.
    pub async fn run(
        &self,
        program: &Program,
        segment: usize,
        as_of: DateTime<Utc>,
    ) -> Result<Vec<i64>, DataError> {
        let plan = self.plan(program, segment, as_of)?;
        let batches = self.ctx.execute_logical_plan(plan).await?.collect().await?;
        Ok(ids(&batches))
    }
}

fn listing(
    files: &[std::path::PathBuf],
    schema: datafusion::arrow::datatypes::SchemaRef,
) -> Result<Arc<dyn TableProvider>, DataError> {
    let urls = files
        .iter()
        .map(|f| {
            let abs = std::path::absolute(f)
                .map_err(|e| DataError::new(format!("{}: {e}", f.display())))?;
            ListingTableUrl::parse(abs.to_string_lossy()).map_err(DataError::from)
        })
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
