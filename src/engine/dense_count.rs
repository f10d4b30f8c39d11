//! Per-profile counts in arrays indexed by profile id: a physical operator,
//! and the optimizer rule that plans it.
//!
//! A segment's conditions become one aggregation of the events: group by
//! `profile_id`, one `count(*) FILTER (WHERE …)` per condition. DataFusion
//! runs it in two phases, a hash table and a growing counter vector per
//! aggregate in every partition and again after the repartition; at 30
//! conditions those vectors' growth, the kernel zeroing their pages and the
//! merge were most of the run. When the profile ids form a dense range (the
//! planner already knows whether they do), the group of a row is its id minus
//! the range's start: [`DenseCountExec`] keeps one row of one-byte counters
//! per profile of the range, allocated once, with every input partition adding
//! into it in turn (the counting holds a lock only while it adds; evaluating
//! the filters and decoding the input run in parallel), and emits the
//! profiles it saw in ascending id order.
//!
//! It is the same aggregation: a profile is emitted when at least one input
//! row had its id, whatever the filters (as a hash aggregate creates a group
//! for every key it sees), ids outside the range and a null id are counted in
//! a map beside the arrays, and a counter that passes 255 carries into a
//! 64-bit side table. (Bytes, because the kernel zeroes every page of the
//! arrays on first touch: at 16 counts per profile, 4-byte counters spent an
//! eighth of a 20-segment run there.) The rule applies only where the arrays
//! fit half of the memory pool (`SEG_MEMORY_LIMIT`); elsewhere DataFusion's
//! aggregation, which can spill, runs as before.
//!
//! Sequences (`seg_sequence`, `plan::sequence`) in the same aggregation are
//! kept here too: each row of some step, with its profile's offset, in one
//! vector per sequence (rows reserve memory from the pool as they come),
//! grouped by a counting sort when the profiles are emitted and decided per
//! profile then.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch};
use datafusion::arrow::compute::{prep_null_mask_filter, SortOptions};
use datafusion::arrow::datatypes::{DataType, Int64Type, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::runtime::SpawnedTask;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{internal_err, DataFusionError, ScalarValue};
use datafusion::error::Result;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::ColumnarValue;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal};
use datafusion::physical_expr::projection::update_expr;
use datafusion::physical_expr::utils::{collect_columns, split_conjunction, split_disjunction};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_expr_common::physical_expr::is_volatile;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{
    apply_expression_roots, replace_children_if_necessary, DisplayAs, DisplayFormatType,
    ExecutionPlan, ExecutionPlanProperties, Partitioning, PlanProperties,
};
use futures::{StreamExt, TryStreamExt};

use crate::plan::sequence::{
    batch_rows, Grouped, Row, Scratch, SequenceSpec, SequenceUdaf, HEAD_BYTES,
};
use crate::prefetch::{prefetch, AHEAD};

/// The rule: a two-phase aggregation of `count(*)`s grouped by `profile_id`
/// (an `Int64`) becomes a [`DenseCountExec`] over the profiles' range. It runs before
/// DataFusion distributes the plan (`EnsureRequirements`), so that what reads
/// the operator's single partition is repartitioned as it needs.
#[derive(Debug)]
pub struct DenseCounts {
    /// The profiles' dense range, `[lo, hi]`, once planning has read it
    /// (`None` inside: the ids are not dense, or there are no profiles).
    range: Arc<OnceLock<Option<(i64, i64)>>>,
    /// The most bytes of counters the operator may hold.
    budget: usize,
}

impl DenseCounts {
    pub fn new(range: Arc<OnceLock<Option<(i64, i64)>>>, budget: usize) -> DenseCounts {
        DenseCounts { range, budget }
    }
}

