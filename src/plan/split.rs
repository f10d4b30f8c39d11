//! Files whose time is decided: `ts` not read where every bound agrees.
//!
//! When every use of `ts` in a plan is a comparison with a literal (a window
//! bound, `ts <= as_of`), a file whose earliest and latest `ts` lie on the same
//! side of every such bound answers each comparison the same way for all of
//! its rows. Any one instant of the file then stands for all of them: the plan
//! reads the file without `ts` and gives every row that instant, a constant.
//! Files are grouped by how they answer the bounds; the scan of events becomes
//! a union of one scan per group (the undecided files read `ts` as before),
//! and DataFusion's optimizer folds the constant comparisons away in the
//! pre-filter. With a 30-day window over three months of daily files, only the
//! file that straddles the window's start reads `ts`.
//!
//! `ts` takes up more of a Parquet file than any other column the plans read
//! (8 bytes of high-entropy values per event), so decoding it is a large part
//! of a windowed segment's scan.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{
    col, lit, BinaryExpr, Expr, LogicalPlan, LogicalPlanBuilder, Operator, TableSource,
};

use super::window::unit_nanos;
use super::{ts_scalar, PlanEnv};
use crate::data::{DataError, FileSpan};

/// The events table file by file, for plans that read some files without
/// `ts` (see the module documentation).
pub trait EventFiles: Send + Sync {
    /// Per file, what its footer says of `ts`.
    fn spans(&self) -> &[FileSpan];
    /// The events table of the given files (indexes into [`EventFiles::spans`]).
    fn table(&self, files: &[usize]) -> Result<Arc<dyn TableSource>, DataError>;
}

/// `plan` with each scan of events split by how its files answer the plan's
/// time bounds; `plan` itself when no file is decided or `ts` has another use.
pub(super) fn by_time(env: &PlanEnv<'_>, plan: LogicalPlan) -> Result<LogicalPlan, DataError> {
    let Some(files) = env.event_files else {
        return Ok(plan);
    };
    if env.sql.is_some() {
        return Ok(plan);
    }
    let Some(bounds) = bounds(&plan) else {
        return Ok(plan);
    };
    let spans = files.spans();
    // Files by their answers to the bounds; `None`: some bound is undecided.
    let mut groups: BTreeMap<Option<Vec<bool>>, Vec<usize>> = BTreeMap::new();
    for (i, span) in spans.iter().enumerate() {
        let answers = span.known().and_then(|(lo, hi)| {
            bounds
                .iter()
                .map(|&(op, n)| answer(op, n, lo, hi))
                .collect::<Option<Vec<bool>>>()
        });
        groups.entry(answers).or_default().push(i);
    }
    if !groups.keys().any(Option::is_some) {
        return Ok(plan);
    }
    let unit = unit_nanos(&env.ts_type);
    let mut view: Option<LogicalPlanBuilder> = None;
    for (answers, members) in &groups {
        let scan = LogicalPlanBuilder::scan("events", files.table(members)?, None)?;
        let branch = match answers {
            None => scan.build()?,
            Some(_) => {
                // The first file's earliest instant stands for the group.
                let Some((lo, _)) = spans[members[0]].known() else {
                    return Ok(plan);
                };
                let Ok(value) = i64::try_from(lo / unit) else {
                    return Ok(plan);
                };
                let constant = lit(ts_scalar(&env.ts_type, value));
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
        return Ok(plan);
    };
    let view = view.alias("events")?.build()?;
    let split = plan.transform_up(|node| match node {
        LogicalPlan::TableScan(scan) if scan.table_name.table() == "events" => {
            Ok(Transformed::yes(view.clone()))
        }
        other => Ok(Transformed::no(other)),
    })?;
    Ok(split.data)
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
/// in nanoseconds); `None` when `ts` is used any other way (dated, or in the
/// output), so no constant may stand for it.
fn bounds(plan: &LogicalPlan) -> Option<Vec<(Operator, i128)>> {
    let mut found = Vec::new();
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
            uses(e, &mut found, &mut other);
            Ok(TreeNodeRecursion::Continue)
        });
        Ok(if other {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    let output_has_ts = plan.schema().fields().iter().any(|f| f.name() == "ts");
    (!other && !output_has_ts && !found.is_empty()).then_some(found)
}

fn uses(e: &Expr, found: &mut Vec<(Operator, i128)>, other: &mut bool) {
    let _ = e.apply(|x| {
        if let Expr::BinaryExpr(BinaryExpr { left, op, right }) = x {
            if let (true, Expr::Literal(v, _)) = (is_ts(left), right.as_ref()) {
                if let (Some(n), true) = (nanos(v), is_comparison(*op)) {
                    found.push((*op, n));
                    return Ok(TreeNodeRecursion::Jump);
                }
            }
        }
        if is_ts(x) {
            *other = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
}

fn is_ts(e: &Expr) -> bool {
    matches!(e, Expr::Column(c) if c.name == "ts")
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
