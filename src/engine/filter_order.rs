//! A physical optimizer rule: cheap, usually selective tests first in every
//! filter.
//!
//! DataFusion evaluates `a AND b` by evaluating `a` over the whole batch and
//! then `b` only over the rows `a` kept, when those are few. So the order of
//! a filter's conjuncts decides how many rows the expensive ones see. The
//! logical optimizer groups a filter's comparisons by column (alphabetically)
//! and puts everything else — IN lists included — first, so a scope of 50
//! campaigns was probed in a hash set for every row of the scan, before the
//! one-in-seventy `event = 'click'` test: 23 % of a tag-and-window segment's
//! time. This rule puts equalities with a literal first, then other
//! comparisons with a literal, then IN lists, then the rest (ORs, LIKE), each
//! group in its former order.
//!
//! Each filter's conjuncts are then evaluated in turn, each on the rows the
//! ones before kept ([`super::narrowing`]).
//!
//! It also makes each `column = 'text'` over a dictionary-encoded column, in
//! filters and projections, a comparison of keys ([`super::dictionary_eq`]),
//! each `column IN (integers)` in a short range and each pair of bounds of
//! one integer column a test of bits ([`int_set`]), and a sample's
//! arithmetic one pass ([`super::sample_test`]).

use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{BinaryExpr, CastExpr, Column, InListExpr, Literal};
use datafusion::physical_expr::utils::split_conjunction;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};

use super::fast_expr::{faster, Fast};
use super::int_set;
use super::narrowing::Narrowing;
use datafusion::physical_plan::ExecutionPlan;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct CheapFirst;

