//! Optimizer rules that use what the footers say of `ts`: the plan Seg
//! builds holds for any data (it is the SQL's plan too); these rules, which
//! the engine registers ahead of DataFusion's own, fit it to the files at
//! hand.
//!
//! [`ElideTime`]: a comparison of `ts` with a literal that every event meets,
//! by the span of the whole table (`DataDir::ts_span`), becomes `true`, and
//! DataFusion's simplifier drops it. When all events are before as_of,
//! `ts <= as_of` goes, and a segment without windows does not read `ts` at
//! all.
//!
//! [`SplitByTime`]: files whose time is decided are read without `ts`.
//! When every use of `ts` in a plan is a comparison with a literal (a window
//! bound, `ts <= as_of`) or the key of its UTC day, week or month (`days`,
//! `weeks`, `months`), a file whose earliest and latest `ts` lie on the same
//! side of every such bound, and in the same day, week or month, answers each
//! use the same way for all of its rows. Any one instant of the file then
//! stands for all of them: the plan reads the file without `ts` and gives
//! every row that instant, a constant. Files are grouped by how they answer
//! the uses; the scan of events becomes a union of one scan per group (the
//! undecided files read `ts` as before), and DataFusion's optimizer folds the
//! constant comparisons away in the pre-filter. With a 30-day window over
//! three months of daily files, only the file that straddles the window's
//! start reads `ts`. A file of several row groups (DuckDB writes 122 880
//! rows to a group, in one file) whose groups answer differently is split
//! the same way by row group, each a byte range of the file.
//!
//! `first_seen` and `last_seen` take part: the planner counts, for the
//! run, the rows in the window and those beyond it instead of taking the
//! earliest or latest `ts` (see `plan::Lowering::measures`).
//!
//! `ts` takes up more of a Parquet file than any other column the plans read
//! (8 bytes of high-entropy values per event), so decoding it is a large part
//! of a windowed segment's scan.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int64Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type, Schema, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{
    col, lit, BinaryExpr, Expr, LogicalPlan, LogicalPlanBuilder, Operator, TableScan,
};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use datafusion::physical_expr::{create_physical_expr, PhysicalExpr};

use super::events_table::{row_group_range, row_group_starts, EventsFile, EventsTable};
use crate::data::{row_group_ts_spans, FileSpan};
use crate::plan::{day_key, month_key, ts_scalar, unit_nanos, week_key};

/// Comparisons of `ts` that every event meets, by the span of the whole
/// events table, become `true` (see the module documentation).
#[derive(Debug)]
pub struct ElideTime {
    /// The earliest and latest `ts` of every event, in nanoseconds; `None`
    /// when some file's span is unknown.
    span: Option<(i128, i128)>,
}

impl ElideTime {
    pub fn new(span: Option<(i128, i128)>) -> Self {
        ElideTime { span }
    }
}

impl OptimizerRule for ElideTime {
    fn name(&self) -> &str {
        "seg_elide_time"
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let Some((lo, hi)) = self.span else {
            return Ok(Transformed::no(plan));
        };
        plan.transform_up(|node| {
            node.map_expressions(|e| {
                e.transform(|x| {
                    let Some((op, n)) = bound(&x) else {
                        return Ok(Transformed::no(x));
                    };
                    Ok(match answer(op, n, lo, hi) {
                        Some(true) => Transformed::yes(lit(true)),
                        _ => Transformed::no(x),
                    })
                })
            })
        })
    }
}

/// Scans of the whole events table become a union of scans by how their
/// files, or row groups, answer the plan's time bounds (see the module
/// documentation).
#[derive(Debug)]
pub struct SplitByTime {
    schema: SchemaRef,
    files: Vec<EventsFile>,
    /// Per file, what its footer says of `ts`.
    spans: Vec<FileSpan>,
    /// Per file, its row groups; none for a file of one row group.
    row_groups: Vec<RowGroups>,
}

/// The row groups with rows of a file: where each starts (as
/// `row_group_starts` gives it) and what its statistics say of `ts`.
#[derive(Debug, Default)]
struct RowGroups {
    starts: Vec<(usize, u64)>,
    spans: Vec<FileSpan>,
}

/// A part of the events table that the split puts in one group or another:
/// a whole file, or the `n`th row group (with rows) of a file.
struct Unit {
    file: usize,
    row_group: Option<usize>,
    span: FileSpan,
    /// How its rows answer the plan's uses of `ts` (`Uses::answers`).
    answers: Option<Answers>,
}