impl PhysicalOptimizerRule for DenseCounts {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(&Some((lo, hi))) = self.range.get() else {
            return Ok(plan);
        };
        plan.transform_up(|node| {
            if let Some(filtered) = prefiltered(&node)? {
                return Ok(Transformed::yes(filtered));
            }
            Ok(match dense(&node, lo, hi, self.budget) {
                Some(exec) => Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>),
                None => Transformed::no(node),
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "seg_dense_counts"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `node`, a filter over a [`DenseCountExec`], with the operator told to
/// emit only the profiles that can pass it ([`reaching`]); `None` when
/// `node` is something else or the filter has no such condition.
fn prefiltered(node: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(filter) = node.downcast_ref::<FilterExec>() else {
        return Ok(None);
    };
    let Some(exec) = filter.input().downcast_ref::<DenseCountExec>() else {
        return Ok(None);
    };
    if exec.reaching.is_some() {
        return Ok(None);
    }
    let Some(thresholds) = reaching(
        filter.predicate(),
        &exec.aggregated.slots,
        exec.filters.len(),
    ) else {
        return Ok(None);
    };
    let exec = DenseCountExec {
        reaching: Some(thresholds),
        ..exec.clone()
    };
    replace_children_if_necessary(Arc::clone(node), vec![Arc::new(exec)]).map(Some)
}

/// The largest count a profile's one-byte counter holds without a carry.
const BYTE_MAX: u16 = u8::MAX as u16;

/// A condition every row a filter over the operator's output keeps meets:
/// a conjunct of the filter that is a disjunction of `count >= v` (or
/// `> v`, `= v`) with every `v` at least 1, as a threshold per count (a
/// profile meets it when some count reaches its threshold). Thresholds
/// past 255 are 256, which no counter without a carry reaches, as are the
/// counts the disjunction does not test. `None` when no conjunct is one.
/// (A segment of conditions joined by `or`, counted `at_least` some
/// times, is such a filter: most profiles with an event counted meet no
/// condition, and the operator emits them no more.)
fn reaching(predicate: &Arc<dyn PhysicalExpr>, slots: &[Slot], counts: usize) -> Option<Vec<u16>> {
    split_conjunction(predicate)
        .into_iter()
        .find_map(|conjunct| {
            let mut thresholds = vec![BYTE_MAX + 1; counts];
            for leaf in split_disjunction(conjunct) {
                let (k, at_least) = count_at_least(leaf, slots)?;
                if at_least < 1 {
                    return None;
                }
                let t = u16::try_from(at_least.min(i64::from(BYTE_MAX) + 1)).ok()?;
                thresholds[k] = thresholds[k].min(t);
            }
            Some(thresholds)
        })
}

/// `e` as "count `k` is at least `v`", when it is a comparison of a count
/// column of the operator's output with an integer that implies it.
fn count_at_least(e: &Arc<dyn PhysicalExpr>, slots: &[Slot]) -> Option<(usize, i64)> {
    let b = e.downcast_ref::<BinaryExpr>()?;
    let (column, value, op) = match (
        b.left().downcast_ref::<Column>(),
        b.right().downcast_ref::<Literal>(),
    ) {
        (Some(c), Some(l)) => (c, l.value(), *b.op()),
        _ => (
            b.right().downcast_ref::<Column>()?,
            b.left().downcast_ref::<Literal>()?.value(),
            b.op().swap()?,
        ),
    };
    let ScalarValue::Int64(Some(v)) = value else {
        return None;
    };
    // Column 0 is the key; then one per slot.
    let Slot::Count(k) = *slots.get(column.index().checked_sub(1)?)? else {
        return None;
    };
    match op {
        Operator::GtEq | Operator::Eq => Some((k, *v)),
        Operator::Gt => Some((k, v.checked_add(1)?)),
        _ => None,
    }
}

/// Whether some count of a profile's `row` of counters reaches its
/// threshold (written to be vectorised: no early exit over a row of a few
/// dozen bytes).
fn reaches(row: &[u8], thresholds: &[u16]) -> bool {
    row.iter()
        .zip(thresholds)
        .fold(false, |any, (&c, &t)| any | (u16::from(c) >= t))
}

/// `node` as a [`DenseCountExec`], when it is a final aggregation over a
/// partial one that counts rows by `profile_id`, and its counters fit.
fn dense(node: &Arc<dyn ExecutionPlan>, lo: i64, hi: i64, budget: usize) -> Option<DenseCountExec> {
    let last = node.downcast_ref::<AggregateExec>()?;
    if !matches!(
        last.mode(),
        AggregateMode::Final | AggregateMode::FinalPartitioned
    ) || last.limit_options().is_some()
    {
        return None;
    }
    let first = last.input().downcast_ref::<AggregateExec>()?;
    if *first.mode() != AggregateMode::Partial || first.limit_options().is_some() {
        return None;
    }
    let group = first.group_expr();
    let [(key, _)] = group.expr() else {
        return None;
    };
    // The operator reads below the projections DataFusion put under the
    // aggregation (`__common_expr_1 = event = 'click' AND channel = 'sms'`
    // and the like): inlined, the filters' conjuncts are the plain tests,
    // each evaluated once a batch (30 conditions: 20 tests, not 30
    // projected columns and their tests).
    let (input, projections) = below_projections(first.input());
    let unproject = |e: &Arc<dyn PhysicalExpr>| {
        projections.iter().try_fold(Arc::clone(e), |e, p| {
            update_expr(&e, p.expr(), true).ok().flatten()
        })
    };
    let schema = input.schema();
    let key = &unproject(key)?;
    // The range is the profile ids': the key must be that column.
    let is_profile = key
        .downcast_ref::<Column>()
        .is_some_and(|c| c.name() == "profile_id");
    if group.has_grouping_set() || !is_profile || key.data_type(&schema).ok()? != DataType::Int64 {
        return None;
    }
    let aggregates = first.aggr_expr();
    let mut filters = Vec::new();
    let mut arguments = Vec::new();
    let mut sequences = Vec::new();
    let mut extrema = Vec::new();
    let mut slots = Vec::with_capacity(aggregates.len());
    for (a, f) in aggregates.iter().zip(first.filter_expr()) {
        let f = match f {
            Some(f) => {
                let f = unproject(f)?;
                Some(super::fast_expr::faster(&f, &schema).unwrap_or(f))
            }
            None => None,
        };
        if let Some(argument) = counted(a) {
            slots.push(Slot::Count(filters.len()));
            filters.push(f);
            arguments.push(match argument {
                Some(argument) => Some(unproject(&argument)?),
                None => None,
            });
        } else if let Some(kind) = extremum_kind(a) {
            slots.push(Slot::Extremum(extrema.len()));
            extrema.push(DenseExtremum {
                kind,
                argument: unproject(&a.expressions()[0])?,
                filter: f,
            });
        } else if let Some(spec) = sequence_spec(a) {
            slots.push(Slot::Sequence(sequences.len()));
            sequences.push(DenseSequence {
                spec,
                arguments: a
                    .expressions()
                    .iter()
                    .map(unproject)
                    .collect::<Option<_>>()?,
                filter: f,
            });
        } else {
            return None;
        }
    }
    let per_profile = filters.len() + HEAD_BYTES * sequences.len() + EXTREMUM_BYTES * extrema.len();
    if aggregates.is_empty() || !crate::plan::counters_fit((lo, hi), per_profile, budget) {
        return None;
    }
    let len = usize::try_from(hi.checked_sub(lo)?.checked_add(1)?).ok()?;
    Some(DenseCountExec::new(
        input,
        Arc::clone(key),
        filters,
        arguments,
        Aggregated {
            sequences,
            extrema,
            slots,
        },
        last.schema(),
        lo,
        len,
    ))
}

/// The plan below the projections at the top of `input` (those of pure
/// expressions), and those projections, the top one first.
fn below_projections(
    input: &Arc<dyn ExecutionPlan>,
) -> (Arc<dyn ExecutionPlan>, Vec<&ProjectionExec>) {
    let mut projections = Vec::new();
    let mut node = input;
    while let Some(p) = node.downcast_ref::<ProjectionExec>() {
        if p.expr().iter().any(|e| is_volatile(&e.expr)) {
            break;
        }
        projections.push(p);
        node = p.input();
    }
    (Arc::clone(node), projections)
}

/// The bytes of an extremum per profile of the range: the value (its bit of
/// presence aside).
const EXTREMUM_BYTES: usize = 8;

/// `min` or `max` of one argument, when `a` is one.
fn extremum_kind(a: &AggregateFunctionExpr) -> Option<Extreme> {
    if a.is_distinct() || !a.order_bys().is_empty() || a.expressions().len() != 1 {
        return None;
    }
    match a.fun().name() {
        "min" => Some(Extreme::Min),
        "max" => Some(Extreme::Max),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extreme {
    Min,
    Max,
}

/// `min(x)` or `max(x)` per profile (`first_seen`, `last_seen`), `x` an
/// integer or a timestamp.
#[derive(Debug, Clone)]
struct DenseExtremum {
    kind: Extreme,
    argument: Arc<dyn PhysicalExpr>,
    filter: Option<Arc<dyn PhysicalExpr>>,
}

/// One extremum's values: per profile of the range, and per key outside it.
#[derive(Default)]
struct Extrema {
    values: Vec<i64>,
    /// Which profiles of the range have a value.
    set: Vec<u64>,
    outside: HashMap<Option<i64>, i64>,
}

/// What a `seg_sequence` decides, when `a` is one.
fn sequence_spec(a: &AggregateFunctionExpr) -> Option<SequenceSpec> {
    if a.is_distinct() || !a.order_bys().is_empty() {
        return None;
    }
    let inner: &dyn Any = a.fun().inner().as_ref();
    inner.downcast_ref::<SequenceUdaf>().map(SequenceUdaf::spec)
}

/// A sequence the operator decides per profile (`plan::sequence`).
#[derive(Debug, Clone)]
struct DenseSequence {
    spec: SequenceSpec,
    /// `ts`, the steps' mask and the key.
    arguments: Vec<Arc<dyn PhysicalExpr>>,
    filter: Option<Arc<dyn PhysicalExpr>>,
}

/// Where an output column comes from.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Count(usize),
    Sequence(usize),
    Extremum(usize),
}

/// The aggregates beside the counts: the sequences, and the order of every
/// output column.
#[derive(Debug, Clone)]
struct Aggregated {
    sequences: Vec<DenseSequence>,
    extrema: Vec<DenseExtremum>,
    slots: Vec<Slot>,
}

/// What a plain `count` counts: `Some(None)` for `count(*)` (planned as
/// `count(1)`), every row its filter keeps; `Some(Some(c))` for `count(c)`,
/// those where the column `c` is not NULL; `None` for anything else.
#[allow(clippy::option_option)]
fn counted(a: &AggregateFunctionExpr) -> Option<Option<Arc<dyn PhysicalExpr>>> {
    if a.fun().name() != "count" || a.is_distinct() || !a.order_bys().is_empty() {
        return None;
    }
    match a.expressions().as_slice() {
        [e] if e
            .downcast_ref::<Literal>()
            .is_some_and(|l| !l.value().is_null()) =>
        {
            Some(None)
        }
        [e] if e.downcast_ref::<Column>().is_some() => Some(Some(Arc::clone(e))),
        _ => None,
    }
}

/// Counts the rows of its input per key, one count per filter, in arrays
/// indexed by `key - lo` (see the module documentation). One output
/// partition: the keys seen, ascending, the null key last.
#[derive(Debug, Clone)]
pub struct DenseCountExec {
    input: Arc<dyn ExecutionPlan>,
    key: Arc<dyn PhysicalExpr>,
    /// One per count; `None` counts every row.
    filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    /// One per count: a column whose NULLs it does not count.
    arguments: Vec<Option<Arc<dyn PhysicalExpr>>>,
    aggregated: Aggregated,
    lo: i64,
    len: usize,
    /// Per count, the threshold of a condition the filter above meets
    /// ([`reaching`]): the profiles of the range that reach none are not
    /// emitted.
    reaching: Option<Vec<u16>>,
    properties: Arc<PlanProperties>,
}

impl DenseCountExec {
    #[allow(clippy::too_many_arguments)]
    fn new(
        input: Arc<dyn ExecutionPlan>,
        key: Arc<dyn PhysicalExpr>,
        filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
        arguments: Vec<Option<Arc<dyn PhysicalExpr>>>,
        aggregated: Aggregated,
        schema: SchemaRef,
        lo: i64,
        len: usize,
    ) -> DenseCountExec {
        // Its keys come out ascending, the null key last.
        let order = PhysicalSortExpr::new(
            Arc::new(Column::new(schema.field(0).name(), 0)),
            SortOptions {
                descending: false,
                nulls_first: false,
            },
        );
        let properties = PlanProperties::new(
            EquivalenceProperties::new_with_orderings(Arc::clone(&schema), [[order]]),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        DenseCountExec {
            input,
            key,
            filters,
            arguments,
            aggregated,
            lo,
            len,
            reaching: None,
            properties: Arc::new(properties),
        }
    }

    /// The expressions a counting task evaluates over the operator's input.
    fn tests(&self) -> Tests {
        let (terms, filters) = terms(&self.filters);
        Tests {
            key: Arc::clone(&self.key),
            terms,
            filters,
            arguments: self.arguments.clone(),
            sequences: self
                .aggregated
                .sequences
                .iter()
                .map(|q| (q.arguments.clone(), q.filter.clone()))
                .collect(),
            extrema: self
                .aggregated
                .extrema
                .iter()
                .map(|x| (Arc::clone(&x.argument), x.filter.clone()))
                .collect(),
        }
    }
}

impl DisplayAs for DenseCountExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let hi = self.lo.saturating_add(self.len as i64 - 1);
        write!(
            f,
            "DenseCountExec: key={}, range=[{}, {}], counts=[",
            self.key, self.lo, hi
        )?;
        for (i, (filter, argument)) in self.filters.iter().zip(&self.arguments).enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            match argument {
                Some(a) => write!(f, "count({a})")?,
                None => write!(f, "count(*)")?,
            }
            if let Some(e) = filter {
                write!(f, " FILTER (WHERE {e})")?;
            }
        }
        write!(f, "]")?;
        for x in &self.aggregated.extrema {
            let kind = match x.kind {
                Extreme::Min => "min",
                Extreme::Max => "max",
            };
            write!(f, ", {kind}({})", x.argument)?;
            if let Some(e) = &x.filter {
                write!(f, " FILTER (WHERE {e})")?;
            }
        }
        if let Some(thresholds) = &self.reaching {
            write!(f, ", emits profiles where any of [")?;
            let tested = thresholds
                .iter()
                .enumerate()
                .filter(|(_, &t)| t <= BYTE_MAX);
            for (i, (k, t)) in tested.enumerate() {
                if i > 0 {
                    write!(f, ", ")?;
                }
                write!(f, "count {k} >= {t}")?;
            }
            write!(f, "]")?;
        }
        for q in &self.aggregated.sequences {
            write!(f, ", sequence({:?}", q.spec)?;
            for a in &q.arguments {
                write!(f, ", {a}")?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for DenseCountExec {
    fn name(&self) -> &str {
        "DenseCountExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        apply_expression_roots(
            std::iter::once(&self.key)
                .chain(self.filters.iter().flatten())
                .chain(self.arguments.iter().flatten())
                .chain(
                    self.aggregated
                        .sequences
                        .iter()
                        .flat_map(|q| q.arguments.iter().chain(&q.filter)),
                )
                .chain(
                    self.aggregated
                        .extrema
                        .iter()
                        .flat_map(|x| std::iter::once(&x.argument).chain(&x.filter)),
                ),
            f,
        )
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return internal_err!("DenseCountExec has one child, not {}", children.len());
        }
        Ok(Arc::new(DenseCountExec {
            input: children.swap_remove(0),
            ..(*self).clone()
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return internal_err!("DenseCountExec has one partition, not {partition}");
        }
        let schema = self.schema();
        let sequences = self.aggregated.sequences.len();
        let bytes =
            self.len * (self.filters.len() + HEAD_BYTES * sequences) + self.len.div_ceil(64) * 16;
        let reservation = MemoryConsumer::new("DenseCountExec").register(context.memory_pool());
        reservation.try_grow(bytes)?;
        let kinds: Vec<Extreme> = self.aggregated.extrema.iter().map(|x| x.kind).collect();
        let counter = Arc::new(Counter {
            specs: self.aggregated.sequences.iter().map(|q| q.spec).collect(),
            state: Mutex::new(Counts::new(
                self.len,
                self.filters.len(),
                sequences,
                kinds.len(),
                reservation,
            )),
            kinds,
            lo: self.lo,
        });
        let branches = branches(&self.input, &self.tests());
        let slots = self.aggregated.slots.clone();
        let reaching = self.reaching.clone();
        let batch_size = context.session_config().batch_size();
        let out_schema = Arc::clone(&schema);
        let counted = async move {
            let mut tasks = Vec::new();
            for (plan, tests) in branches {
                let tests = Arc::new(tests);
                for p in 0..plan.output_partitioning().partition_count() {
                    let stream = plan.execute(p, Arc::clone(&context))?;
                    let (counter, tests) = (Arc::clone(&counter), Arc::clone(&tests));
                    tasks.push(SpawnedTask::spawn(async move {
                        counter.consume(stream, &tests).await
                    }));
                }
            }
            for task in tasks {
                task.join_unwind()
                    .await
                    .map_err(|e| DataFusionError::ExecutionJoin(Box::new(e)))??;
            }
            let counts = std::mem::take(&mut *counter.state.lock().map_err(poisoned)?);
            Ok::<_, DataFusionError>(futures::stream::iter(
                Emit::new(
                    counts,
                    counter.lo,
                    out_schema,
                    batch_size,
                    slots,
                    counter.specs.clone(),
                )
                .with_reaching(reaching),
            ))
        };
        let stream = futures::stream::once(counted).try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

fn poisoned<T>(_: T) -> DataFusionError {
    DataFusionError::Internal("DenseCountExec: a counting task panicked".into())
}

/// What the counting tasks share.
struct Counter {
    /// What each sequence decides.
    specs: Vec<SequenceSpec>,
    /// Whether each extremum is a min or a max.
    kinds: Vec<Extreme>,
    lo: i64,
    state: Mutex<Counts>,
}

/// What a counting task evaluates, over the columns of the plan it reads.
#[derive(Clone)]
struct Tests {
    key: Arc<dyn PhysicalExpr>,
    /// The distinct conjuncts of the filters, each evaluated once a batch.
    terms: Vec<Arc<dyn PhysicalExpr>>,
    /// Per count, the terms its filter is the conjunction of.
    filters: Vec<Vec<usize>>,
    arguments: Vec<Option<Arc<dyn PhysicalExpr>>>,
    /// Per sequence, its arguments and filter.
    sequences: Vec<(Vec<Arc<dyn PhysicalExpr>>, Filter)>,
    /// Per extremum, its argument and filter.
    extrema: Vec<(Arc<dyn PhysicalExpr>, Filter)>,
}

/// A filter, when there is one.
type Filter = Option<Arc<dyn PhysicalExpr>>;

/// The plans whose partitions the operator reads, each with its tests:
/// the branches of a union, read below the projections that only rename
/// columns or add constants. The time split (`engine::time_rules`) gives a
/// file on one side of every time bound a constant `ts`: read through that
/// projection, a window's test is a constant for the whole branch instead
/// of a comparison per row (and the constant column is not built).
fn branches(plan: &Arc<dyn ExecutionPlan>, tests: &Tests) -> Vec<(Arc<dyn ExecutionPlan>, Tests)> {
    if let Some(union) = plan.downcast_ref::<UnionExec>() {
        return union
            .inputs()
            .iter()
            .flat_map(|child| branches(child, tests))
            .collect();
    }
    if let Some(p) = plan.downcast_ref::<ProjectionExec>() {
        let renames_or_constants = p.expr().iter().all(|e| {
            e.expr.downcast_ref::<Column>().is_some()
                || (collect_columns(&e.expr).is_empty() && !is_volatile(&e.expr))
        });
        if renames_or_constants {
            if let Some(inlined) = tests.through(p) {
                return branches(p.input(), &inlined);
            }
        }
    }
    vec![(Arc::clone(plan), tests.clone())]
}

/// The rows one filter keeps of a batch.
enum Kept {
    All,
    None,
    Some(BooleanArray),
}

impl Tests {
    /// The same tests over the input of `p`, each column of its output
    /// replaced by its expression; `None` when one cannot be.
    fn through(&self, p: &ProjectionExec) -> Option<Tests> {
        let schema = p.input().schema();
        let inline = |e: &Arc<dyn PhysicalExpr>| {
            let e = update_expr(e, p.expr(), true).ok().flatten()?;
            // The fast tests (`fast_expr::faster`) are planned again on the
            // branch's own columns.
            Some(super::fast_expr::faster(&e, &schema).unwrap_or(e))
        };
        let maybe = |e: &Option<Arc<dyn PhysicalExpr>>| match e {
            Some(e) => inline(e).map(Some),
            None => Some(None),
        };
        Some(Tests {
            key: inline(&self.key)?,
            terms: self.terms.iter().map(inline).collect::<Option<_>>()?,
            filters: self.filters.clone(),
            arguments: self.arguments.iter().map(maybe).collect::<Option<_>>()?,
            sequences: self
                .sequences
                .iter()
                .map(|(arguments, filter)| {
                    Some((
                        arguments.iter().map(inline).collect::<Option<_>>()?,
                        maybe(filter)?,
                    ))
                })
                .collect::<Option<_>>()?,
            extrema: self
                .extrema
                .iter()
                .map(|(argument, filter)| Some((inline(argument)?, maybe(filter)?)))
                .collect::<Option<_>>()?,
        })
    }
}

impl Counter {
    async fn consume(&self, mut stream: SendableRecordBatchStream, tests: &Tests) -> Result<()> {
        let mut masks = Vec::new();
        while let Some(batch) = stream.next().await {
            self.add(&batch?, tests, &mut masks)?;
        }
        Ok(())
    }

    /// Counts one batch: the filters are evaluated and each row's counts
    /// gathered into a bit mask (64 counts a word) outside the lock; the
    /// lock is held while the masks are added.
    fn add(&self, batch: &RecordBatch, tests: &Tests, masks: &mut Vec<u64>) -> Result<()> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(());
        }
        let keys = tests.key.evaluate(batch)?.into_array(rows)?;
        let Some(keys) = keys.as_primitive_opt::<Int64Type>() else {
            return internal_err!("DenseCountExec: the key is {}, not Int64", keys.data_type());
        };
        let words = tests.filters.len().div_ceil(64);
        masks.clear();
        masks.resize(rows * words, 0);
        let terms = tests
            .terms
            .iter()
            .map(|t| term(t, batch))
            .collect::<Result<Vec<_>>>()?;
        for (k, (filter, argument)) in tests.filters.iter().zip(&tests.arguments).enumerate() {
            let (word, bit) = (k / 64, 1u64 << (k % 64));
            match kept(filter, &terms, argument.as_ref(), batch)? {
                Kept::All => (0..rows).for_each(|i| masks[i * words + word] |= bit),
                Kept::None => {}
                Kept::Some(b) => b
                    .values()
                    .set_indices()
                    .for_each(|i| masks[i * words + word] |= bit),
            }
        }
        // Each sequence's rows of the batch (those of some step).
        let mut sequence_rows = Vec::with_capacity(tests.sequences.len());
        for (arguments, filter) in &tests.sequences {
            let values = arguments
                .iter()
                .map(|a| a.evaluate(batch)?.into_array(rows))
                .collect::<Result<Vec<_>>>()?;
            let filter = match filter {
                Some(f) => match term(f, batch)? {
                    Kept::All => None,
                    Kept::None => {
                        sequence_rows.push(Vec::new());
                        continue;
                    }
                    Kept::Some(b) => Some(b),
                },
                None => None,
            };
            sequence_rows.push(batch_rows(&values, filter.as_ref())?.collect::<Vec<_>>());
        }
        // Each extremum's argument as integers, with the rows it keeps.
        let mut extreme_values = Vec::with_capacity(tests.extrema.len());
        for (argument, filter) in &tests.extrema {
            let value = argument.evaluate(batch)?.into_array(rows)?;
            let value = datafusion::arrow::compute::cast(&value, &DataType::Int64)?;
            let value = value.as_primitive::<Int64Type>().clone();
            let kept = match filter {
                Some(f) => term(f, batch)?,
                None => Kept::All,
            };
            extreme_values.push((value, kept));
        }
        let mut counts = self.state.lock().map_err(poisoned)?;
        counts.add(keys, masks, self.lo)?;
        counts.add_extrema(keys, &self.kinds, &extreme_values, self.lo);
        counts.add_sequences(keys, &sequence_rows, self.lo)
    }
}

/// The distinct conjuncts of `filters`, and each filter as indices into them.
fn terms(
    filters: &[Option<Arc<dyn PhysicalExpr>>],
) -> (Vec<Arc<dyn PhysicalExpr>>, Vec<Vec<usize>>) {
    let mut terms: Vec<Arc<dyn PhysicalExpr>> = Vec::new();
    let indices = filters
        .iter()
        .map(|f| {
            f.iter()
                .flat_map(split_conjunction)
                .map(|c| match terms.iter().position(|t| t == c) {
                    Some(i) => i,
                    None => {
                        terms.push(Arc::clone(c));
                        terms.len() - 1
                    }
                })
                .collect()
        })
        .collect();
    (terms, indices)
}

/// The rows where all of `filter`'s terms hold and `argument` is not NULL.
fn kept(
    filter: &[usize],
    terms: &[Kept],
    argument: Option<&Arc<dyn PhysicalExpr>>,
    batch: &RecordBatch,
) -> Result<Kept> {
    let mut kept = Kept::All;
    for &t in filter {
        kept = match (kept, &terms[t]) {
            (Kept::None, _) | (_, Kept::None) => Kept::None,
            (k, Kept::All) => k,
            (Kept::All, Kept::Some(b)) => Kept::Some(b.clone()),
            (Kept::Some(a), Kept::Some(b)) => {
                Kept::Some(BooleanArray::new(a.values() & b.values(), None))
            }
        };
    }
    let Some(argument) = argument else {
        return Ok(kept);
    };
    let valid = match argument.evaluate(batch)? {
        ColumnarValue::Scalar(v) if v.is_null() => return Ok(Kept::None),
        ColumnarValue::Scalar(_) => return Ok(kept),
        ColumnarValue::Array(a) => match a.logical_nulls() {
            None => return Ok(kept),
            Some(nulls) => nulls.into_inner(),
        },
    };
    Ok(match kept {
        Kept::None => Kept::None,
        Kept::All => Kept::Some(BooleanArray::new(valid, None)),
        Kept::Some(b) => Kept::Some(BooleanArray::new(b.values() & &valid, None)),
    })
}

/// The rows where `term` holds (not NULL).
fn term(term: &Arc<dyn PhysicalExpr>, batch: &RecordBatch) -> Result<Kept> {
    Ok(match term.evaluate(batch)? {
        ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))) => Kept::All,
        ColumnarValue::Scalar(_) => Kept::None,
        ColumnarValue::Array(a) => {
            let Some(b) = a.as_boolean_opt() else {
                return internal_err!("DenseCountExec: a filter is {}", a.data_type());
            };
            Kept::Some(if b.null_count() > 0 {
                prep_null_mask_filter(b)
            } else {
                b.clone()
            })
        }
    })
}

/// The counters: `n` per profile of the range, row after row.
#[derive(Default)]
struct Counts {
    /// The profiles of the range.
    len: usize,
    n: usize,
    counters: Vec<u8>,
    /// Which profiles of the range had a row.
    seen: Vec<u64>,
    /// Counters past 255: the multiples of 256 to add.
    carries: HashMap<usize, u64>,
    /// Which profiles of the range have a counter in `carries`.
    carried: Vec<u64>,
    /// Keys outside the range, and the null key.
    outside: HashMap<Option<i64>, Vec<u64>>,
    /// Per sequence, the rows of each profile.
    sequences: Vec<SequenceRows>,
    /// Per extremum, each profile's value.
    extrema: Vec<Extrema>,
    reservation: Option<MemoryReservation>,
}

/// A sequence's rows: those of the range with their offset, in arrival
/// order (grouped by a counting sort when emitted: walking a list per
/// profile through the rows was a chain of cache misses), one vector a
/// batch (one growing vector was copied at every doubling), and a list per
/// key outside the range.
#[derive(Default)]
struct SequenceRows {
    chunks: Vec<Vec<(u32, Row)>>,
    outside: HashMap<Option<i64>, Vec<Row>>,
}

impl Counts {
    fn new(
        len: usize,
        n: usize,
        sequences: usize,
        extrema: usize,
        reservation: MemoryReservation,
    ) -> Counts {
        let counts = Counts {
            len,
            n,
            counters: vec![0; len * n],
            seen: vec![0; len.div_ceil(64)],
            carries: HashMap::new(),
            carried: vec![0; len.div_ceil(64)],
            outside: HashMap::new(),
            sequences: (0..sequences).map(|_| SequenceRows::default()).collect(),
            extrema: (0..extrema)
                .map(|_| {
                    // Zeros, so that the pages are first touched (and
                    // zeroed) by the rows; a value counts once `set` says so.
                    let values = vec![0; len];
                    crate::prefetch::huge_pages(&values);
                    Extrema {
                        values,
                        set: vec![0; len.div_ceil(64)],
                        outside: HashMap::new(),
                    }
                })
                .collect(),
            reservation: Some(reservation),
        };
        crate::prefetch::huge_pages(&counts.counters);
        counts
    }

    /// Takes each extremum's values of a batch into account, for the rows
    /// its filter keeps and whose value is not NULL.
    fn add_extrema(
        &mut self,
        keys: &Int64Array,
        kinds: &[Extreme],
        values: &[(Int64Array, Kept)],
        lo: i64,
    ) {
        let len = self.len;
        for ((x, kind), (value, kept)) in self.extrema.iter_mut().zip(kinds).zip(values) {
            let better = |old: i64, new: i64| match kind {
                Extreme::Min => new.min(old),
                Extreme::Max => new.max(old),
            };
            let mut take = |i: usize| {
                if !value.is_valid(i) {
                    return;
                }
                let v = value.value(i);
                let id = keys.value(i);
                let off = id.wrapping_sub(lo) as u64 as usize;
                if off < len && keys.is_valid(i) {
                    let (word, bit) = (&mut x.set[off / 64], 1 << (off % 64));
                    x.values[off] = match *word & bit {
                        0 => v,
                        _ => better(x.values[off], v),
                    };
                    *word |= bit;
                } else {
                    let key = keys.is_valid(i).then_some(id);
                    let e = x.outside.entry(key).or_insert(v);
                    *e = better(*e, v);
                }
            };
            match kept {
                Kept::All => (0..keys.len()).for_each(&mut take),
                Kept::None => {}
                Kept::Some(b) => b.values().set_indices().for_each(&mut take),
            }
        }
    }

    /// Adds each sequence's rows of a batch (`(row index, row)`), by the
    /// keys of the batch.
    fn add_sequences(
        &mut self,
        keys: &Int64Array,
        rows: &[Vec<(usize, Row)>],
        lo: i64,
    ) -> Result<()> {
        let len = self.len;
        for (q, rows) in self.sequences.iter_mut().zip(rows) {
            if let Some(r) = &self.reservation {
                // The row, and its copy when grouped.
                r.try_grow(rows.len() * 2 * std::mem::size_of::<(u32, Row)>())?;
            }
            let mut chunk = Vec::with_capacity(rows.len());
            for &(i, row) in rows {
                let id = keys.value(i);
                let off = id.wrapping_sub(lo) as u64 as usize;
                if off < len && keys.is_valid(i) {
                    // `len` fits a u32 (`counters_fit` bounds it far below).
                    chunk.push((off as u32, row));
                } else {
                    let key = keys.is_valid(i).then_some(id);
                    q.outside.entry(key).or_default().push(row);
                }
            }
            if !chunk.is_empty() {
                q.chunks.push(chunk);
            }
        }
        Ok(())
    }

    fn add(&mut self, keys: &Int64Array, masks: &[u64], lo: i64) -> Result<()> {
        let (len, n, words) = (self.len, self.n, self.n.div_ceil(64));
        let values = keys.values();
        // `id - lo` wraps to a value below `len` only when `id` is in the
        // range, since `lo + len - 1` is an i64.
        let offset = |id: i64| id.wrapping_sub(lo) as u64 as usize;
        for (i, &id) in values.iter().enumerate() {
            // Ask for the counters of a row ahead (`crate::prefetch`): at
            // 30 counts over 1 M profiles the increments took a fifth of a
            // run, all of it waiting for their lines.
            if let Some(&ahead) = values.get(i + AHEAD) {
                let j = i + AHEAD;
                if masks[j * words..(j + 1) * words].iter().any(|&w| w != 0) {
                    prefetch(&self.counters, offset(ahead).saturating_mul(n));
                }
            }
            let mask = &masks[i * words..(i + 1) * words];
            let off = offset(id);
            if off < len && keys.is_valid(i) {
                self.seen[off / 64] |= 1 << (off % 64);
                let base = off * n;
                for_each_bit(mask, |k| {
                    let c = &mut self.counters[base + k];
                    *c = c.wrapping_add(1);
                    if *c == 0 {
                        *self.carries.entry(base + k).or_default() += 256;
                        self.carried[off / 64] |= 1 << (off % 64);
                    }
                });
            } else {
                let key = keys.is_valid(i).then_some(id);
                if !self.outside.contains_key(&key) {
                    if let Some(r) = &self.reservation {
                        r.try_grow(n * 8 + 48)?;
                    }
                }
                let row = self.outside.entry(key).or_insert_with(|| vec![0; n]);
                for_each_bit(mask, |k| row[k] += 1);
            }
        }
        Ok(())
    }
}

/// Calls `f` with the index of each bit set in `mask` (64 a word),
/// ascending.
#[inline]
fn for_each_bit(mask: &[u64], mut f: impl FnMut(usize)) {
    for (w, &word) in mask.iter().enumerate() {
        let mut m = word;
        while m != 0 {
            f(w * 64 + m.trailing_zeros() as usize);
            m &= m - 1;
        }
    }
}

/// A key outside the range and its counts.
type KeyCounts = (Option<i64>, Vec<u64>);

/// The output batches: the keys seen, ascending, the null key last (see
/// its `Iterator` implementation).
struct Emit {
    counts: Counts,
    lo: i64,
    schema: SchemaRef,
    batch_size: usize,
    /// The next offset in the range to look at.
    next: usize,
    /// The keys outside the range, sorted, in a stack each: those below it,
    /// then those above it and the null key (`None` until first asked).
    outside: Option<[Vec<KeyCounts>; 2]>,
    /// Where each output column comes from.
    slots: Vec<Slot>,
    specs: Vec<SequenceSpec>,
    /// Per sequence, its rows grouped by profile.
    grouped: Vec<Grouped>,
    /// The profiles of the range to emit: those where some count reaches
    /// its threshold, or any counter carried (`None`: all those seen).
    reaching: Option<Vec<u16>>,
}

impl Emit {
    fn new(
        mut counts: Counts,
        lo: i64,
        schema: SchemaRef,
        batch_size: usize,
        slots: Vec<Slot>,
        specs: Vec<SequenceSpec>,
    ) -> Emit {
        let len = counts.len;
        let grouped = counts
            .sequences
            .iter_mut()
            .map(|q| Grouped::new(&std::mem::take(&mut q.chunks), len))
            .collect();
        Emit {
            grouped,
            counts,
            lo,
            schema,
            batch_size: batch_size.max(1),
            next: 0,
            outside: None,
            slots,
            specs,
            reaching: None,
        }
    }

    fn with_reaching(mut self, reaching: Option<Vec<u16>>) -> Emit {
        self.reaching = reaching;
        self
    }

    /// Whether a counter of the profile at `off` passed 255.
    fn carried(&self, off: usize) -> bool {
        self.counts.carried[off / 64] & (1 << (off % 64)) != 0
    }

    /// Whether the profile at `off` is emitted (see `reaching`).
    fn emitted(&self, off: usize) -> bool {
        let Some(thresholds) = &self.reaching else {
            return true;
        };
        let n = self.counts.n;
        self.carried(off) || reaches(&self.counts.counters[off * n..(off + 1) * n], thresholds)
    }

    /// A batch of the ids, the counts' columns and the sequences' columns,
    /// in the aggregate's order.
    fn batch(
        &self,
        ids: Int64Array,
        mut counts: Vec<Vec<i64>>,
        mut sequences: Vec<Vec<i64>>,
        mut extrema: Vec<Vec<Option<i64>>>,
    ) -> Result<RecordBatch> {
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.slots.len() + 1);
        arrays.push(Arc::new(ids));
        for (i, slot) in self.slots.iter().enumerate() {
            arrays.push(match *slot {
                Slot::Count(k) => Arc::new(Int64Array::from(std::mem::take(&mut counts[k]))),
                Slot::Sequence(j) => Arc::new(Int64Array::from(std::mem::take(&mut sequences[j]))),
                Slot::Extremum(j) => {
                    let values: ArrayRef =
                        Arc::new(Int64Array::from(std::mem::take(&mut extrema[j])));
                    // The aggregate's type (a timestamp for `ts`).
                    let field = self.schema.field(i + 1);
                    datafusion::arrow::compute::cast(&values, field.data_type())?
                }
            });
        }
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), arrays)?)
    }