impl PhysicalOptimizerRule for CheapFirst {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if let Some(projection) = node.downcast_ref::<ProjectionExec>() {
                // `__common_expr_1 = event = 'click'`, and the like.
                let schema = projection.input().schema();
                let mut changed = false;
                let exprs: Vec<ProjectionExpr> = projection
                    .expr()
                    .iter()
                    .map(|p| match faster(&p.expr, &schema) {
                        Some(expr) => {
                            changed = true;
                            ProjectionExpr::new(expr, p.alias.clone())
                        }
                        None => p.clone(),
                    })
                    .collect();
                if !changed {
                    return Ok(Transformed::no(node));
                }
                let projection = ProjectionExec::try_new(exprs, Arc::clone(projection.input()))?;
                return Ok(Transformed::yes(
                    Arc::new(projection) as Arc<dyn ExecutionPlan>
                ));
            }
            let Some(filter) = node.downcast_ref::<FilterExec>() else {
                return Ok(Transformed::no(node));
            };
            let schema = filter.input().schema();
            let ordered = reordered(filter.predicate(), &schema);
            let fast = faster(ordered.as_ref().unwrap_or(filter.predicate()), &schema);
            let changed = fast.or(ordered);
            // Evaluated in turn, each on the rows the ones before kept (a
            // predicate already so is one conjunct, not wrapped again).
            let narrowed = Narrowing::wrap(changed.as_ref().unwrap_or(filter.predicate()));
            let Some(predicate) = narrowed.or(changed) else {
                return Ok(Transformed::no(node));
            };
            let filter = FilterExecBuilder::from(filter)
                .with_predicate(predicate)
                .build()?;
            Ok(Transformed::yes(Arc::new(filter) as Arc<dyn ExecutionPlan>))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "seg_cheap_first"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The predicate with its conjuncts in cost order and nested to the right
/// (`a AND (b AND c)`), when that changes it.
///
/// The filter evaluates the conjuncts in turn ([`Narrowing`]); this nesting
/// is for where the plain predicate runs instead (a [`Narrowing`] whose
/// children are replaced gives way to it). DataFusion evaluates `l AND r`
/// over the rows `l` kept, when those are under a fifth of the batch, by
/// filtering the batch down to them and scattering `r`'s result back to the
/// batch's length: nested to the left (`(a AND b) AND c`, as `conjunction`
/// builds it) at every level, nested to the right once.
///
/// Two bounds of one integer column (`profile_id >= 1 AND profile_id <= N`)
/// become one test of the range, where the first of them was.
fn reordered(predicate: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<Arc<dyn PhysicalExpr>> {
    let mut conjuncts: Vec<Arc<dyn PhysicalExpr>> =
        split_conjunction(predicate).into_iter().cloned().collect();
    let mut i = 0;
    while i < conjuncts.len() {
        let pair = (0..conjuncts.len()).find_map(|j| {
            let range = int_set::range(&conjuncts[i], &conjuncts[j], schema)?;
            Some((j, range))
        });
        match pair {
            // The upper bound came first: the range takes its place, and
            // the conjunct after the lower one comes to `i`.
            Some((j, range)) if j < i => {
                conjuncts[j] = range;
                conjuncts.remove(i);
            }
            Some((j, range)) => {
                conjuncts[i] = range;
                conjuncts.remove(j);
                i += 1;
            }
            None => i += 1,
        }
    }
    let ranks: Vec<u8> = conjuncts.iter().map(rank).collect();
    let mut order: Vec<usize> = (0..conjuncts.len()).collect();
    order.sort_by_key(|&i| ranks[i]);
    let nested = order
        .into_iter()
        .rev()
        .map(|i| Arc::clone(&conjuncts[i]))
        .reduce(|rest, c| Arc::new(BinaryExpr::new(c, Operator::And, rest)))?;
    (nested.as_ref() != predicate.as_ref()).then_some(nested)
}

/// 0: `column = literal`; 1: another comparison with a literal, or a range
/// of an integer column; 2: an IN list; 3: anything else.
fn rank(e: &Arc<dyn PhysicalExpr>) -> u8 {
    if e.downcast_ref::<Fast<int_set::IntSet>>().is_some() {
        return 1;
    }
    if let Some(b) = e.downcast_ref::<BinaryExpr>() {
        let simple = (is_column(b.left()) && is_literal(b.right()))
            || (is_literal(b.left()) && is_column(b.right()));
        return match b.op() {
            Operator::Eq if simple => 0,
            Operator::NotEq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq
                if simple =>
            {
                1
            }
            _ => 3,
        };
    }
    if let Some(list) = e.downcast_ref::<InListExpr>() {
        if is_column(list.expr()) {
            return 2;
        }
    }
    3
}

fn is_column(e: &Arc<dyn PhysicalExpr>) -> bool {
    e.downcast_ref::<Column>().is_some()
        || e.downcast_ref::<CastExpr>()
            .is_some_and(|c| c.expr().downcast_ref::<Column>().is_some())
}

fn is_literal(e: &Arc<dyn PhysicalExpr>) -> bool {
    e.downcast_ref::<Literal>().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::common::ScalarValue;
    use datafusion::physical_expr::expressions::{binary, col, in_list, lit};
    use datafusion::physical_expr::utils::conjunction;

    #[test]
    fn cheap_conjuncts_come_first_in_their_former_order() {
        let schema = Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Int64, true),
        ]);
        let a = col("a", &schema).unwrap();
        let b = col("b", &schema).unwrap();
        let list = in_list(
            Arc::clone(&a),
            vec![lit(1i64), lit(2i64), lit(3i64)],
            &false,
            &schema,
        )
        .unwrap();
        let cmp = |l: &Arc<dyn PhysicalExpr>, op, v: i64| {
            binary(Arc::clone(l), op, lit(ScalarValue::Int64(Some(v))), &schema).unwrap()
        };
        let either = binary(
            cmp(&a, Operator::Eq, 1),
            Operator::Or,
            cmp(&b, Operator::Eq, 2),
            &schema,
        )
        .unwrap();
        let predicate = conjunction([
            Arc::clone(&either),
            Arc::clone(&list),
            cmp(&b, Operator::Gt, 5),
            cmp(&a, Operator::Eq, 7),
            cmp(&b, Operator::Eq, 8),
        ]);
        let got = reordered(&predicate, &schema).expect("out of order");
        let order: Vec<String> = split_conjunction(&got)
            .into_iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            order,
            [
                "a@0 = 7",
                "b@1 = 8",
                "b@1 > 5",
                "a@0 IN (SET) ([1, 2, 3])",
                "a@0 = 1 OR b@1 = 2"
            ]
        );
        // Nested to the right: every AND's left side is a single test.
        let mut node = &got;
        let mut depth = 0;
        while let Some(and) = node
            .downcast_ref::<BinaryExpr>()
            .filter(|b| *b.op() == Operator::And)
        {
            assert!(split_conjunction(and.left()).len() == 1, "{got}");
            node = and.right();
            depth += 1;
        }
        assert_eq!(depth, 4);
        // Already in order and nested so: left alone.
        assert!(reordered(&got, &schema).is_none());
        // Two bounds of `a` become one test of the range, where the first
        // was, ranked as a comparison.
        let bounded = conjunction([
            Arc::clone(&either),
            cmp(&a, Operator::GtEq, 1),
            cmp(&b, Operator::Eq, 8),
            cmp(&a, Operator::Lt, 10),
        ]);
        let got = reordered(&bounded, &schema).expect("fused");
        let conjuncts = split_conjunction(&got);
        assert_eq!(conjuncts.len(), 3);
        assert!(conjuncts[1]
            .downcast_ref::<Fast<int_set::IntSet>>()
            .is_some());
        assert_eq!(
            got.to_string(),
            "b@1 = 8 AND a@0 >= 1 AND a@0 < 10 AND (a@0 = 1 OR b@1 = 2)"
        );
        // In order but nested to the left: nested again.
        let left = conjunction(split_conjunction(&got).into_iter().map(Arc::clone));
        assert!(reordered(&left, &schema).is_some());
    }
}