impl SplitByTime {
    pub fn new(schema: SchemaRef, files: Vec<EventsFile>, spans: Vec<FileSpan>) -> Self {
        let row_groups = files
            .iter()
            .map(|f| {
                let starts = row_group_starts(&f.footer.metadata);
                if starts.len() < 2 {
                    return RowGroups::default();
                }
                let all = row_group_ts_spans(&f.footer.schema, &f.footer.metadata);
                let spans = starts
                    .iter()
                    .map(|&(i, _)| all.get(i).copied().unwrap_or(FileSpan::Unknown))
                    .collect();
                RowGroups { starts, spans }
            })
            .collect();
        SplitByTime {
            schema,
            files,
            spans,
            row_groups,
        }
    }

    /// Whether `scan` reads every events file whole (a scan already split
    /// reads some of them, or parts).
    fn whole(&self, scan: &TableScan) -> bool {
        scan.table_name.table() == "events"
            && source_as_provider(&scan.source).is_ok_and(|p| {
                (p.as_ref() as &dyn std::any::Any)
                    .downcast_ref::<EventsTable>()
                    .is_some_and(|t| t.is_whole(self.files.len()))
            })
    }

    /// The files, each whole when all its row groups answer the plan's
    /// uses of `ts` alike, else each of its row groups.
    fn units(&self, uses: &Uses) -> Vec<Unit> {
        let mut units = Vec::new();
        for (file, &span) in self.spans.iter().enumerate() {
            let groups: Vec<Unit> = self.row_groups[file]
                .spans
                .iter()
                .enumerate()
                .map(|(n, &span)| Unit {
                    file,
                    row_group: Some(n),
                    span,
                    answers: uses.answers(span),
                })
                .collect();
            if groups.windows(2).all(|w| w[0].answers == w[1].answers) {
                // Whole: one answer for all its row groups, or a single one.
                let answers = match groups.first() {
                    Some(g) => g.answers.clone(),
                    None => uses.answers(span),
                };
                units.push(Unit {
                    file,
                    row_group: None,
                    span,
                    answers,
                });
            } else {
                units.extend(groups);
            }
        }
        units
    }

    /// The file of `unit`, and the byte range of its row group.
    fn part(&self, unit: &Unit) -> (EventsFile, Option<Range<u64>>) {
        let file = &self.files[unit.file];
        let range = unit
            .row_group
            .map(|n| row_group_range(&self.row_groups[unit.file].starts, n, file.footer.size));
        (file.clone(), range)
    }
}

impl OptimizerRule for SplitByTime {
    fn name(&self) -> &str {
        "seg_split_by_time"
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let row_groups: usize = self.row_groups.iter().map(|g| g.starts.len().max(1)).sum();
        if row_groups < 2 {
            return Ok(Transformed::no(plan));
        }
        let mut whole = false;
        plan.apply(|node| {
            whole |= matches!(node, LogicalPlan::TableScan(s) if self.whole(s));
            Ok(TreeNodeRecursion::Continue)
        })?;
        if !whole {
            return Ok(Transformed::no(plan));
        }
        let Some(view) = self.view(&plan)? else {
            return Ok(Transformed::no(plan));
        };
        plan.transform_up(|node| match node {
            LogicalPlan::TableScan(scan) if self.whole(&scan) => Ok(Transformed::yes(view.clone())),
            other => Ok(Transformed::no(other)),
        })
    }
}

impl SplitByTime {
    /// The union of one scan per group of files (or row groups) that answer
    /// `plan`'s time bounds alike, aliased `events`; `None` when nothing is
    /// decided or `ts` has another use.
    fn view(&self, plan: &LogicalPlan) -> Result<Option<LogicalPlan>> {
        let ts_type = self
            .schema
            .field_with_name("ts")
            .map(|f| f.data_type().clone())
            .unwrap_or(DataType::Null);
        let Some(uses) = Uses::of(plan, &ts_type)? else {
            return Ok(None);
        };
        // Units by their answers; `None`: some use is undecided.
        let mut groups: BTreeMap<Option<Answers>, Vec<Unit>> = BTreeMap::new();
        for unit in self.units(&uses) {
            groups.entry(unit.answers.clone()).or_default().push(unit);
        }
        // A scan per day of two years of daily row groups would cost more
        // to plan and run than `ts` costs to read.
        if !groups.keys().any(Option::is_some) || groups.len() > MAX_SCANS {
            return Ok(None);
        }
        let unit = unit_nanos(&ts_type);
        let mut view: Option<LogicalPlanBuilder> = None;
        for (answers, members) in &groups {
            let parts = members.iter().map(|u| self.part(u)).collect();
            let table = EventsTable::of_parts(Arc::clone(&self.schema), parts);
            let scan =
                LogicalPlanBuilder::scan("events", provider_as_source(Arc::new(table)), None)?;
            let branch = match answers {
                None => scan.build()?,
                Some(_) => {
                    // The first unit's earliest instant stands for the group.
                    let Some((lo, _)) = members[0].span.known() else {
                        return Ok(None);
                    };
                    let Ok(value) = i64::try_from(lo / unit) else {
                        return Ok(None);
                    };
                    let constant = lit(ts_scalar(&ts_type, value));
                    let columns: Vec<Expr> = scan
                        .schema()
                        .fields()
                        .iter()
                        .map(|f| match f.name().as_str() {
                            "ts" => constant.clone().alias("ts"),
                            name => col(format!("events.{name}")),
                        })
                        .collect();
                    scan.project(columns)?.build()?
                }
            };
            view = Some(match view {
                None => LogicalPlanBuilder::from(branch),
                Some(v) => v.union(branch)?,
            });
        }
        let Some(view) = view else {
            return Ok(None);
        };
        Ok(Some(view.alias("events")?.build()?))
    }
}

