//! A physical optimizer rule: partial aggregation over no more partitions
//! than the session's target.
//!
//! A union's partitions are its inputs' partitions added up, and DataFusion
//! runs one partial aggregate per input partition. When `time_rules::SplitByTime` reads
//! the events as a union of three scans of two partitions each, a hash
//! aggregation (profile ids that are not a range) would keep six partial hash
//! tables, each with most of the profiles, where one scan kept two. This rule
//! puts a round-robin repartition to the target between such an input and
//! its partial aggregate. `DenseCountExec` (which counts into one array
//! whatever its partitions) has already replaced the aggregates it can when
//! this rule runs.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{
    replace_children_if_necessary, ExecutionPlan, ExecutionPlanProperties, Partitioning,
};

/// See the module documentation.
#[derive(Debug, Default)]
pub struct UnionPartitions;

impl PhysicalOptimizerRule for UnionPartitions {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let target = config.execution.target_partitions.max(1);
        plan.transform_up(|node| {
            let Some(aggregate) = node.downcast_ref::<AggregateExec>() else {
                return Ok(Transformed::no(node));
            };
            let input = aggregate.input();
            if *aggregate.mode() != AggregateMode::Partial
                || input.output_partitioning().partition_count() <= target
                || node.required_input_ordering().iter().any(Option::is_some)
            {
                return Ok(Transformed::no(node));
            }
            let fewer =
                RepartitionExec::try_new(Arc::clone(input), Partitioning::RoundRobinBatch(target))?;
            let node = replace_children_if_necessary(node, vec![Arc::new(fewer)])?;
            Ok(Transformed::yes(node))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "UnionPartitions"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
