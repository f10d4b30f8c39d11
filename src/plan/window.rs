//! Window bounds as exact literals in the unit of the `ts` column.
//!
//! Timestamps compare exactly in their own unit (SPEC §6): for an integer `ts`,
//! `ts >= X` is `ts >= ceil(X)` and `ts <= X` is `ts <= floor(X)`, so a bound
//! with a finer fraction than the column never shifts an event across it.

use chrono::{DateTime, TimeDelta, Utc};
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{lit, Expr};

use super::{ts_scalar, PlanEnv};
use crate::check::At;
use crate::data::DataError;

/// Nanoseconds since the epoch.
pub(super) fn nanos(t: DateTime<Utc>) -> i128 {
    i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos())
}

pub(crate) fn unit_nanos(ts_type: &DataType) -> i128 {
    match ts_type {
        DataType::Timestamp(unit, _) => crate::data::unit_nanos(unit),
        _ => 1_000,
    }
}

/// An absolute instant for a window bound.
pub(super) fn resolve(env: &PlanEnv<'_>, at: At) -> Result<DateTime<Utc>, DataError> {
    match at {
        At::Time(t) => Ok(t),
        At::Ago(seconds) => TimeDelta::try_seconds(seconds)
            .and_then(|d| env.as_of.checked_sub_signed(d))
            .ok_or_else(|| {
                DataError::new(format!(
                    "instant out of range: {} before {}",
                    crate::format_duration(seconds),
                    env.as_of.to_rfc3339()
                ))
            }),
    }
}

fn literal(env: &PlanEnv<'_>, v: i128, t: DateTime<Utc>) -> Result<Expr, DataError> {
    let v = i64::try_from(v).map_err(|_| {
        DataError::new(format!(
            "instant out of range: {} cannot be represented in the events' ts column ({})",
            t.to_rfc3339(),
            env.ts_type
        ))
    })?;
    Ok(lit(ts_scalar(&env.ts_type, v)))
}

/// The smallest column value `>= t`.
pub(super) fn at_least(env: &PlanEnv<'_>, t: DateTime<Utc>) -> Result<Expr, DataError> {
    literal(env, div_ceil(nanos(t), unit_nanos(&env.ts_type)), t)
}

/// The largest column value `<= t`.
pub(super) fn at_most(env: &PlanEnv<'_>, t: DateTime<Utc>) -> Result<Expr, DataError> {
    literal(env, nanos(t).div_euclid(unit_nanos(&env.ts_type)), t)
}

/// `at_least` for a bound already in nanoseconds.
pub(super) fn literal_ceil(env: &PlanEnv<'_>, n: i128) -> Result<Expr, DataError> {
    let t = DateTime::from_timestamp_nanos(i64::try_from(n).unwrap_or(i64::MIN));
    literal(env, div_ceil(n, unit_nanos(&env.ts_type)), t)
}

/// A duration in seconds as a count of the `ts` column's unit.
pub(super) fn seconds_in_unit(env: &PlanEnv<'_>, seconds: i64) -> i64 {
    let units = i128::from(seconds) * 1_000_000_000 / unit_nanos(&env.ts_type);
    i64::try_from(units).unwrap_or(i64::MAX)
}

/// Ceiling division for any sign (`i128::div_ceil` is not stable for signed ints).
fn div_ceil(n: i128, d: i128) -> i128 {
    -((-n).div_euclid(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceil_and_floor_round_towards_the_inside_of_the_window() {
        assert_eq!(div_ceil(1500, 1000), 2);
        assert_eq!(div_ceil(-1500, 1000), -1);
        assert_eq!(div_ceil(2000, 1000), 2);
        assert_eq!((-1500i128).div_euclid(1000), -2);
    }
}