/// The most scans the split makes of the events table.
const MAX_SCANS: usize = 64;

/// `ts op n`, `n` in nanoseconds.
type Bound = (Operator, i128);

/// How all rows of a unit answer a plan's uses of `ts`: each bound, and the
/// key of each period.
type Answers = (Vec<bool>, Vec<i64>);

/// A plan's uses of `ts`: comparisons with literals, and the keys of the
/// UTC day, week or month of `ts` (of `days`, `weeks`, `months`), which all
/// rows of a unit share when its earliest and latest rows do.
struct Uses {
    bounds: Vec<Bound>,
    /// Each key, over a batch of one column `ts`.
    periods: Vec<Arc<dyn PhysicalExpr>>,
    ts_field: FieldRef,
}

impl Uses {
    /// `None` when `plan` uses `ts` another way (so no constant may stand
    /// for it) or not at all.
    fn of(plan: &LogicalPlan, ts_type: &DataType) -> Result<Option<Uses>> {
        let Some((bounds, periods)) = uses_of_ts(plan, ts_type) else {
            return Ok(None);
        };
        let ts_field = Arc::new(Field::new("ts", ts_type.clone(), true));
        let schema = DFSchema::try_from(Schema::new(vec![Arc::clone(&ts_field)]))?;
        let props = ExecutionProps::new();
        let periods = periods
            .into_iter()
            .map(|p| {
                let bare = p
                    .transform(|x| {
                        Ok(match is_ts(&x) {
                            true => Transformed::yes(col("ts")),
                            false => Transformed::no(x),
                        })
                    })?
                    .data;
                create_physical_expr(&bare, &schema, &props, &PhysicalPlanningContext::default())
            })
            .collect::<Result<_>>()?;
        Ok(Some(Uses {
            bounds,
            periods,
            ts_field,
        }))
    }

    /// How every row of `span` answers the uses: `None` when rows may
    /// differ on one, or the span is not known.
    fn answers(&self, span: FileSpan) -> Option<Answers> {
        let (lo, hi) = span.known()?;
        let bounds = self
            .bounds
            .iter()
            .map(|&(op, n)| answer(op, n, lo, hi))
            .collect::<Option<Vec<bool>>>()?;
        let mut keys = Vec::with_capacity(self.periods.len());
        if !self.periods.is_empty() {
            let unit = unit_nanos(self.ts_field.data_type());
            let ends = Int64Array::from(vec![
                i64::try_from(lo / unit).ok()?,
                i64::try_from(hi / unit).ok()?,
            ]);
            let ts = cast(&ends, self.ts_field.data_type()).ok()?;
            let batch = RecordBatch::try_new(
                Arc::new(Schema::new(vec![Arc::clone(&self.ts_field)])),
                vec![ts],
            )
            .ok()?;
            for period in &self.periods {
                let key = period.evaluate(&batch).ok()?.into_array(2).ok()?;
                let key = cast(&key, &DataType::Int64).ok()?;
                let key = key.as_primitive_opt::<Int64Type>()?;
                if key.null_count() > 0 || key.value(0) != key.value(1) {
                    return None;
                }
                keys.push(key.value(0));
            }
        }
        Some((bounds, keys))
    }
}

/// `ts op n` (with `n` in nanoseconds), for a comparison of `ts` with a
/// timestamp literal, either way round.
fn bound(e: &Expr) -> Option<Bound> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else {
        return None;
    };
    if !is_comparison(*op) {
        return None;
    }
    match (left.as_ref(), right.as_ref()) {
        (l, Expr::Literal(v, _)) if is_ts(l) => Some((*op, nanos(v)?)),
        (Expr::Literal(v, _), r) if is_ts(r) => Some((op.swap()?, nanos(v)?)),
        _ => None,
    }
}

