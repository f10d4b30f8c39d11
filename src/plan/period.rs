//! Keys of a timestamp's UTC week and month for `weeks` and `months`
//! (SPEC §10), as integer arithmetic on its UTC day number, so that Seg's
//! plans need no date functions. A key identifies its period; keys are not
//! the numbers SPEC §10 writes (they differ by a constant), which a count
//! of distinct keys does not see.

use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{cast, lit, Expr};

/// Days since 1970-01-01, UTC (floored for instants before it).
fn day(ts: Expr) -> Expr {
    cast(cast(ts, DataType::Date32), DataType::Int64)
}

/// Days are at least `-2³¹`; this many days shifted keeps every dividend
/// positive, so integer division floors.
const WEEK_SHIFT: i64 = 7 * 400_000_000;
/// 400-year eras shifted likewise (146 097 days each).
const ERA_SHIFT: i64 = 146_097 * 20_000;

/// `floor((day + 3) / 7)` plus a constant: weeks from Monday to Sunday.
pub(crate) fn week_key(ts: Expr) -> Expr {
    (day(ts) + lit(3 + WEEK_SHIFT)) / lit(7i64)
}

/// `12 · year + month` plus a constant, by the civil-from-days algorithm
/// (H. Hinnant) on a calendar whose years start on 1 March.
pub(crate) fn month_key(ts: Expr) -> Expr {
    // Days since 0000-03-01, shifted positive.
    let z = day(ts) + lit(719_468 + ERA_SHIFT);
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
