//! `sample N%`'s test of a profile id (`crate::sample`) in one pass.
//!
//! The plan writes the sample's hash as integer arithmetic every engine
//! computes alike: four remainders, a sum, a product and a comparison, seven
//! arrays per batch, each remainder a division by a divisor Arrow learns at
//! run time. [`SampleTest`] computes [`crate::sample::bucket`] per row instead,
//! whose divisors are constants the compiler turns into multiplications. It
//! answers exactly as the expression it replaces (NULL for a NULL id), and
//! is that expression wherever the column turns out not to be `Int64`
//! ([`Fast`]).

use std::sync::Arc;

use datafusion::arrow::array::{BooleanArray, RecordBatch};
use datafusion::arrow::datatypes::Schema;
use datafusion::error::Result;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::PhysicalExpr;

use super::fast_expr::{Fast, FastPath};
use super::int_set::{int64_column, test_column, with_integer};
use crate::sample::{BUCKETS, K, P};

/// See the module documentation: the fast way of a [`Fast`].
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SampleTest {
    column: usize,
    seed: i64,
    /// The buckets below this are in the sample.
    below: i64,
}

/// `e` as a [`SampleTest`], when it is one (see the module documentation).
pub(super) fn fast(e: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<Arc<dyn PhysicalExpr>> {
    sample_test(e, schema).map(|path| Fast::wrap(Arc::clone(e), path))
}

/// `left op literal`: `left` and the literal, when `e` is that.
fn operands(e: &Arc<dyn PhysicalExpr>, op: Operator) -> Option<(&Arc<dyn PhysicalExpr>, i64)> {
    with_integer(e).and_then(|(left, o, v)| (o == op).then_some((left, v)))
}

/// `(((((id % P + P) % P + seed) % P) * K % P) % BUCKETS) < below`, as
/// `plan::sample_test` writes it.
fn sample_test(e: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<SampleTest> {
    let (bucket, below) = operands(e, Operator::Lt)?;
    let (h, buckets) = operands(bucket, Operator::Modulo)?;
    let (product, p1) = operands(h, Operator::Modulo)?;
    let (shifted, k) = operands(product, Operator::Multiply)?;
    let (seeded, p2) = operands(shifted, Operator::Modulo)?;
    let (x, seed) = operands(seeded, Operator::Plus)?;
    let (positive, p3) = operands(x, Operator::Modulo)?;
    let (rem, p4) = operands(positive, Operator::Plus)?;
    let (id, p5) = operands(rem, Operator::Modulo)?;
    if buckets != BUCKETS || k != K || [p1, p2, p3, p4, p5] != [P; 5] || !(0..P).contains(&seed) {
        return None;
    }
    Some(SampleTest {
        column: int64_column(id, schema)?,
        seed,
        below,
    })
}

impl FastPath for SampleTest {
    fn answer(&self, batch: &RecordBatch) -> Result<Option<BooleanArray>> {
        Ok(test_column(batch, self.column, |v| {
            crate::sample::bucket(v, self.seed) < self.below
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::fast_expr::faster;
    use super::*;
    use datafusion::arrow::array::{AsArray, Int64Array};
    use datafusion::arrow::datatypes::{DataType, Field};
    use datafusion::common::DFSchema;
    use datafusion::execution::context::ExecutionProps;
    use datafusion::logical_expr::col;
    use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
    use datafusion::physical_expr::create_physical_expr;
    use datafusion::physical_expr::expressions::not;

    use crate::check::Sample;

    #[test]
    fn answers_as_the_plans_arithmetic_does_nulls_included() {
        let ids: Vec<Option<i64>> = [
            None,
            Some(i64::MIN),
            Some(i64::MAX),
            Some(-1),
            Some(0),
            Some(P),
        ]
        .into_iter()
        .chain((-500..500i64).map(|i| Some(i * i * i + 31 * i)))
        .collect();
        let schema = Schema::new(vec![Field::new("profile_id", DataType::Int64, true)]);
        let batch = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![Arc::new(Int64Array::from(ids))],
        )
        .unwrap();
        let df_schema = DFSchema::try_from(schema.clone()).unwrap();
        let context = PhysicalPlanningContext::default();
        let eval = |e: &Arc<dyn PhysicalExpr>| -> Vec<Option<bool>> {
            let a = e
                .evaluate(&batch)
                .unwrap()
                .into_array(batch.num_rows())
                .unwrap();
            a.as_boolean().iter().collect()
        };
        for (basis_points, seed) in [(5_000, 0), (100, 7), (9_000, P - 1), (250, 12_345)] {
            let logical =
                crate::plan::sample_test(col("profile_id"), Sample { basis_points, seed });
            let plain =
                create_physical_expr(&logical, &df_schema, &ExecutionProps::new(), &context)
                    .unwrap();
            // Under NOT, where a NULL differs from false.
            let plain = not(plain).unwrap();
            let fast = faster(&plain, &schema).expect("rewritten");
            assert_eq!(fast.to_string(), plain.to_string());
            let got = eval(&fast);
            assert_eq!(got, eval(&plain), "{basis_points} {seed}");
            // Not all one answer: the test could fail.
            assert!(got.contains(&Some(true)) && got.contains(&Some(false)));
        }
        // Other arithmetic is left alone.
        let other = create_physical_expr(
            &((col("profile_id") % datafusion::logical_expr::lit(10i64))
                .lt(datafusion::logical_expr::lit(5i64))),
            &df_schema,
            &ExecutionProps::new(),
            &context,
        )
        .unwrap();
        assert!(faster(&other, &schema).is_none());
    }
}