/// How every row of a file from `lo` to `hi` answers `ts op n`: `None` when
/// rows differ.
fn answer(op: Operator, n: i128, lo: i128, hi: i128) -> Option<bool> {
    let (all, none) = match op {
        Operator::Gt => (lo > n, hi <= n),
        Operator::GtEq => (lo >= n, hi < n),
        Operator::Lt => (hi < n, lo >= n),
        Operator::LtEq => (hi <= n, lo > n),
        _ => (false, false),
    };
    match (all, none) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

/// Every comparison of `ts` with a literal in `plan`, as (operator, instant
/// in nanoseconds), and every period key of `ts`; `None` when `ts` is used
/// any other way (in arithmetic, or in the output), so no constant may stand
/// for it, or not at all.
fn uses_of_ts(plan: &LogicalPlan, ts_type: &DataType) -> Option<(Vec<Bound>, Vec<Expr>)> {
    let mut found = Vec::new();
    let mut periods = Vec::new();
    let mut other = false;
    let _ = plan.apply(|node| {
        let passes_through = matches!(node, LogicalPlan::Projection(_));
        let _ = node.apply_expressions(|e| {
            // A projection may pass `ts` on unchanged; what it is used for
            // above is checked there.
            let bare = match e {
                Expr::Alias(a) => &*a.expr,
                e => e,
            };
            if passes_through && is_ts(bare) {
                return Ok(TreeNodeRecursion::Continue);
            }
            uses(e, ts_type, &mut found, &mut periods, &mut other);
            Ok(TreeNodeRecursion::Continue)
        });
        Ok(if other {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    let output_has_ts = plan.schema().fields().iter().any(|f| f.name() == "ts");
    let used = !found.is_empty() || !periods.is_empty();
    (!other && !output_has_ts && used).then_some((found, periods))
}

fn uses(
    e: &Expr,
    ts_type: &DataType,
    found: &mut Vec<Bound>,
    periods: &mut Vec<Expr>,
    other: &mut bool,
) {
    let _ = e.apply(|x| {
        if let Some(b) = bound(x) {
            found.push(b);
            return Ok(TreeNodeRecursion::Jump);
        }
        if is_period(x, ts_type) {
            if !periods.contains(x) {
                periods.push(x.clone());
            }
            return Ok(TreeNodeRecursion::Jump);
        }
        if is_ts(x) {
            *other = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
}

/// Whether `e` is the key of the UTC day, week or month of the events'
/// `ts` (of type `ts_type`), as the planner writes them: each is the same
/// for two instants of a day, week or month, and for every instant between
/// them.
fn is_period(e: &Expr, ts_type: &DataType) -> bool {
    if !matches!(e, Expr::Cast(_) | Expr::BinaryExpr(_)) {
        return false;
    }
    let mut ts = None;
    let _ = e.apply(|x| {
        if is_ts(x) {
            ts = Some(x.clone());
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    ts.is_some_and(|ts| {
        let day = day_key(ts, ts_type);
        *e == day || *e == week_key(day.clone()) || *e == month_key(day)
    })
}

/// The events' `ts` (a column of that name of a relation `events`, or
/// unqualified).
fn is_ts(e: &Expr) -> bool {
    matches!(e, Expr::Column(c) if c.name == "ts"
        && c.relation.as_ref().is_none_or(|r| r.table() == "events"))
}

fn is_comparison(op: Operator) -> bool {
    matches!(
        op,
        Operator::Gt | Operator::GtEq | Operator::Lt | Operator::LtEq
    )
}

/// A timestamp literal in nanoseconds since the epoch.
fn nanos(v: &ScalarValue) -> Option<i128> {
    match v {
        ScalarValue::TimestampSecond(Some(t), _)
        | ScalarValue::TimestampMillisecond(Some(t), _)
        | ScalarValue::TimestampMicrosecond(Some(t), _)
        | ScalarValue::TimestampNanosecond(Some(t), _) => {
            Some(i128::from(*t) * unit_nanos(&v.data_type()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Field, Schema, TimeUnit};
    use datafusion::logical_expr::builder::LogicalTableSource;
    use datafusion::logical_expr::cast;
    use datafusion::optimizer::OptimizerContext;

    fn micros(v: i64) -> Expr {
        lit(ScalarValue::TimestampMicrosecond(Some(v), None))
    }

    fn events() -> LogicalPlanBuilder {
        let schema = Schema::new(vec![
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                false,
            ),
            Field::new("event", DataType::Utf8, true),
        ]);
        let source = Arc::new(LogicalTableSource::new(Arc::new(schema)));
        LogicalPlanBuilder::scan("events", source, None).expect("scan")
    }

    #[test]
    fn a_bound_every_event_meets_becomes_true_and_others_stay() {
        // Events from 10 µs to 20 µs.
        let rule = ElideTime::new(Some((10_000, 20_000)));
        let predicate = col("ts")
            .lt_eq(micros(20))
            .and(col("ts").gt_eq(micros(15)))
            .and(micros(10).lt_eq(col("ts")))
            .and(col("ts").gt(micros(10)));
        let plan = events()
            .filter(predicate)
            .expect("filter")
            .build()
            .expect("plan");
        let out = rule
            .rewrite(plan, &OptimizerContext::new())
            .expect("rewrite");
        assert!(out.transformed);
        let LogicalPlan::Filter(filter) = out.data else {
            panic!("not a filter: {}", out.data);
        };
        let expected = lit(true)
            .and(col("events.ts").gt_eq(micros(15)))
            .and(lit(true))
            .and(col("events.ts").gt(micros(10)));
        assert_eq!(filter.predicate, expected);
    }

    #[test]
    fn without_a_known_span_nothing_changes() {
        let plan = events()
            .filter(col("ts").lt_eq(micros(20)))
            .expect("filter")
            .build()
            .expect("plan");
        let out = ElideTime::new(None)
            .rewrite(plan, &OptimizerContext::new())
            .expect("rewrite");
        assert!(!out.transformed);
    }

    /// The day, week and month keys the planner writes stand for `ts`, zoned
    /// or not, and a span answers each with one key only within one period.
    #[test]
    fn period_keys_are_uses_of_ts_a_span_answers() {
        let day = 86_400_000_000i128 * 1_000;
        for zone in [None, Some("UTC".into())] {
            let ts_type = DataType::Timestamp(TimeUnit::Microsecond, zone);
            let days = crate::plan::day_key(col("events.ts"), &ts_type);
            let keys = vec![
                days.clone().alias("d"),
                week_key(days.clone()).alias("w"),
                month_key(days).alias("m"),
            ];
            let plan = events()
                .project(keys)
                .expect("project")
                .build()
                .expect("plan");
            let (bounds, periods) = uses_of_ts(&plan, &ts_type).expect("keys are uses of ts");
            assert!(bounds.is_empty());
            assert_eq!(periods.len(), 3, "{ts_type}");
            let uses = Uses::of(&plan, &ts_type).expect("uses").expect("some");
            // 2026-11-02 (a Monday), 01:00 to 23:00: one day, week and month.
            let monday = 20_759 * day;
            let hour = day / 24;
            let span = FileSpan::Known(monday + hour, monday + 23 * hour);
            let (_, keys) = uses.answers(span).expect("one key each");
            assert_eq!(keys.len(), 3);
            // Monday to Tuesday: the same week and month, two days.
            assert!(uses
                .answers(FileSpan::Known(monday, monday + day))
                .is_none());
        }
        // `ts` itself, or in other arithmetic, is not a key.
        let ts_type = DataType::Timestamp(TimeUnit::Microsecond, None);
        let plan = events()
            .project(vec![cast(col("ts"), DataType::Int64).alias("x")])
            .expect("project")
            .build()
            .expect("plan");
        assert!(uses_of_ts(&plan, &ts_type).is_none());
    }

    #[test]
    fn a_file_answers_a_bound_only_when_all_its_rows_agree() {
        // Rows from 10 to 20.
        assert_eq!(answer(Operator::Gt, 9, 10, 20), Some(true));
        assert_eq!(answer(Operator::Gt, 10, 10, 20), None);
        assert_eq!(answer(Operator::Gt, 20, 10, 20), Some(false));
        assert_eq!(answer(Operator::GtEq, 10, 10, 20), Some(true));
        assert_eq!(answer(Operator::GtEq, 20, 10, 20), None);
        assert_eq!(answer(Operator::GtEq, 21, 10, 20), Some(false));
        assert_eq!(answer(Operator::Lt, 21, 10, 20), Some(true));
        assert_eq!(answer(Operator::Lt, 20, 10, 20), None);
        assert_eq!(answer(Operator::Lt, 10, 10, 20), Some(false));
        assert_eq!(answer(Operator::LtEq, 20, 10, 20), Some(true));
        assert_eq!(answer(Operator::LtEq, 10, 10, 20), None);
        assert_eq!(answer(Operator::LtEq, 9, 10, 20), Some(false));
        assert_eq!(answer(Operator::Eq, 30, 10, 20), None);
    }
}
