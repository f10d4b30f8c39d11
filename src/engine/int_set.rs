//! Tests of an `Int64` column against a set of integers in a short range,
//! by a bit per integer of the range.
//!
//! A scope of campaigns is `campaign_id IN (1010, 1019, …)`: DataFusion
//! compares every row with every id of a short list (eight ids: a tenth of
//! a `not_happened … in campaigns` segment's run on DuckDB's files), and a
//! universe of dense profile ids is `profile_id >= 1 AND profile_id <= N`,
//! two passes and a third to AND them. [`IntSet`] answers either as one pass
//! that subtracts the range's start and tests one bit (or only the range).
//! It answers exactly as the expression it replaces (NULL for a NULL row),
//! and is that expression wherever the column turns out not to be `Int64`
//! ([`Fast`]).

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::buffer::{BooleanBuffer, Buffer};
use datafusion::arrow::datatypes::{DataType, Int64Type, Schema};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, InListExpr, Literal};
use datafusion::physical_expr::PhysicalExpr;

use super::fast_expr::{Fast, FastPath};

/// The widest range an IN list is tested over by bits: 8 KiB of them.
const MOST_BITS: u64 = 1 << 16;

/// See the module documentation: the fast way of a [`Fast`].
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct IntSet {
    column: usize,
    /// The range's start, and its last value less its start.
    lo: i64,
    span: u64,
    /// Bit `v - lo` is set for each `v` of the set; `None`: every value of
    /// the range is in it.
    bits: Option<Vec<u64>>,
}

/// `e` as an [`IntSet`], when it is one (see the module documentation).
pub(super) fn fast(e: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<Arc<dyn PhysicalExpr>> {
    in_list(e, schema).map(|path| Fast::wrap(Arc::clone(e), path))
}

/// `lower AND upper`, two bounds of the same `Int64` column of `schema`
/// (`>=` or `>`, and `<=` or `<`, with integers), as one [`IntSet`] of the
/// range; `None` when they are not.
pub fn range(
    lower: &Arc<dyn PhysicalExpr>,
    upper: &Arc<dyn PhysicalExpr>,
    schema: &Schema,
) -> Option<Arc<dyn PhysicalExpr>> {
    let (a, lo) = bound(lower, schema)?;
    let (b, hi) = bound(upper, schema)?;
    let lo = match lo {
        Bound::Lower(lo) => lo,
        Bound::Upper(_) => return None,
    };
    let hi = match hi {
        Bound::Upper(hi) => hi,
        Bound::Lower(_) => return None,
    };
    if a != b || hi < lo {
        return None;
    }
    let replaced: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
        Arc::clone(lower),
        Operator::And,
        Arc::clone(upper),
    ));
    Some(Fast::wrap(
        replaced,
        IntSet {
            column: a,
            lo,
            span: hi.abs_diff(lo),
            bits: None,
        },
    ))
}

enum Bound {
    /// The least value kept.
    Lower(i64),
    /// The greatest value kept.
    Upper(i64),
}

