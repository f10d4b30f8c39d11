//! Keys of a timestamp's UTC day, week and month for `days`, `weeks` and
//! `months` (SPEC §10), as integer arithmetic on its UTC day number, so that
//! Seg's plans need no date functions. A key identifies its period; keys are
//! not the numbers SPEC §10 writes (they differ by a constant), which a
//! count of distinct keys does not see.

use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{cast, lit, Expr};

/// Days since 1970-01-01, UTC (floored for instants before it), of `ts` of
/// type `ts_type`. A zoned `ts` is first read as a naive one of the same
/// unit, which keeps its values (both count from 1970-01-01 UTC): Arrow's
/// cast of a zoned timestamp to a date looks the zone's offset up for
/// every row, which on Spark's files (INT96, read as UTC) was a third of a
/// `weeks or months` segment's time.
pub(crate) fn day_key(ts: Expr, ts_type: &DataType) -> Expr {
    match ts_type {
        DataType::Timestamp(unit, Some(_)) => date_day(cast(ts, DataType::Timestamp(*unit, None))),
        _ => date_day(ts),
    }
}

/// The same days by a cast to `Date32`, whatever the zone: what SQL plans
/// hold, for whatever type the other engine's column has.
pub(crate) fn date_day(ts: Expr) -> Expr {
    cast(cast(ts, DataType::Date32), DataType::Int64)
}

/// Days are at least `-2³¹`; this many days shifted keeps every dividend
/// positive, so integer division floors.
const WEEK_SHIFT: i64 = 7 * 400_000_000;
/// 400-year eras shifted likewise (146 097 days each).
const ERA_SHIFT: i64 = 146_097 * 20_000;

/// `floor((day + 3) / 7)` plus a constant: weeks from Monday to Sunday.
/// `day` is a day number (see [`day_key`]).
pub(crate) fn week_key(day: Expr) -> Expr {
    (day + lit(3 + WEEK_SHIFT)) / lit(7i64)
}

