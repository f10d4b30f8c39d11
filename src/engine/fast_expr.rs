//! A faster way to answer a test, standing in for the expression it
//! replaces: [`Fast`] shows as that expression, has its type and children,
//! and runs it wherever the fast way does not apply to a batch. The fast
//! ways: [`super::dictionary_eq`], [`super::int_set`],
//! [`super::sample_test`] (all three chosen by [`faster`]), and a filter's
//! conjuncts in turn, [`super::narrowing`].

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{BooleanArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, FieldRef, Schema};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::PhysicalExpr;

/// A fast way to answer a test of a batch.
pub trait FastPath: fmt::Debug + PartialEq + Eq + Hash + Send + Sync + 'static {
    /// The answer, one per row, exactly as the replaced expression's (a
    /// filter's whole predicate may answer false for NULL, as the filter
    /// reads it: see [`super::narrowing`]); `None` where this way does not
    /// apply (a column of another type).
    fn answer(&self, batch: &RecordBatch) -> Result<Option<BooleanArray>>;
}

/// `expr` with each test that one of [`super::dictionary_eq`],
/// [`super::int_set`] and [`super::sample_test`] answers faster wrapped in
/// a [`Fast`]; `None` when there is none.
pub fn faster(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<Arc<dyn PhysicalExpr>> {
    let t = Arc::clone(expr)
        .transform_up(|e| {
            let fast = super::dictionary_eq::fast(&e, schema)
                .or_else(|| super::int_set::fast(&e, schema))
                .or_else(|| super::sample_test::fast(&e, schema));
            Ok(match fast {
                Some(fast) => Transformed::yes(fast),
                None => Transformed::no(e),
            })
        })
        .ok()?;
    t.transformed.then_some(t.data)
}

/// `path`, standing in for `replaced` (see the module documentation).
// PartialEq by hand: derived, it would move the `Arc<dyn PhysicalExpr>`.
#[derive(Debug, Eq)]
pub struct Fast<T> {
    replaced: Arc<dyn PhysicalExpr>,
    path: T,
}

impl<T: PartialEq> PartialEq for Fast<T> {
    fn eq(&self, other: &Self) -> bool {
        self.replaced.eq(&other.replaced) && self.path == other.path
    }
}

impl<T: Hash> Hash for Fast<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.replaced.hash(state);
        self.path.hash(state);
    }
}

impl<T: FastPath> Fast<T> {
    /// `path` standing in for `replaced`, as a physical expression.
    pub fn wrap(replaced: Arc<dyn PhysicalExpr>, path: T) -> Arc<dyn PhysicalExpr> {
        Arc::new(Fast { replaced, path })
    }
}

impl<T> fmt::Display for Fast<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.replaced.fmt(f)
    }
}

impl<T: FastPath> PhysicalExpr for Fast<T> {
    // All three, so that none goes through the default `return_field`,
    // which formats the expression (and `BinaryExpr` asks its children's
    // types at every batch).
    fn data_type(&self, input_schema: &Schema) -> Result<DataType> {
        self.replaced.data_type(input_schema)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.replaced.nullable(input_schema)
    }

    fn return_field(&self, input_schema: &Schema) -> Result<FieldRef> {
        self.replaced.return_field(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        match self.path.answer(batch)? {
            Some(b) => Ok(ColumnarValue::Array(Arc::new(b))),
            None => self.replaced.evaluate(batch),
        }
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        self.replaced.children()
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        // The new children may be other columns: the plain expression.
        Arc::clone(&self.replaced).with_new_children(children)
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.replaced.fmt_sql(f)
    }
}