    /// Per extremum, the value of each profile of `offsets` (NULL for none).
    fn extreme(&self, offsets: &[usize]) -> Vec<Vec<Option<i64>>> {
        self.counts
            .extrema
            .iter()
            .map(|x| {
                offsets
                    .iter()
                    .map(|&o| (x.set[o / 64] & (1 << (o % 64)) != 0).then(|| x.values[o]))
                    .collect()
            })
            .collect()
    }

    /// Per sequence, whether each profile of `offsets` holds it (1 or 0).
    fn decided(&mut self, offsets: &[usize]) -> Vec<Vec<i64>> {
        let mut buffers = Scratch::default();
        self.grouped
            .iter_mut()
            .zip(&self.specs)
            .map(|(g, spec)| {
                offsets
                    .iter()
                    .map(|&o| i64::from(spec.holds_with(g.of(o), &mut buffers)))
                    .collect()
            })
            .collect()
    }

    /// The next batch of the range's profiles: their offsets first, then
    /// each count's column at once.
    fn in_range(&mut self) -> Option<Result<RecordBatch>> {
        let (n, len) = (self.counts.n, self.counts.len);
        let mut offsets = Vec::with_capacity(self.batch_size);
        while self.next < len && offsets.len() < self.batch_size {
            let word = self.counts.seen[self.next / 64] >> (self.next % 64);
            if word == 0 {
                self.next = (self.next / 64 + 1) * 64;
                continue;
            }
            let off = self.next + word.trailing_zeros() as usize;
            self.next = off + 1;
            if self.emitted(off) {
                offsets.push(off);
            }
        }
        if offsets.is_empty() {
            return None;
        }
        let carried = offsets.iter().any(|&o| self.carried(o));
        let counters = &self.counts.counters;
        let columns = (0..n)
            .map(|k| {
                let plain = offsets.iter().map(|&o| i64::from(counters[o * n + k]));
                if !carried {
                    return plain.collect();
                }
                plain
                    .zip(&offsets)
                    .map(|(c, &o)| {
                        let carry = self.counts.carries.get(&(o * n + k)).copied();
                        c + carry.unwrap_or(0) as i64
                    })
                    .collect()
            })
            .collect();
        let ids = Int64Array::from_iter_values(offsets.iter().map(|&o| self.lo + o as i64));
        let sequences = self.decided(&offsets);
        let extrema = self.extreme(&offsets);
        Some(self.batch(ids, columns, sequences, extrema))
    }

