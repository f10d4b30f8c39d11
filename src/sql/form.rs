//! The form of a plan written as SQL ([`Portable`], Seg's planner's
//! [`Form`] for other engines) and the SQL-only functions it uses. They
//! stand in the plan where each dialect spells something its own way
//! (`super::Target` writes them); executing one is an error.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{plan_err, Result as DfResult};
use datafusion::functions_aggregate::expr_fn::{count, max, min};
use datafusion::logical_expr::{
    lit, when, ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use std::sync::Arc;

use crate::check::Seen;
use crate::data::DataError;
use crate::plan::{col, Form, SqlTables};
use crate::syntax::ast::Unit;

/// A plan written as SQL for another engine: conditional counts are
/// `count(CASE WHEN …)` (not every engine has `FILTER`); `ts`, UTC dates,
/// weeks, months, `within` and LIKE go through the SQL-only functions below;
/// scopes are looked up in the dimension tables (see [`Form::portable`]).
pub struct Portable {
    pub tables: SqlTables,
}

impl Form for Portable {
    fn ts(&self) -> Expr {
        call(SQL_TS, vec![col("ts")])
    }

    fn count_where(&self, pred: Expr) -> Result<Expr, DataError> {
        Ok(count(when(pred, lit(1i64)).end()?))
    }

    fn extremum_where(&self, seen: Seen, pred: Expr) -> Result<Expr, DataError> {
        let value = when(pred, self.ts()).end()?;
        Ok(match seen {
            Seen::First => min(value),
            Seen::Last => max(value),
        })
    }

    fn period(&self, unit: Unit, _ts_type: &DataType) -> Expr {
        let name = match unit {
            Unit::Weeks => SQL_UTC_WEEK,
            Unit::Months => SQL_UTC_MONTH,
            _ => SQL_UTC_DATE,
        };
        call(name, vec![self.ts()])
    }

    fn like(&self, value: Expr, pattern: &str) -> Expr {
        call(SQL_LIKE, vec![value, lit(pattern)])
    }

    fn within(&self, later: Expr, earlier: Expr, seconds: i64) -> Expr {
        call(SQL_WITHIN, vec![later, earlier, lit(seconds)])
    }

    fn portable(&self) -> Option<&SqlTables> {
        Some(&self.tables)
    }
}

/// The UTC date of a timestamp, in a plan for SQL emission.
pub const SQL_UTC_DATE: &str = "seg_utc_date";
/// A key of a timestamp's UTC week (Monday to Sunday), in a plan for SQL
/// emission.
pub const SQL_UTC_WEEK: &str = "seg_utc_week";
/// A key of a timestamp's UTC calendar month, in a plan for SQL emission.
pub const SQL_UTC_MONTH: &str = "seg_utc_month";
/// `seg_within(later, earlier, seconds)`: `later <= earlier + seconds`, in
/// a plan for SQL emission.
pub const SQL_WITHIN: &str = "seg_within";
/// `seg_like(value, pattern)`: SQL LIKE with `\` as the escape character.
pub const SQL_LIKE: &str = "seg_like";
/// `events.ts` where SQL compares or dates it: SQLite's text timestamps are
/// normalised there (`T` or space, `Z` or `+00:00`).
pub const SQL_TS: &str = "seg_ts";

/// The SQL-only functions of a plan for SQL emission. They only exist to be
/// unparsed: executing one is an error.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct SqlOnly {
    name: &'static str,
    signature: Signature,
}

impl SqlOnly {
    pub(crate) fn new(name: &'static str) -> Self {
        SqlOnly {
            name,
            signature: Signature::any(
                match name {
                    SQL_LIKE => 2,
                    SQL_WITHIN => 3,
                    _ => 1,
                },
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for SqlOnly {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        Ok(match self.name {
            SQL_LIKE | SQL_WITHIN => DataType::Boolean,
            SQL_UTC_WEEK | SQL_UTC_MONTH => DataType::Int64,
            SQL_TS => args.first().cloned().unwrap_or(DataType::Null),
            _ => DataType::Date32,
        })
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        plan_err!("{} only exists in plans for SQL emission", self.name)
    }
}

/// A call of one of the SQL-only functions.
pub(crate) fn call(name: &'static str, args: Vec<Expr>) -> Expr {
    Expr::ScalarFunction(datafusion::logical_expr::expr::ScalarFunction::new_udf(
        Arc::new(ScalarUDF::new_from_impl(SqlOnly::new(name))),
        args,
    ))
}

/// The UTC date of `ts` in a plan for SQL emission ([`SQL_UTC_DATE`]).
pub(crate) fn utc_date(ts: Expr) -> Expr {
    call(SQL_UTC_DATE, vec![ts])
}
