//! `column = 'text'` over a dictionary-encoded column, by its keys.
//!
//! Arrow compares a dictionary array with a scalar by comparing the
//! dictionary's values and then gathering one bit per row by key; that
//! gather was a fifth of a 20-segment run (`event` and `channel` are
//! dictionary-encoded, and every condition tests both). [`DictionaryEq`]
//! finds the keys whose value is the text, once per batch, and compares the
//! keys with them: a comparison of integers. It answers exactly as the
//! comparison it replaces (NULL for a NULL key), and is that comparison
//! wherever the column turns out not to be a dictionary of strings, or its
//! dictionary holds a NULL.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray, Int32Array, RecordBatch};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::compute::kernels::boolean::or;
use datafusion::arrow::compute::kernels::cmp::eq;
use datafusion::arrow::datatypes::{DataType, Int32Type, Schema};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal};
use datafusion::physical_expr::PhysicalExpr;

use super::fast_expr::{Fast, FastPath};

/// See the module documentation: the fast way of a [`Fast`].
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DictionaryEq {
    column: usize,
    text: String,
}

/// `e` as a [`DictionaryEq`], when it is one (see the module documentation).
pub(super) fn fast(e: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<Arc<dyn PhysicalExpr>> {
    dictionary_eq(e, schema).map(|path| Fast::wrap(Arc::clone(e), path))
}

fn dictionary_eq(e: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<DictionaryEq> {
    let b = e.downcast_ref::<BinaryExpr>()?;
    if *b.op() != Operator::Eq {
        return None;
    }
    let column = b.left().downcast_ref::<Column>()?;
    let text = match b.right().downcast_ref::<Literal>()?.value() {
        ScalarValue::Dictionary(_, v) => match v.as_ref() {
            ScalarValue::Utf8(Some(t)) => t.clone(),
            _ => return None,
        },
        ScalarValue::Utf8(Some(t)) => t.clone(),
        _ => return None,
    };
    let field = schema.fields().get(column.index())?;
    if field.name() != column.name()
        || !matches!(field.data_type(), DataType::Dictionary(k, v)
            if **k == DataType::Int32 && **v == DataType::Utf8)
    {
        return None;
    }
    Some(DictionaryEq {
        column: column.index(),
        text,
    })
}

impl FastPath for DictionaryEq {
    /// The comparison by keys; `None` where the fast path does not apply.
    fn answer(&self, batch: &RecordBatch) -> Result<Option<BooleanArray>> {
        let Some(dictionary) = batch
            .columns()
            .get(self.column)
            .and_then(|c| c.as_dictionary_opt::<Int32Type>())
        else {
            return Ok(None);
        };
        let Some(values) = dictionary.values().as_string_opt::<i32>() else {
            return Ok(None);
        };
        if values.null_count() > 0 {
            return Ok(None);
        }
        let keys = dictionary.keys();
        let mut out: Option<BooleanArray> = None;
        for (k, v) in values.iter().enumerate() {
            if v != Some(self.text.as_str()) {
                continue;
            }
            let k = i32::try_from(k).map_err(|e| DataFusionError::External(Box::new(e)))?;
            let hit = eq(keys, &Int32Array::new_scalar(k))?;
            out = Some(match out {
                None => hit,
                Some(before) => or(&before, &hit)?,
            });
        }
        Ok(Some(out.unwrap_or_else(|| {
            BooleanArray::new(BooleanBuffer::new_unset(keys.len()), keys.nulls().cloned())
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::super::fast_expr::faster;
    use super::*;
    use datafusion::arrow::array::{DictionaryArray, StringArray};
    use datafusion::arrow::datatypes::Field;
    use datafusion::physical_expr::expressions::{col, lit, not};

    fn batch(values: StringArray) -> RecordBatch {
        let keys = Int32Array::from(vec![Some(0), Some(1), None, Some(2), Some(0)]);
        let dictionary = DictionaryArray::<Int32Type>::try_new(keys, Arc::new(values)).unwrap();
        let schema = Schema::new(vec![Field::new(
            "event",
            dictionary.data_type().clone(),
            true,
        )]);
        RecordBatch::try_new(Arc::new(schema), vec![Arc::new(dictionary)]).unwrap()
    }

    fn eval(e: &Arc<dyn PhysicalExpr>, b: &RecordBatch) -> Vec<Option<bool>> {
        let a = e.evaluate(b).unwrap().into_array(b.num_rows()).unwrap();
        a.as_boolean().iter().collect()
    }

    #[test]
    fn answers_as_arrow_does_nulls_included() {
        // 'click' twice in the dictionary; then a dictionary with a NULL.
        for values in [
            StringArray::from(vec![Some("click"), Some("open"), Some("click")]),
            StringArray::from(vec![Some("click"), None, Some("open")]),
        ] {
            let b = batch(values);
            let event = col("event", &b.schema()).unwrap();
            for text in ["click", "open", "absent"] {
                let literal = ScalarValue::Dictionary(
                    Box::new(DataType::Int32),
                    Box::new(ScalarValue::Utf8(Some(text.into()))),
                );
                let test: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
                    Arc::clone(&event),
                    Operator::Eq,
                    lit(literal),
                ));
                // Under NOT, where a NULL differs from false.
                let negated = not(Arc::clone(&test)).unwrap();
                let fast = faster(&negated, &b.schema()).expect("rewritten");
                assert!(fast.to_string().contains(text), "{fast}");
                assert_eq!(eval(&fast, &b), eval(&negated, &b), "{text}");
            }
        }
    }

    #[test]
    fn leaves_other_comparisons_alone() {
        let b = batch(StringArray::from(vec!["a", "b", "c"]));
        let event = col("event", &b.schema()).unwrap();
        let other: Arc<dyn PhysicalExpr> =
            Arc::new(BinaryExpr::new(event, Operator::NotEq, lit("a")));
        assert!(faster(&other, &b.schema()).is_none());
        let plain = Schema::new(vec![Field::new("event", DataType::Utf8, true)]);
        let event = col("event", &plain).unwrap();
        let on_strings: Arc<dyn PhysicalExpr> =
            Arc::new(BinaryExpr::new(event, Operator::Eq, lit("a")));
        assert!(faster(&on_strings, &plain).is_none());
    }
}