    /// The keys outside the range, sorted as the output is (ascending, the
    /// null key last), split into those below the range and the others,
    /// each as a stack.
    fn outside(&mut self) -> &mut [Vec<KeyCounts>; 2] {
        let lo = self.lo;
        self.outside.get_or_insert_with(|| {
            let mut rows: Vec<_> = self.counts.outside.drain().collect();
            rows.sort_by_key(|(k, _)| (k.is_none(), *k));
            let above = rows.split_off(rows.partition_point(|(k, _)| k.is_some_and(|k| k < lo)));
            [rows, above].map(|mut stack| {
                stack.reverse();
                stack
            })
        })
    }

    /// The next batch of the keys outside the range, below it (`side` 0)
    /// or above it (1).
    fn beside(&mut self, side: usize) -> Option<Result<RecordBatch>> {
        if self.outside()[side].is_empty() {
            return None;
        }
        let mut stack = std::mem::take(&mut self.outside()[side]);
        let mut ids = Vec::with_capacity(self.batch_size);
        let mut columns = vec![Vec::with_capacity(self.batch_size); self.counts.n];
        let mut sequences = vec![Vec::with_capacity(self.batch_size); self.specs.len()];
        let mut extrema = vec![Vec::with_capacity(self.batch_size); self.counts.extrema.len()];
        while ids.len() < self.batch_size {
            let Some((key, row)) = stack.pop() else {
                break;
            };
            ids.push(key);
            for (column, c) in columns.iter_mut().zip(row) {
                column.push(c as i64);
            }
            for ((column, q), spec) in sequences
                .iter_mut()
                .zip(&mut self.counts.sequences)
                .zip(&self.specs)
            {
                let mut rows = q.outside.remove(&key).unwrap_or_default();
                column.push(i64::from(spec.holds(&mut rows)));
            }
            for (column, x) in extrema.iter_mut().zip(&self.counts.extrema) {
                column.push(x.outside.get(&key).copied());
            }
        }
        self.outside()[side] = stack;
        Some(self.batch(Int64Array::from(ids), columns, sequences, extrema))
    }
}