/// `12 · year + month` plus a constant, by the civil-from-days algorithm
/// (H. Hinnant) on a calendar whose years start on 1 March.
/// `day` is a day number (see [`day_key`]).
pub(crate) fn month_key(day: Expr) -> Expr {
    // Days since 0000-03-01, shifted positive.
    let z = day + lit(719_468 + ERA_SHIFT);
    let era = z.clone() / lit(146_097i64);
    let doe = z - era.clone() * lit(146_097i64);
    let yoe = (doe.clone() - doe.clone() / lit(1_460i64) + doe.clone() / lit(36_524i64)
        - doe.clone() / lit(146_096i64))
        / lit(365i64);
    let doy =
        doe - (lit(365i64) * yoe.clone() + yoe.clone() / lit(4i64) - yoe.clone() / lit(100i64));
    let mp = (lit(5i64) * doy + lit(2i64)) / lit(153i64);
    // A March-based month `mp` of year `y` is calendar month `mp + 2` of
    // the 12-month sequence: (y + [mp ≥ 10])·12 + (mp + 2) mod 12.
    (yoe + era * lit(400i64)) * lit(12i64) + mp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same arithmetic in Rust, on a day number.
    fn week(day: i64) -> i64 {
        (day + 3 + WEEK_SHIFT) / 7
    }

    fn month(day: i64) -> i64 {
        let z = day + 719_468 + ERA_SHIFT;
        let era = z / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        (yoe + era * 400) * 12 + mp
    }

    fn days(date: &str) -> i64 {
        let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
        (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days()
    }

    /// `day_key` evaluated by DataFusion on `values` of a `ts` column of
    /// `ts_type`.
    fn evaluated_days(ts_type: &DataType, values: &[i64]) -> Vec<i64> {
        use datafusion::arrow::array::{AsArray, Int64Array, RecordBatch};
        use datafusion::arrow::compute::cast as cast_array;
        use datafusion::arrow::datatypes::{Field, Int64Type, Schema};
        use datafusion::common::DFSchema;
        use datafusion::execution::context::ExecutionProps;
        use datafusion::logical_expr::col;
        use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
        use datafusion::physical_expr::create_physical_expr;
        use std::sync::Arc;

        let schema = Arc::new(Schema::new(vec![Field::new("ts", ts_type.clone(), false)]));
        let ts = cast_array(&Int64Array::from(values.to_vec()), ts_type).unwrap();
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![ts]).unwrap();
        let expr = create_physical_expr(
            &day_key(col("ts"), ts_type),
            &DFSchema::try_from(schema.as_ref().clone()).unwrap(),
            &ExecutionProps::new(),
            &PhysicalPlanningContext::default(),
        )
        .unwrap();
        let days = expr
            .evaluate(&batch)
            .unwrap()
            .into_array(values.len())
            .unwrap();
        days.as_primitive::<Int64Type>().values().to_vec()
    }

    #[test]
    fn days_are_utc_days_floored_in_every_unit_zoned_or_not() {
        use datafusion::arrow::datatypes::TimeUnit;
        let day = 86_400i64;
        // Seconds since 1970: midnight, a second either side of it, the
        // last second of 1969, and instants long before and after.
        let seconds = [
            0,
            1,
            -1,
            day - 1,
            day,
            -day,
            -day - 1,
            20_000 * day + 5,
            -80_000 * day,
        ];
        for (unit, per_second) in [
            (TimeUnit::Second, 1i64),
            (TimeUnit::Millisecond, 1_000),
            (TimeUnit::Microsecond, 1_000_000),
            (TimeUnit::Nanosecond, 1_000_000_000),
        ] {
            for zone in [None, Some("UTC".into())] {
                let ts_type = DataType::Timestamp(unit, zone);
                let mut values: Vec<i64> = seconds.iter().map(|s| s * per_second).collect();
                // Half a second before 1970 (where the unit has halves).
                values.push(-per_second / 2);
                let expected: Vec<i64> = values
                    .iter()
                    .map(|v| v.div_euclid(day * per_second))
                    .collect();
                assert_eq!(evaluated_days(&ts_type, &values), expected, "{ts_type}");
            }
        }
        // The dates a cast gives agree (before 1970 too).
        let ts_type = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let values = [-1i64, 0, 1_793_491_200_000_000, -86_400_000_001];
        let cast: Vec<i64> = values
            .iter()
            .map(|v| {
                let t = chrono::DateTime::from_timestamp_micros(*v).unwrap();
                (t.date_naive() - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days()
            })
            .collect();
        assert_eq!(evaluated_days(&ts_type, &values), cast);
    }

    #[test]
    fn weeks_run_monday_to_sunday_before_and_after_1970() {
        // 1969-12-29 is a Monday; 1970-01-04 a Sunday.
        assert_eq!(week(days("1969-12-29")), week(days("1970-01-04")));
        assert_ne!(week(days("1969-12-28")), week(days("1969-12-29")));
        assert_ne!(week(days("1970-01-04")), week(days("1970-01-05")));
        assert_eq!(week(days("2026-11-30")), week(days("2026-12-06")));
        assert_eq!(week(days("2026-11-30")) - week(days("2026-11-29")), 1);
    }

    #[test]
    fn months_are_calendar_months_in_order() {
        let mut last = None;
        let start = days("1899-01-01");
        for d in start..start + 365 * 250 {
            let date = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Days::new(0);
            let date = if d >= 0 {
                date + chrono::Days::new(d as u64)
            } else {
                date - chrono::Days::new((-d) as u64)
            };
            use chrono::Datelike;
            let expected = i64::from(date.year()) * 12 + i64::from(date.month0());
            let key = month(d);
            if let Some((e0, k0)) = last {
                assert_eq!(key - k0, expected - e0, "{date}");
            }
            last = Some((expected, key));
        }
    }
}