/// `column op integer` over an `Int64` column: the column's index and the
/// bound.
fn bound(e: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<(usize, Bound)> {
    let (left, op, v) = with_integer(e)?;
    let column = int64_column(left, schema)?;
    Some((
        column,
        match op {
            Operator::GtEq => Bound::Lower(v),
            Operator::Gt => Bound::Lower(v.checked_add(1)?),
            Operator::LtEq => Bound::Upper(v),
            Operator::Lt => Bound::Upper(v.checked_sub(1)?),
            _ => return None,
        },
    ))
}

/// `left op integer`, when `e` is that (an `Int64` literal on the right).
pub(super) fn with_integer(
    e: &Arc<dyn PhysicalExpr>,
) -> Option<(&Arc<dyn PhysicalExpr>, Operator, i64)> {
    let b = e.downcast_ref::<BinaryExpr>()?;
    match b.right().downcast_ref::<Literal>()?.value() {
        ScalarValue::Int64(Some(v)) => Some((b.left(), *b.op(), *v)),
        _ => None,
    }
}

/// The index of `e`, a column of `schema` typed `Int64`.
pub(super) fn int64_column(e: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<usize> {
    let column = e.downcast_ref::<Column>()?;
    let field = schema.fields().get(column.index())?;
    (field.name() == column.name() && *field.data_type() == DataType::Int64)
        .then_some(column.index())
}

fn in_list(e: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<IntSet> {
    let list = e.downcast_ref::<InListExpr>()?;
    if list.negated() {
        return None;
    }
    let column = int64_column(list.expr(), schema)?;
    // A NULL in the list makes a miss NULL, not false: left to DataFusion.
    let values: Vec<i64> = list
        .list()
        .iter()
        .map(|v| match v.downcast_ref::<Literal>()?.value() {
            ScalarValue::Int64(Some(v)) => Some(*v),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let lo = *values.iter().min()?;
    let hi = *values.iter().max()?;
    let span = hi.abs_diff(lo);
    if span >= MOST_BITS {
        return None;
    }
    let mut bits = vec![0u64; (span / 64 + 1) as usize];
    for v in values {
        let d = v.abs_diff(lo);
        bits[(d / 64) as usize] |= 1 << (d % 64);
    }
    Some(IntSet {
        column,
        lo,
        span,
        bits: Some(bits),
    })
}

impl FastPath for IntSet {
    /// The test by bits; `None` where the column is not `Int64`.
    fn answer(&self, batch: &RecordBatch) -> Result<Option<BooleanArray>> {
        let (lo, span) = (self.lo, self.span);
        Ok(match &self.bits {
            // Without a branch on the range: a row outside it reads the
            // last bit, and is not kept whatever that bit says.
            Some(bits) => test_column(batch, self.column, |v| {
                let d = v.wrapping_sub(lo) as u64;
                let at = d.min(span);
                (d <= span) & ((bits[(at / 64) as usize] >> (at % 64)) & 1 == 1)
            }),
            None => test_column(batch, self.column, |v| v.wrapping_sub(lo) as u64 <= span),
        })
    }
}

/// `test` of each value of the batch's `Int64` column `column` (NULL where
/// the value is); `None` when that column is not `Int64`.
pub(super) fn test_column(
    batch: &RecordBatch,
    column: usize,
    test: impl Fn(i64) -> bool,
) -> Option<BooleanArray> {
    let array = batch
        .columns()
        .get(column)
        .and_then(|c| c.as_primitive_opt::<Int64Type>())?;
    let buffer = pack(array.values(), test);
    Some(BooleanArray::new(buffer, array.nulls().cloned()))
}

/// `test` of every value, a bit each. (Arrow's `collect_bool` hands its
/// closure an index: reading the value by it checks a bound per row, and
/// `&&` branches on data; together the bits cost two and a half times as
/// much.)
fn pack(values: &[i64], test: impl Fn(i64) -> bool) -> BooleanBuffer {
    let word = |values: &[i64]| {
        values
            .iter()
            .enumerate()
            .fold(0u64, |w, (bit, &v)| w | (u64::from(test(v)) << bit))
    };
    let chunks = values.chunks_exact(64);
    let rest = chunks.remainder();
    let mut words: Vec<u64> = chunks.map(word).collect();
    if !rest.is_empty() {
        words.push(word(rest));
    }
    BooleanBuffer::new(Buffer::from_vec(words), 0, values.len())
}

#[cfg(test)]
mod tests {
    use super::super::fast_expr::faster;
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::Field;
    use datafusion::physical_expr::expressions::{binary, col, in_list, lit, not};

    fn batch() -> RecordBatch {
        let ids = Int64Array::from(vec![
            Some(1010),
            Some(1011),
            None,
            Some(1075),
            Some(i64::MIN),
            Some(i64::MAX),
            Some(1009),
            Some(1010 + 64),
            Some(-3),
            Some(0),
        ]);
        let schema = Schema::new(vec![Field::new("id", DataType::Int64, true)]);
        RecordBatch::try_new(Arc::new(schema), vec![Arc::new(ids)]).unwrap()
    }

    fn eval(e: &Arc<dyn PhysicalExpr>, b: &RecordBatch) -> Vec<Option<bool>> {
        let a = e.evaluate(b).unwrap().into_array(b.num_rows()).unwrap();
        a.as_boolean().iter().collect()
    }

    #[test]
    fn an_in_list_answers_as_datafusion_does_nulls_included() {
        let b = batch();
        let schema = b.schema();
        let id = col("id", &schema).unwrap();
        for list in [
            vec![1010i64, 1019, 1075, 1074],
            vec![-3, 0, 5],
            vec![7],
            vec![i64::MAX - 2, i64::MAX],
        ] {
            let literals = list.iter().map(|&v| lit(v)).collect();
            let test = in_list(Arc::clone(&id), literals, &false, &schema).unwrap();
            // Under NOT, where a NULL differs from false.
            let negated = not(Arc::clone(&test)).unwrap();
            let fast = faster(&negated, &schema).expect("rewritten");
            assert_eq!(fast.to_string(), negated.to_string());
            assert_eq!(eval(&fast, &b), eval(&negated, &b), "{list:?}");
        }
    }

    #[test]
    fn wide_negated_or_null_lists_are_left_alone() {
        let b = batch();
        let schema = b.schema();
        let id = col("id", &schema).unwrap();
        let wide = in_list(
            Arc::clone(&id),
            vec![lit(0i64), lit(1i64 << 20)],
            &false,
            &schema,
        );
        assert!(faster(&wide.unwrap(), &schema).is_none());
        let negated = in_list(Arc::clone(&id), vec![lit(1i64)], &true, &schema);
        assert!(faster(&negated.unwrap(), &schema).is_none());
        let null = lit(ScalarValue::Int64(None));
        let with_null = in_list(Arc::clone(&id), vec![lit(1i64), null], &false, &schema);
        assert!(faster(&with_null.unwrap(), &schema).is_none());
    }

    #[test]
    fn a_range_answers_as_its_two_bounds() {
        let b = batch();
        let schema = b.schema();
        let id = col("id", &schema).unwrap();
        let cmp = |op, v: i64| binary(Arc::clone(&id), op, lit(v), &schema).unwrap();
        for (lower, upper) in [
            (cmp(Operator::GtEq, 1010), cmp(Operator::LtEq, 1075)),
            (cmp(Operator::Gt, -4), cmp(Operator::Lt, 1)),
            (cmp(Operator::GtEq, i64::MIN), cmp(Operator::LtEq, i64::MAX)),
            (cmp(Operator::GtEq, 5), cmp(Operator::LtEq, 5)),
        ] {
            let both = binary(
                Arc::clone(&lower),
                Operator::And,
                Arc::clone(&upper),
                &schema,
            );
            let plain = not(both.unwrap()).unwrap();
            let fused = not(range(&lower, &upper, &schema).expect("a range")).unwrap();
            assert_eq!(fused.to_string(), plain.to_string());
            assert_eq!(eval(&fused, &b), eval(&plain, &b), "{plain}");
        }
        // Not a range: two lower bounds, an empty range, another operator.
        let (lo, hi) = (cmp(Operator::GtEq, 1), cmp(Operator::LtEq, 0));
        assert!(range(&lo, &lo, &schema).is_none());
        assert!(range(&lo, &hi, &schema).is_none());
        assert!(range(&cmp(Operator::Eq, 1), &cmp(Operator::LtEq, 3), &schema).is_none());
    }
}
