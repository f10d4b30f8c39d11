//! Where the plan Seg runs and a plan written as SQL differ.
//!
//! The planner builds one plan for both; wherever they differ it asks the
//! [`Form`] of its [`PlanEnv`](super::PlanEnv). [`Executed`], here, is the
//! plan Seg's engine runs; `crate::sql::Portable` is a plan that the SQL
//! backend unparses for another engine. The SQL side implements this trait;
//! the planner does not know it.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::expr_fn::{count, max, min};
use datafusion::logical_expr::{lit, Expr, ExprFunctionExt, TableSource};

use super::col;
use super::period::{day_key, month_key, week_key};
use std::sync::Arc;

use crate::check::Seen;
use crate::data::DataError;
use crate::syntax::ast::Unit;

/// How a plan spells what engines do differently.
pub trait Form: Send + Sync {
    /// `events.ts` where the plan compares or dates it.
    fn ts(&self) -> Expr {
        col("ts")
    }

    /// The number of rows where `pred` holds.
    fn count_where(&self, pred: Expr) -> Result<Expr, DataError>;

    /// The earliest (`first_seen`) or latest `ts` of the rows where `pred`
    /// holds.
    fn extremum_where(&self, seen: Seen, pred: Expr) -> Result<Expr, DataError>;

    /// A key of `ts`'s UTC day, ISO week or calendar month (`unit` is one
    /// of those), equal for two instants exactly when they share it; `ts`
    /// is of type `ts_type`.
    fn period(&self, unit: Unit, ts_type: &DataType) -> Expr;

    /// `value LIKE pattern`, with `\` as the escape character.
    fn like(&self, value: Expr, pattern: &str) -> Expr;

    /// `later <= earlier + seconds`.
    fn within(&self, later: Expr, earlier: Expr, seconds: i64) -> Expr;

    /// For a plan written as SQL for another engine: its dimension tables.
    /// Such a plan looks a scope's names, tags and attributes up in them with
    /// joins (so that the SQL stays valid as those tables change), tests
    /// sequences with joins, and holds none of Seg's own functions or
    /// operators. `None` for the plan Seg runs, which resolves scopes to id
    /// lists first.
    fn portable(&self) -> Option<&SqlTables> {
        None
    }
}

/// The dimension tables of a plan written as SQL (see [`Form::portable`]);
/// `None` for a table the data does not have.
#[derive(Clone, Default)]
pub struct SqlTables {
    pub campaigns: Option<Arc<dyn TableSource>>,
    pub templates: Option<Arc<dyn TableSource>>,
    pub tags: Option<Arc<dyn TableSource>>,
    pub attributes: Option<Arc<dyn TableSource>>,
}

/// The plan Seg's engine runs: DataFusion's own functions, aggregates with
/// `FILTER`, and Seg's week and month keys.
#[derive(Debug, Clone, Copy, Default)]
pub struct Executed;

impl Form for Executed {
    fn count_where(&self, pred: Expr) -> Result<Expr, DataError> {
        Ok(count(lit(1)).filter(pred).build()?)
    }

    fn extremum_where(&self, seen: Seen, pred: Expr) -> Result<Expr, DataError> {
        let ts = self.ts();
        Ok(match seen {
            Seen::First => min(ts),
            Seen::Last => max(ts),
        }
        .filter(pred)
        .build()?)
    }

    fn period(&self, unit: Unit, ts_type: &DataType) -> Expr {
        let day = day_key(self.ts(), ts_type);
        match unit {
            Unit::Weeks => week_key(day),
            Unit::Months => month_key(day),
            _ => day,
        }
    }

    fn like(&self, value: Expr, pattern: &str) -> Expr {
        value.like(lit(pattern))
    }

    fn within(&self, later: Expr, earlier: Expr, seconds: i64) -> Expr {
        let days = i32::try_from(seconds.div_euclid(86_400)).unwrap_or(i32::MAX);
        let nanos = seconds.rem_euclid(86_400) * 1_000_000_000;
        later.lt_eq(earlier + lit(ScalarValue::new_interval_mdn(0, days, nanos)))
    }
}