/// The keys in the output's order, ascending with the null key last (the
/// order [`DenseCountExec`] declares): those below the range, the range's,
/// then those above it and the null key.
impl Iterator for Emit {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Result<RecordBatch>> {
        let batch = self
            .beside(0)
            .or_else(|| self.in_range())
            .or_else(|| self.beside(1));
        if batch.is_none() {
            self.counts = Counts::default();
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::datasource::MemTable;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_plan::{collect, displayable};
    use datafusion::prelude::{SessionConfig, SessionContext};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("profile_id", DataType::Int64, true),
            Field::new("x", DataType::Int64, false),
        ]))
    }

    /// One batch per partition of `(profile_id, x)` rows.
    fn partitions(parts: &[&[(Option<i64>, i64)]]) -> Vec<Vec<RecordBatch>> {
        parts
            .iter()
            .map(|rows| {
                let (ids, xs): (Vec<_>, Vec<_>) = rows.iter().copied().unzip();
                vec![RecordBatch::try_new(
                    schema(),
                    vec![
                        Arc::new(Int64Array::from(ids)),
                        Arc::new(Int64Array::from(xs)),
                    ],
                )
                .unwrap()]
            })
            .collect()
    }

    /// The output rows as `(id, counts)`, in output order.
    fn rows(batches: &[RecordBatch]) -> Vec<(Option<i64>, Vec<i64>)> {
        let mut out = Vec::new();
        for b in batches {
            let ids = b.column(0).as_primitive::<Int64Type>();
            for r in 0..b.num_rows() {
                // NULL reads as i64::MIN.
                let counts = (1..b.num_columns())
                    .map(|c| {
                        let column = b.column(c).as_primitive::<Int64Type>();
                        if column.is_valid(r) {
                            column.value(r)
                        } else {
                            i64::MIN
                        }
                    })
                    .collect();
                out.push((ids.is_valid(r).then(|| ids.value(r)), counts));
            }
        }
        out
    }

    const DATA: &[&[(Option<i64>, i64)]] = &[
        &[
            (Some(3), 1),
            (Some(1), 5),
            (Some(3), 7),
            (Some(99), 2),
            (None, 9),
        ],
        &[
            (Some(3), 0),
            (Some(2), 0),
            (Some(-5), 8),
            (Some(1), 1),
            (None, 0),
        ],
    ];

    #[tokio::test]
    async fn counts_per_key_across_partitions_with_keys_outside_the_range() {
        let input = MemorySourceConfig::try_new_exec(&partitions(DATA), schema(), None).unwrap();
        let out = Arc::new(Schema::new(vec![
            Field::new("profile_id", DataType::Int64, true),
            Field::new("big", DataType::Int64, false),
            Field::new("all", DataType::Int64, false),
        ]));
        let x = datafusion::physical_expr::expressions::col("x", &schema()).unwrap();
        let big: Arc<dyn PhysicalExpr> =
            Arc::new(datafusion::physical_expr::expressions::BinaryExpr::new(
                x,
                datafusion::logical_expr::Operator::Gt,
                datafusion::physical_expr::expressions::lit(1i64),
            ));
        let key = datafusion::physical_expr::expressions::col("profile_id", &schema()).unwrap();
        // The range [1, 4]: 99, -5 and the null id are outside it.
        let exec = Arc::new(DenseCountExec::new(
            input,
            key,
            vec![Some(big), None],
            vec![None, None],
            Aggregated {
                sequences: Vec::new(),
                extrema: Vec::new(),
                slots: vec![Slot::Count(0), Slot::Count(1)],
            },
            out,
            1,
            4,
        ));
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_batch_size(2));
        let batches = collect(exec, ctx.task_ctx()).await.unwrap();
        assert!(batches.iter().all(|b| b.num_rows() <= 2), "batch size kept");
        assert_eq!(
            rows(&batches),
            vec![
                (Some(-5), vec![1, 1]),
                (Some(1), vec![1, 2]),
                (Some(2), vec![0, 1]),
                (Some(3), vec![1, 3]),
                (Some(99), vec![1, 1]),
                (None, vec![1, 2]),
            ]
        );
    }

    /// A union branch whose projection makes a column a constant (as the
    /// time split makes `ts` of a file on one side of every bound) is read
    /// below the projection, its test a constant; the counts are those of
    /// the union.
    #[tokio::test]
    async fn a_branch_of_constants_is_read_below_its_projection() {
        use datafusion::physical_expr::expressions::{col, lit, BinaryExpr};
        use datafusion::physical_plan::projection::ProjectionExpr;
        let source = |parts: &[&[(Option<i64>, i64)]]| {
            MemorySourceConfig::try_new_exec(&partitions(parts), schema(), None).unwrap()
                as Arc<dyn ExecutionPlan>
        };
        // The first branch's x is 6 whatever its rows say, the second's is
        // read: x > 1 holds for every row of the first.
        let constant = Arc::new(
            ProjectionExec::try_new(
                vec![
                    ProjectionExpr::new(col("profile_id", &schema()).unwrap(), "profile_id"),
                    ProjectionExpr::new(lit(6i64), "x"),
                ],
                source(&DATA[..1]),
            )
            .unwrap(),
        );
        let union = UnionExec::try_new(vec![constant, source(&DATA[1..])]).unwrap();
        let big: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
            col("x", &schema()).unwrap(),
            datafusion::logical_expr::Operator::Gt,
            lit(1i64),
        ));
        let out = Arc::new(Schema::new(vec![
            Field::new("profile_id", DataType::Int64, true),
            Field::new("big", DataType::Int64, false),
        ]));
        let exec = DenseCountExec::new(
            union,
            col("profile_id", &schema()).unwrap(),
            vec![Some(big)],
            vec![None],
            Aggregated {
                sequences: Vec::new(),
                extrema: Vec::new(),
                slots: vec![Slot::Count(0)],
            },
            out,
            1,
            4,
        );
        let read = branches(&exec.input, &exec.tests());
        assert_eq!(read.len(), 2);
        assert!(read
            .iter()
            .all(|(p, _)| p.downcast_ref::<ProjectionExec>().is_none()));
        let batch = &partitions(&DATA[..1])[0][0];
        let first = read[0].1.terms[0].evaluate(batch).unwrap();
        assert!(
            matches!(
                first,
                ColumnarValue::Scalar(ScalarValue::Boolean(Some(true)))
            ),
            "the constant branch's test is a constant: {first:?}"
        );
        let second = read[1].1.terms[0].evaluate(batch).unwrap();
        assert!(matches!(second, ColumnarValue::Array(_)));
        let ctx = SessionContext::new();
        let batches = collect(Arc::new(exec), ctx.task_ctx()).await.unwrap();
        // First branch: every row counts; second: x > 1 only for -5 (x 8).
        assert_eq!(
            rows(&batches),
            vec![
                (Some(-5), vec![1]),
                (Some(1), vec![1]),
                (Some(2), vec![0]),
                (Some(3), vec![2]),
                (Some(99), vec![1]),
                (None, vec![1]),
            ]
        );
    }

    /// The rows two counts emit, `batch_size` a batch, with `reaching`.
    fn emitted_two_counts(
        counts: Counts,
        lo: i64,
        batch_size: usize,
        reaching: Option<Vec<u16>>,
    ) -> Vec<(Option<i64>, Vec<i64>)> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("profile_id", DataType::Int64, true),
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Int64, false),
        ]));
        let slots = vec![Slot::Count(0), Slot::Count(1)];
        let batches: Vec<_> = Emit::new(counts, lo, schema, batch_size, slots, Vec::new())
            .with_reaching(reaching)
            .collect::<Result<_>>()
            .unwrap();
        rows(&batches)
    }

    /// The counting asks for rows' counters ahead of them: over many rows
    /// of ids in and out of the range, NULL and the extremes of `i64`,
    /// with masks of one, both or no counts, it counts what a map counts.
    #[test]
    fn counting_ahead_counts_every_row_once() {
        let pool: Arc<dyn datafusion::execution::memory_pool::MemoryPool> =
            Arc::new(datafusion::execution::memory_pool::UnboundedMemoryPool::default());
        let (lo, len) = (100, 50);
        let mut counts = Counts::new(len, 2, 0, 0, MemoryConsumer::new("t").register(&pool));
        let pick = [
            Some(i64::MIN),
            Some(99),
            Some(100),
            None,
            Some(149),
            Some(150),
            Some(i64::MAX),
        ];
        let ids: Vec<Option<i64>> = (0..500i64)
            .map(|i| match i % 11 {
                0 => pick[(i / 11) as usize % pick.len()],
                _ => Some(lo + (i * 37) % len as i64),
            })
            .collect();
        let masks: Vec<u64> = (0..ids.len() as u64).map(|i| i % 4).collect();
        let mut expected: HashMap<Option<i64>, Vec<i64>> = HashMap::new();
        for (id, mask) in ids.iter().zip(&masks) {
            let row = expected.entry(*id).or_insert_with(|| vec![0, 0]);
            (0..2).for_each(|k| row[k] += ((mask >> k) & 1) as i64);
        }
        counts.add(&Int64Array::from(ids), &masks, lo).unwrap();
        let mut got = emitted_two_counts(counts, lo, 64, None);
        let mut expected: Vec<_> = expected.into_iter().collect();
        got.sort();
        expected.sort();
        assert_eq!(
            got.len(),
            50 + 5,
            "every profile of the range and five keys outside"
        );
        assert_eq!(got, expected);
    }

    /// The condition a filter over the counts implies: from a disjunction
    /// of counts compared with integers of at least 1, in either order,
    /// and from a conjunct of a conjunction; none where a disjunct can
    /// hold of a profile with no count, or tests something else.
    #[test]
    fn a_filter_over_the_counts_gives_the_thresholds_it_implies() {
        use datafusion::physical_expr::expressions::{binary, lit};
        let schema = Schema::new(vec![
            Field::new("profile_id", DataType::Int64, true),
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Int64, false),
            Field::new("s", DataType::Int64, false),
            Field::new("c", DataType::Int64, false),
        ]);
        let slots = [
            Slot::Count(0),
            Slot::Count(1),
            Slot::Sequence(0),
            Slot::Count(2),
        ];
        let column = |name: &str| -> Arc<dyn PhysicalExpr> {
            let i = schema.index_of(name).unwrap();
            Arc::new(Column::new(name, i))
        };
        let cmp = |l, op, r| binary(l, op, r, &schema).unwrap();
        let or = |l, r| cmp(l, Operator::Or, r);
        let and = |l, r| cmp(l, Operator::And, r);
        // a >= 2 OR b > 2 OR 1 <= c
        let any = or(
            or(
                cmp(column("a"), Operator::GtEq, lit(2i64)),
                cmp(column("b"), Operator::Gt, lit(2i64)),
            ),
            cmp(lit(1i64), Operator::LtEq, column("c")),
        );
        assert_eq!(reaching(&any, &slots, 3), Some(vec![2, 3, 1]));
        // (a = 1 OR c >= 300) AND b = 0: a past 255 needs a carry.
        let both = and(
            or(
                cmp(column("a"), Operator::Eq, lit(1i64)),
                cmp(column("c"), Operator::GtEq, lit(300i64)),
            ),
            cmp(column("b"), Operator::Eq, lit(0i64)),
        );
        assert_eq!(reaching(&both, &slots, 3), Some(vec![1, 256, 256]));
        // A profile with no count passes `b >= 0` and `a < 2`; `s` is a
        // sequence, not a count.
        for none in [
            or(
                cmp(column("a"), Operator::GtEq, lit(1i64)),
                cmp(column("b"), Operator::GtEq, lit(0i64)),
            ),
            cmp(column("a"), Operator::Lt, lit(2i64)),
            cmp(column("s"), Operator::GtEq, lit(1i64)),
        ] {
            assert_eq!(reaching(&none, &slots, 3), None, "{none}");
        }
    }

    /// With thresholds, the operator emits the profiles of the range where
    /// some count reaches its threshold, and those with a counter past
    /// 255 (whatever the thresholds), with their counts; keys outside the
    /// range all; over batches that keep no profile of many seen.
    #[test]
    fn only_the_profiles_reaching_a_threshold_are_emitted() {
        let pool: Arc<dyn datafusion::execution::memory_pool::MemoryPool> =
            Arc::new(datafusion::execution::memory_pool::UnboundedMemoryPool::default());
        let (lo, len) = (1, 40);
        let mut counts = Counts::new(len, 2, 0, 0, MemoryConsumer::new("t").register(&pool));
        // Every profile once in count 0; profiles 30 and 35 three times in
        // count 1; profile 7 300 times in count 0; key 1000 (outside).
        let mut ids: Vec<i64> = (1..=40).collect();
        let mut masks: Vec<u64> = vec![1; 40];
        for p in [30, 35] {
            ids.extend([p; 3]);
            masks.extend([2; 3]);
        }
        ids.extend([7; 300]);
        masks.extend([1; 300]);
        ids.push(1000);
        masks.push(0);
        counts.add(&Int64Array::from(ids), &masks, lo).unwrap();
        // Count 0 at least 2 or count 1 at least 3.
        let mut got = emitted_two_counts(counts, lo, 4, Some(vec![2, 3]));
        got.sort();
        assert_eq!(
            got,
            vec![
                (Some(7), vec![301, 0]),
                (Some(30), vec![1, 3]),
                (Some(35), vec![1, 3]),
                (Some(1000), vec![0, 0]),
            ]
        );
    }

    #[test]
    fn a_counter_past_255_carries() {
        let pool: Arc<dyn datafusion::execution::memory_pool::MemoryPool> =
            Arc::new(datafusion::execution::memory_pool::UnboundedMemoryPool::default());
        let mut counts = Counts::new(2, 1, 0, 0, MemoryConsumer::new("t").register(&pool));
        counts.counters[1] = 254;
        // Three wraps past 255: at 255, 511 and 767.
        let mut ids = vec![11; 600];
        ids.push(10);
        counts.add(&Int64Array::from(ids), &[1; 601], 10).unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("profile_id", DataType::Int64, true),
            Field::new("c", DataType::Int64, false),
        ]));
        let batches: Vec<_> = Emit::new(counts, 10, schema, 8, vec![Slot::Count(0)], Vec::new())
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(
            rows(&batches),
            vec![(Some(10), vec![1]), (Some(11), vec![854])]
        );
    }

    /// A session of two partitions with the rule, the range `[1, 4]` and
    /// `budget` bytes for counters.
    fn session(budget: usize) -> SessionContext {
        let range = Arc::new(OnceLock::new());
        range.set(Some((1, 4))).unwrap();
        let mut rules = datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules;
        let at = rules
            .iter()
            .position(|r| r.name() == "EnsureRequirements")
            .unwrap();
        rules.insert(at, Arc::new(DenseCounts::new(range, budget)));
        let state = SessionStateBuilder::new()
            .with_config(SessionConfig::new().with_target_partitions(2))
            .with_default_features()
            .with_physical_optimizer_rules(rules)
            .build();
        let ctx = SessionContext::new_with_state(state);
        let table = MemTable::try_new(schema(), partitions(DATA)).unwrap();
        ctx.register_table("t", Arc::new(table)).unwrap();
        ctx
    }

    const QUERY: &str = "SELECT profile_id, count(*) FILTER (WHERE x > 1) AS big, count(*) AS n, \
                         count(profile_id) AS ids FROM t GROUP BY profile_id ORDER BY profile_id NULLS LAST";

    async fn run(ctx: &SessionContext, sql: &str) -> (String, Vec<(Option<i64>, Vec<i64>)>) {
        let df = ctx.sql(sql).await.unwrap();
        let plan = df.clone().create_physical_plan().await.unwrap();
        let shown = displayable(plan.as_ref()).indent(false).to_string();
        (shown, rows(&df.collect().await.unwrap()))
    }

    #[tokio::test]
    async fn the_rule_plans_the_operator_only_for_row_counts_that_fit() {
        let (plan, got) = run(&session(1 << 20), QUERY).await;
        assert!(
            plan.contains("DenseCountExec: key=profile_id@0, range=[1, 4]"),
            "{plan}"
        );
        assert!(!plan.contains("AggregateExec"), "{plan}");
        // `count(profile_id)` leaves the NULL ids out.
        let want = vec![
            (Some(-5), vec![1, 1, 1]),
            (Some(1), vec![1, 2, 2]),
            (Some(2), vec![0, 1, 1]),
            (Some(3), vec![1, 3, 3]),
            (Some(99), vec![1, 1, 1]),
            (None, vec![1, 2, 0]),
        ];
        assert_eq!(got, want);
        // Too little memory for 4 × 3 one-byte counters: DataFusion's aggregation.
        let (plan, got) = run(&session(11), QUERY).await;
        assert!(!plan.contains("DenseCountExec"), "{plan}");
        assert_eq!(got, want);
        // A distinct count is planned as two groupings, the second a count
        // of non-NULL values.
        let (plan, got) = run(
            &session(1 << 20),
            "SELECT profile_id, count(DISTINCT x) FROM t GROUP BY profile_id \
             ORDER BY profile_id NULLS LAST",
        )
        .await;
        assert!(plan.contains("DenseCountExec"), "{plan}");
        let ids = [Some(-5), Some(1), Some(2), Some(3), Some(99), None];
        let distinct = [1, 2, 1, 3, 1, 2].map(|n| vec![n]);
        assert_eq!(got, ids.into_iter().zip(distinct).collect::<Vec<_>>());
        // A sum, or a count alongside another aggregate, is not a row count.
        for sql in [
            "SELECT profile_id, sum(x) FROM t GROUP BY profile_id",
            "SELECT profile_id, count(*), sum(x) FROM t GROUP BY profile_id",
            "SELECT x, count(*) FROM t GROUP BY x",
        ] {
            let (plan, _) = run(&session(1 << 20), sql).await;
            assert!(!plan.contains("DenseCountExec"), "{sql}: {plan}");
        }
        // `min` and `max` (first_seen, last_seen), filtered or not, beside a
        // count: the same values as DataFusion's aggregation.
        let sql = "SELECT profile_id, count(*), min(x), max(x) FILTER (WHERE x > 1) FROM t \
                   GROUP BY profile_id ORDER BY profile_id NULLS LAST";
        let (plan, got) = run(&session(1 << 20), sql).await;
        assert!(plan.contains("DenseCountExec"), "{plan}");
        assert!(plan.contains("max("), "{plan}");
        let (plan, want) = run(&session(0), sql).await;
        assert!(!plan.contains("DenseCountExec"), "{plan}");
        assert_eq!(got, want);
        // Filters that share a test: DataFusion projects it once below the
        // aggregation (`__common_expr_1`); the operator reads below that
        // projection, the test inlined, and counts the same.
        let sql = "SELECT profile_id, count(*) FILTER (WHERE x >= 1 AND x < 8), \
                   count(*) FILTER (WHERE x >= 1 AND x < 8 AND profile_id > 1), \
                   count(*) FILTER (WHERE (x >= 1 AND x < 8) OR profile_id = 99) FROM t \
                   GROUP BY profile_id ORDER BY profile_id NULLS LAST";
        let (plan, want) = run(&session(0), sql).await;
        assert!(plan.contains("__common_expr"), "{plan}");
        let (plan, got) = run(&session(1 << 20), sql).await;
        assert!(plan.contains("DenseCountExec"), "{plan}");
        let mut below = plan.lines().skip_while(|l| !l.contains("DenseCountExec"));
        assert!(
            !plan.contains("__common_expr")
                && below.nth(1).is_some_and(|l| l.contains("DataSourceExec")),
            "{plan}"
        );
        assert_eq!(got, want);
        assert!(got.iter().any(|(_, c)| c[0] > 0 && c[1] != c[0]), "{got:?}");
    }
}
