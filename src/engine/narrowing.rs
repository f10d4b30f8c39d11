//! A filter's conjuncts evaluated in turn, each on the rows the ones before
//! it kept.
//!
//! DataFusion evaluates `a AND b` over the rows `a` kept, when they are
//! under a fifth of the batch, by filtering the batch down to them and
//! scattering `b`'s answers back to the batch's length, a slice of `b`'s
//! answers per run of kept rows. Nested to the right (`a AND (b AND c)`) a
//! chain does so once per batch; even so the scatter and its slices were a
//! tenth of a `not_happened … in campaigns` segment's run on DuckDB's
//! files. [`Narrowing`] keeps the row numbers instead: once the rows kept are
//! few, the later conjuncts see only those rows, and the row numbers still
//! kept become the answer's bits at the end, one per row.
//!
//! It is a filter's whole predicate, not an expression to nest: a row is
//! kept (true) when every conjunct is true of it, and otherwise false, where
//! the `AND` it replaces may answer NULL (a filter drops both alike). It
//! stands in for that `AND` as a [`Fast`] does.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::buffer::{BooleanBuffer, Buffer};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::common::{internal_err, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::utils::split_conjunction;
use datafusion::physical_expr::PhysicalExpr;

use super::fast_expr::{Fast, FastPath};

/// Past this share of a batch's rows kept, the later conjuncts are
/// evaluated on the whole batch (DataFusion's own threshold).
const NARROW_BELOW: usize = 5;

/// See the module documentation: the fast way of a [`Fast`].
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Narrowing {
    conjuncts: Vec<Arc<dyn PhysicalExpr>>,
}

impl Narrowing {
    /// `predicate`'s conjuncts evaluated in turn, standing for it; `None`
    /// when it has fewer than two.
    pub fn wrap(predicate: &Arc<dyn PhysicalExpr>) -> Option<Arc<dyn PhysicalExpr>> {
        let conjuncts: Vec<_> = split_conjunction(predicate)
            .into_iter()
            .map(Arc::clone)
            .collect();
        (conjuncts.len() >= 2).then(|| Fast::wrap(Arc::clone(predicate), Narrowing { conjuncts }))
    }
}

/// The rows `answer` holds true of (a NULL is not).
fn truths(answer: &BooleanArray) -> BooleanBuffer {
    match answer.nulls() {
        Some(nulls) => answer.values() & nulls.inner(),
        None => answer.values().clone(),
    }
}

/// `len` bits, those of `rows` set.
fn bits(rows: &[u32], len: usize) -> BooleanBuffer {
    let mut words = vec![0u64; len.div_ceil(64)];
    for &r in rows {
        words[r as usize / 64] |= 1 << (r % 64);
    }
    BooleanBuffer::new(Buffer::from_vec(words), 0, len)
}

fn answer(kept: BooleanBuffer) -> Result<Option<BooleanArray>> {
    Ok(Some(BooleanArray::new(kept, None)))
}

impl FastPath for Narrowing {
    fn answer(&self, batch: &RecordBatch) -> Result<Option<BooleanArray>> {
        let len = batch.num_rows();
        let none = || answer(BooleanBuffer::new_unset(len));
        // The rows kept so far, as bits over the batch; or, once they are
        // few, as row numbers with the batch filtered down to them.
        let mut kept: Option<BooleanBuffer> = None;
        let mut narrowed: Option<(RecordBatch, Vec<u32>)> = None;
        let last = self.conjuncts.len() - 1;
        for (i, conjunct) in self.conjuncts.iter().enumerate() {
            let on = narrowed.as_ref().map_or(batch, |(b, _)| b);
            let holds = match conjunct.evaluate(on)? {
                ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))) => continue,
                ColumnarValue::Scalar(ScalarValue::Boolean(_)) => return none(),
                ColumnarValue::Scalar(other) => {
                    return internal_err!("a filter's conjunct answered {other:?}")
                }
                ColumnarValue::Array(a) => match a.as_boolean_opt() {
                    Some(a) => truths(a),
                    None => return internal_err!("a filter's conjunct answered {}", a.data_type()),
                },
            };
            match narrowed.as_mut() {
                Some((rows_batch, rows)) => {
                    let mut at = 0;
                    rows.retain(|_| {
                        at += 1;
                        holds.value(at - 1)
                    });
                    if rows.is_empty() {
                        return none();
                    }
                    if i < last {
                        let filter = BooleanArray::new(holds, None);
                        *rows_batch = filter_record_batch(rows_batch, &filter)?;
                    }
                }
                None => {
                    let now = match kept.take() {
                        Some(before) => &before & &holds,
                        None => holds,
                    };
                    let count = now.count_set_bits();
                    if count == 0 {
                        return none();
                    }
                    if i < last && count * NARROW_BELOW <= len {
                        let rows = now.set_indices().map(|r| r as u32).collect();
                        let filter = BooleanArray::new(now, None);
                        narrowed = Some((filter_record_batch(batch, &filter)?, rows));
                    } else {
                        kept = Some(now);
                    }
                }
            }
        }
        answer(match narrowed {
            Some((_, rows)) => bits(&rows, len),
            None => kept.unwrap_or_else(|| BooleanBuffer::new_set(len)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::logical_expr::Operator;
    use datafusion::physical_expr::expressions::{binary, col, lit};
    use datafusion::physical_expr::utils::conjunction;

    #[test]
    fn keeps_the_rows_the_conjunction_holds_true_of() {
        // a: 0..1000 with every 7th NULL; b: i % 10; c: i % 3.
        let a = Int64Array::from_iter((0..1000i64).map(|i| (i % 7 != 0).then_some(i)));
        let b = Int64Array::from_iter_values((0..1000i64).map(|i| i % 10));
        let c = Int64Array::from_iter_values((0..1000i64).map(|i| i % 3));
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Int64, false),
            Field::new("c", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(a), Arc::new(b), Arc::new(c)],
        )
        .unwrap();
        let test = |name: &str, op, v: i64| {
            binary(col(name, &schema).unwrap(), op, lit(v), &schema).unwrap()
        };
        let cases: Vec<Vec<Arc<dyn PhysicalExpr>>> = vec![
            // Selective first (a tenth of the rows): narrowed after it.
            vec![
                test("b", Operator::Eq, 3),
                test("a", Operator::Gt, 100),
                test("c", Operator::Eq, 1),
            ],
            // Not selective, then selective: narrowed after the second.
            vec![
                test("a", Operator::Gt, 100),
                test("b", Operator::Lt, 1),
                test("c", Operator::NotEq, 2),
            ],
            // Never selective.
            vec![test("a", Operator::Gt, 10), test("b", Operator::Gt, 0)],
            // A constant true, and nothing kept.
            vec![
                lit(true),
                test("b", Operator::Eq, 3),
                test("a", Operator::Lt, 0),
            ],
            // A constant false.
            vec![test("b", Operator::Eq, 3), lit(false)],
        ];
        for conjuncts in cases {
            let plain = conjunction(conjuncts.iter().map(Arc::clone));
            let expected = plain.evaluate(&batch).unwrap().into_array(1000).unwrap();
            let expected = BooleanArray::new(truths(expected.as_boolean()), None);
            let narrowing = Narrowing::wrap(&plain).unwrap();
            assert_eq!(narrowing.to_string(), plain.to_string());
            let got = narrowing
                .evaluate(&batch)
                .unwrap()
                .into_array(1000)
                .unwrap();
            assert_eq!(got.as_boolean(), &expected, "{plain}");
        }
    }
}
