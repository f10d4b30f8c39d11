//! A physical optimizer rule: no sort of rows that already come in order.
//!
//! A segment's ids come out sorted, and `DenseCountExec` already emits its
//! keys in that order. But DataFusion spreads the filter above it over the
//! session's partitions with a round-robin repartition, and then merges the
//! partitions again into one sorted stream (sorting each first where the
//! repartition loses their order): for `not click.* exists` on a million
//! profiles, 15 % of the run went to merging 900 000 ids that were in order
//! before the repartition. This rule takes such a repartition out from
//! under a merge or sort whose order the rows below it already have, and
//! the merge and sort with it. Filtering one partition of counted profiles
//! costs far less than merging them.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::{
    replace_children_if_necessary, ExecutionPlan, ExecutionPlanProperties, Partitioning,
};

/// See the module documentation.
#[derive(Debug, Default)]
pub struct KeptOrder;

impl PhysicalOptimizerRule for KeptOrder {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_down(|node| {
            // A merge of sorted partitions (sorted above the repartition or,
            // where it keeps each partition's order, below it), or one sort.
            let (expr, fetch, below) = match node.downcast_ref::<SortPreservingMergeExec>() {
                Some(merge) => match merge.input().downcast_ref::<SortExec>() {
                    Some(sort) if sort.expr() == merge.expr() => {
                        (merge.expr(), sort.fetch().or(merge.fetch()), sort.input())
                    }
                    Some(_) => return Ok(Transformed::no(node)),
                    None => (merge.expr(), merge.fetch(), merge.input()),
                },
                None => match node.downcast_ref::<SortExec>() {
                    Some(sort) => (sort.expr(), sort.fetch(), sort.input()),
                    None => return Ok(Transformed::no(node)),
                },
            };
            // A limit is left to the sort (a top-k) or the merge.
            if fetch.is_some() {
                return Ok(Transformed::no(node));
            }
            let Some(serial) = serial(below)? else {
                return Ok(Transformed::no(node));
            };
            if serial.output_partitioning().partition_count() == 1
                && serial
                    .equivalence_properties()
                    .ordering_satisfy(expr.clone())?
            {
                Ok(Transformed::yes(serial))
            } else {
                Ok(Transformed::no(node))
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "KeptOrder"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `plan` without the repartition of one partition that spreads it (under
/// filters and projections, which keep the order of their rows), or `None`
/// when it has none.
fn serial(plan: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let one = |input: &Arc<dyn ExecutionPlan>| input.output_partitioning().partition_count() == 1;
    if let Some(spread) = plan.downcast_ref::<RepartitionExec>() {
        let round_robin = matches!(spread.partitioning(), Partitioning::RoundRobinBatch(_));
        return Ok((round_robin && one(spread.input())).then(|| Arc::clone(spread.input())));
    }
    if let Some(gather) = plan.downcast_ref::<CoalescePartitionsExec>() {
        return match gather.fetch() {
            None => serial(gather.input()),
            Some(_) => Ok(None),
        };
    }
    let keeps_order = plan.downcast_ref::<FilterExec>().is_some()
        || plan.downcast_ref::<ProjectionExec>().is_some();
    if !keeps_order {
        return Ok(None);
    }
    let [input] = plan.children()[..] else {
        return Ok(None);
    };
    match serial(input)? {
        Some(below) => Ok(Some(replace_children_if_necessary(
            Arc::clone(plan),
            vec![below],
        )?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::compute::SortOptions;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::physical_expr::expressions::{col, lit, BinaryExpr};
    use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
    use datafusion::physical_plan::{collect, displayable};
    use datafusion::prelude::SessionContext;

    /// One partition of `ids`, declared sorted when `sorted`; a filter
    /// spread over two partitions above it, then sorted and merged as
    /// DataFusion plans it.
    fn plan(ids: Vec<i64>, sorted: bool) -> Arc<dyn ExecutionPlan> {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
        let batch =
            RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(Int64Array::from(ids))])
                .unwrap();
        let order = PhysicalSortExpr::new(
            col("id", &schema).unwrap(),
            SortOptions {
                descending: false,
                nulls_first: false,
            },
        );
        let ordering = LexOrdering::new([order.clone()]).unwrap();
        let mut source =
            MemorySourceConfig::try_new(&[vec![batch]], Arc::clone(&schema), None).unwrap();
        if sorted {
            source = source
                .try_with_sort_information(vec![ordering.clone()])
                .unwrap();
        }
        let source = datafusion::datasource::source::DataSourceExec::from_data_source(source);
        let spread =
            Arc::new(RepartitionExec::try_new(source, Partitioning::RoundRobinBatch(2)).unwrap());
        let odd = Arc::new(BinaryExpr::new(
            col("id", &schema).unwrap(),
            datafusion::logical_expr::Operator::Gt,
            lit(2i64),
        ));
        let filter = Arc::new(FilterExec::try_new(odd, spread).unwrap());
        let sort =
            Arc::new(SortExec::new(ordering.clone(), filter).with_preserve_partitioning(true));
        Arc::new(SortPreservingMergeExec::new(ordering, sort))
    }

    fn shape(plan: &Arc<dyn ExecutionPlan>) -> String {
        displayable(plan.as_ref()).indent(false).to_string()
    }

    #[tokio::test]
    async fn a_sort_of_rows_in_order_goes_with_the_repartition_that_broke_it() {
        let optimized = KeptOrder
            .optimize(plan(vec![1, 2, 3, 5, 8, 13], true), &ConfigOptions::new())
            .unwrap();
        let text = shape(&optimized);
        assert!(text.starts_with("FilterExec"), "{text}");
        assert!(
            !text.contains("Sort") && !text.contains("Repartition"),
            "{text}"
        );
        let batches = collect(optimized, SessionContext::new().task_ctx())
            .await
            .unwrap();
        let ids: Vec<i64> = batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(ids, vec![3, 5, 8, 13]);
    }

    #[test]
    fn rows_not_known_in_order_are_still_sorted() {
        let before = plan(vec![8, 3, 13], false);
        let optimized = KeptOrder
            .optimize(Arc::clone(&before), &ConfigOptions::new())
            .unwrap();
        assert_eq!(shape(&optimized), shape(&before));
    }
}
