//! SPEC §6, rule by rule, on tiny Parquet fixtures: each test has profiles that
//! must match and profiles that must not.

use crate::common;

use common::*;
use datafusion::arrow::datatypes::TimeUnit;

const AS_OF: &str = "2026-03-01T00:00:00Z";

#[test]
fn exists_needs_one_event_of_the_type_in_the_channel() {
    let d = Data::new(&[
        ev("click.email", 1, "2026-01-01"),
        ev("click.sms", 2, "2026-01-01"),
        ev("opened.email", 3, "2026-01-01"),
    ]);
    assert_eq!(d.ids("click.email exists", AS_OF), vec![1]);
}

#[test]
fn not_exists_selects_the_universe_without_the_event_including_silent_profiles() {
    let d = Data::new(&[
        ev("click.email", 1, "2026-01-01"),
        ev("sent.email", 2, "2026-01-01"),
    ])
    .profiles(&[1, 2, 3]);
    assert_eq!(d.ids("click.email not_exists", AS_OF), vec![2, 3]);
}

#[test]
fn universe_without_profiles_is_every_profile_with_an_event_up_to_as_of() {
    let d = Data::new(&[
        ev("sent.email", 1, "2026-01-01"),
        ev("click.email", 2, "2026-01-01"),
        ev("sent.email", 3, "2026-04-01"),
    ]);
    // 3's only event is after as_of: it is not in the universe.
    assert_eq!(d.ids("click.email not_exists", AS_OF), vec![1]);
}

#[test]
fn events_after_as_of_do_not_exist() {
    let d = Data::new(&[
        ev("click.email", 1, "2026-02-28T23:59:59Z"),
        ev("click.email", 2, "2026-03-01T00:00:00Z"),
        ev("click.email", 3, "2026-03-01T00:00:01Z"),
    ]);
    assert_eq!(d.ids("click.email exists", AS_OF), vec![1, 2]);
}

#[test]
fn orphan_events_outside_the_profiles_table_never_count() {
    let d = Data::new(&[
        ev("click.email", 1, "2026-01-01"),
        ev("click.email", 9, "2026-01-01"),
    ])
    .profiles(&[1, 2, 2]);
    assert_eq!(d.ids("click.email exists", AS_OF), vec![1]);
    // Duplicate profile rows are one profile.
    assert_eq!(d.ids("not click.email exists", AS_OF), vec![2]);
}

/// A universe of consecutive ids, in any order, is a range test instead of
/// a join; every other universe (gaps, duplicates, NULLs) keeps the join.
/// Both must drop the same orphans.
#[test]
fn a_consecutive_universe_is_a_range_and_others_are_joined() {
    let events = [
        ev("click.email", 0, "2026-01-01"),
        ev("click.email", 1, "2026-01-01"),
        ev("click.email", 3, "2026-01-01"),
        ev("click.email", 4, "2026-01-01"),
        ev("click.email", 9, "2026-01-01"),
    ];
    for (profiles, range, expected) in [
        (vec![1, 2, 3, 4], Some((1, 4)), vec![1, 3, 4]),
        (vec![1, 3, 4], None, vec![1, 3, 4]),
        (vec![1, 2, 3, 3], None, vec![1, 3]),
        (vec![3, 1, 2, 4], Some((1, 4)), vec![1, 3, 4]),
        (vec![0, 1, 2, 3], Some((0, 3)), vec![0, 1, 3]),
    ] {
        let d = Data::new(&events).profiles(&profiles);
        let data = seglang::data::DataDir::open(d.path()).unwrap();
        assert_eq!(
            data.profiles_range().unwrap(),
            range,
            "profiles {profiles:?}"
        );
        assert_eq!(
            d.ids("click.email exists", AS_OF),
            expected,
            "profiles {profiles:?}"
        );
    }
}

/// Whether a profiles file is a range is read once per version of the
/// file, then kept in the cache directory (`SEG_CACHE_DIR`): a file
/// rewritten since is another version, checked again, and the answers
/// follow the file. `SEG_CACHE_DIR=off` keeps nothing.
#[test]
fn a_profiles_range_is_checked_once_per_version_of_the_file() {
    let events = [
        ev("click.email", 1, "2026-01-01"),
        ev("click.email", 3, "2026-01-01"),
        ev("click.email", 4, "2026-01-01"),
    ];
    let cache = tempfile::tempdir().unwrap();
    let entries = |dir: &std::path::Path| -> Vec<String> {
        let mut texts: Vec<String> = std::fs::read_dir(dir.join("profile-ranges"))
            .map(|d| {
                d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                    .collect()
            })
            .unwrap_or_default();
        texts.sort();
        texts
    };
    let run = |data: &Data, cache_dir: &std::path::Path| {
        let data = data.path().to_string_lossy().into_owned();
        let out = seg()
            .env("SEG_CACHE_DIR", cache_dir)
            .args(["run", "-e", "click.email exists", "--data", &data])
            .args(["--as-of", AS_OF, "--format", "csv"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().replace('\n', " ")
    };
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let age = |data: &Data, modified| {
        std::fs::File::options()
            .write(true)
            .open(data.path().join("profiles.parquet"))
            .unwrap()
            .set_modified(modified)
            .unwrap();
    };
    let d = Data::new(&events).profiles(&[1, 2, 3, 4]);
    age(&d, hour_ago);
    assert_eq!(run(&d, cache.path()), "profile_id 1 3 4 ");
    let kept = entries(cache.path());
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(
        kept[0].contains("profiles.parquet") && kept[0].ends_with("\n1 4\n"),
        "{kept:?}"
    );
    // The same version again: the same answer, nothing new kept.
    assert_eq!(run(&d, cache.path()), "profile_id 1 3 4 ");
    assert_eq!(entries(cache.path()), kept);
    // Rewritten with the same bounds and count but a repeat: not a
    // range, so profile 3 is not a profile.
    let d2 = Data::new(&events).profiles(&[1, 2, 2, 4]);
    std::fs::copy(
        d2.path().join("profiles.parquet"),
        d.path().join("profiles.parquet"),
    )
    .unwrap();
    age(&d, hour_ago + std::time::Duration::from_secs(1));
    assert_eq!(run(&d, cache.path()), "profile_id 1 4 ");
    let kept = entries(cache.path());
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept.iter().any(|k| k.ends_with("\nnone\n")), "{kept:?}");
    // Off: the same answer, nothing kept.
    let off = tempfile::tempdir().unwrap();
    let out = seg()
        .env("SEG_CACHE_DIR", "off")
        .env("XDG_CACHE_HOME", off.path())
        .env("HOME", off.path())
        .args([
            "run",
            "-e",
            "click.email exists",
            "--data",
            &d.path().to_string_lossy(),
        ])
        .args(["--as-of", AS_OF, "--format", "count"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2");
    assert_eq!(std::fs::read_dir(off.path()).unwrap().count(), 0);
}

#[test]
fn at_least_at_most_exactly_compare_the_count() {
    let mut rows = Vec::new();
    for (p, n) in [(1, 1), (2, 2), (3, 3)] {
        for _ in 0..n {
            rows.push(ev("click.email", p, "2026-01-01"));
        }
    }
    let d = Data::new(&rows).profiles(&[1, 2, 3, 4]);
    assert_eq!(d.ids("click.email at_least 2", AS_OF), vec![2, 3]);
    assert_eq!(d.ids("click.email at_most 2", AS_OF), vec![1, 2, 4]);
    assert_eq!(d.ids("click.email exactly 2", AS_OF), vec![2]);
    assert_eq!(d.ids("click.email exactly 0", AS_OF), vec![4]);
    assert_eq!(d.ids("click.email at_most 0", AS_OF), vec![4]);
}

#[test]
fn duplicate_event_rows_are_separate_events() {
    let d = Data::new(&[
        ev("click.email", 1, "2026-01-01"),
        ev("click.email", 1, "2026-01-01"),
    ]);
    assert_eq!(d.ids("click.email exactly 2", AS_OF), vec![1]);
}

#[test]
fn units_count_distinct_messages_campaigns_templates_and_days() {
    let d = Data::new(&[
        ev("click.email", 1, "2026-01-01T10:00:00Z")
            .msg(1)
            .camp(10)
            .tmpl(100),
        ev("click.email", 1, "2026-01-01T11:00:00Z")
            .msg(1)
            .camp(10)
            .tmpl(100),
        ev("click.email", 1, "2026-01-02T10:00:00Z")
            .msg(2)
            .camp(11)
            .tmpl(101),
        ev("click.email", 2, "2026-01-01T10:00:00Z")
            .msg(3)
            .camp(10)
            .tmpl(100),
        ev("click.email", 2, "2026-01-01T12:00:00Z")
            .msg(4)
            .camp(10)
            .tmpl(100),
        // Null ids are not counted as messages/campaigns/templates.
        ev("click.email", 3, "2026-01-05"),
        ev("click.email", 3, "2026-01-06"),
    ]);
    assert_eq!(d.ids("click.email at_least 2 messages", AS_OF), vec![1, 2]);
    assert_eq!(d.ids("click.email at_least 2 campaigns", AS_OF), vec![1]);
    assert_eq!(d.ids("click.email at_least 2 templates", AS_OF), vec![1]);
    assert_eq!(d.ids("click.email at_least 2 days", AS_OF), vec![1, 3]);
    assert_eq!(d.ids("click.email at_least 3 times", AS_OF), vec![1]);
}

/// Distinct counts beside other conditions: counted by a grouping by profile
/// and value, then by profile, when they all count the same thing (days
/// here, of clicks and of opens); DataFusion's distinct count otherwise
/// (campaigns and days).
#[test]
fn distinct_counts_beside_other_conditions() {
    let d = Data::new(&[
        ev("click.email", 1, "2026-01-01T10:00:00Z").camp(10),
        ev("click.email", 1, "2026-01-01T11:00:00Z").camp(10),
        ev("click.email", 1, "2026-01-02T10:00:00Z").camp(11),
        ev("opened.email", 1, "2026-01-03"),
        ev("click.email", 2, "2026-01-01T10:00:00Z").camp(10),
        ev("click.email", 2, "2026-01-01T11:00:00Z").camp(10),
        ev("click.email", 2, "2026-01-01T12:00:00Z").camp(10),
        ev("opened.email", 2, "2026-01-01"),
        ev("opened.email", 2, "2026-01-02"),
        ev("opened.email", 3, "2026-01-05"),
        ev("opened.email", 3, "2026-01-06"),
        ev("opened.email", 3, "2026-01-07"),
        // Clicks on two days without a campaign.
        ev("click.email", 4, "2026-01-01"),
        ev("click.email", 4, "2026-01-02"),
    ]);
    for (expr, want, twice) in [
        (
            "click.email at_least 2 days and click.email at_least 3",
            vec![1],
            true,
        ),
        (
            "click.email at_least 2 days and opened.email at_most 1 days",
            vec![1, 4],
            true,
        ),
        (
            "opened.email at_least 2 days or click.email at_least 3",
            vec![1, 2, 3],
            true,
        ),
        (
            "not click.email at_least 2 days and opened.email exists",
            vec![2, 3],
            true,
        ),
        (
            "click.email at_least 2 days last 60d and opened.email exists",
            vec![1],
            true,
        ),
        (
            "click.email at_least 2 campaigns or click.email at_least 2 days",
            vec![1, 4],
            false,
        ),
    ] {
        assert_eq!(d.ids(expr, AS_OF), want, "{expr}");
        let plan = d.optimized_plan(expr, AS_OF);
        assert_eq!(plan.contains(" AS d]]"), twice, "{expr}: {plan}");
        assert_eq!(plan.contains("count(DISTINCT"), !twice, "{expr}: {plan}");
    }
}

#[test]
fn days_are_utc_dates() {
    let d = Data::new(&[
        ev("click.email", 1, "2026-01-01T23:30:00+00:00"),
        ev("click.email", 1, "2026-01-02T00:30:00+00:00"),
        // The same UTC day, written with an offset.
        ev("click.email", 2, "2026-01-01T23:30:00+03:00"),
        ev("click.email", 2, "2026-01-01T10:00:00Z"),
    ]);
    assert_eq!(d.ids("click.email at_least 2 days", AS_OF), vec![1]);
}

#[test]
fn last_window_is_open_at_the_start_and_closed_at_as_of() {
    let d = Data::new(&[
        ev("click.email", 1, "2026-02-22T00:00:00Z"), // exactly as_of - 7d: excluded
        ev("click.email", 2, "2026-02-22T00:00:00.000001Z"),
        ev("click.email", 3, "2026-03-01T00:00:00Z"), // exactly as_of: included
    ]);
    assert_eq!(d.ids("click.email at_least 1 last 7d", AS_OF), vec![2, 3]);
}

#[test]
fn between_includes_the_start_and_excludes_the_end() {
    let d = Data::new(&[
        ev("click.email", 1, "2026-01-10T00:00:00Z"),
        ev("click.email", 2, "2026-01-20T00:00:00Z"),
        ev("click.email", 3, "2026-01-19T23:59:59Z"),
        ev("click.email", 4, "2026-01-09T23:59:59Z"),
    ]);
    assert_eq!(
        d.ids(
            "click.email at_least 1 between 2026-01-10 and 2026-01-20",
            AS_OF
        ),
        vec![1, 3]
    );
}

#[test]
fn since_and_before_bound_one_side() {
    let d = Data::new(&[
        ev("click.email", 1, "2026-01-10T00:00:00Z"),
        ev("click.email", 2, "2026-01-09T23:59:59Z"),
    ]);
    assert_eq!(
        d.ids("click.email at_least 1 since 2026-01-10", AS_OF),
        vec![1]
    );
    assert_eq!(
        d.ids("click.email at_least 1 before 2026-01-10", AS_OF),
        vec![2]
    );
    assert_eq!(
        d.ids(
            "click.email at_least 1 since 2026-01-10T03:00:00+03:00",
            AS_OF
        ),
        vec![1]
    );
}

#[test]
fn ago_instants_are_relative_to_as_of() {
    let d = Data::new(&[
        ev("click.email", 1, "2025-12-01T00:00:00Z"), // 90d before as_of: included
        ev("click.email", 2, "2026-01-30T00:00:00Z"), // 30d before as_of: excluded
        ev("click.email", 3, "2026-01-29T23:59:59Z"),
        ev("click.email", 4, "2025-11-30T23:59:59Z"),
    ]);
    assert_eq!(
        d.ids("click.email at_least 1 between 90d ago and 30d ago", AS_OF),
        vec![1, 3]
    );
}

#[test]
fn window_bounds_are_exact_in_every_timestamp_unit() {
    for unit in [
        TimeUnit::Second,
        TimeUnit::Millisecond,
        TimeUnit::Microsecond,
        TimeUnit::Nanosecond,
    ] {
        let enc = Encoding {
            dictionary: false,
            unit,
            zoned: false,
        };
        let d = Data::with_encoding(
            &[
                ev("click.email", 1, "2026-01-10T00:00:00Z"),
                ev("click.email", 2, "2026-01-09T23:59:59Z"),
            ],
            enc,
        );
        assert_eq!(
            d.ids("click.email at_least 1 since 2026-01-09T23:59:59.5Z", AS_OF),
            vec![1],
            "{unit:?}"
        );
        assert_eq!(
            d.ids(
                "click.email at_least 1 before 2026-01-09T23:59:59.5Z",
                AS_OF
            ),
            vec![2],
            "{unit:?}"
        );
    }
}

#[test]
fn time_bounds_every_event_meets_are_left_out_exactly_at_their_edges() {
    for unit in [
        TimeUnit::Second,
        TimeUnit::Millisecond,
        TimeUnit::Microsecond,
        TimeUnit::Nanosecond,
    ] {
        let enc = Encoding {
            dictionary: false,
            unit,
            zoned: false,
        };
        // The first event is exactly 30 days before as_of, the last at as_of.
        let d = Data::with_encoding(
            &[
                ev("click.email", 1, "2026-01-30T00:00:00Z"),
                ev("click.email", 2, "2026-02-10T00:00:00Z"),
                ev("click.email", 3, AS_OF),
            ],
            enc,
        );
        let span = seglang::data::DataDir::open(d.path())
            .expect("open")
            .ts_span();
        let first = i128::from(nanos("2026-01-30T00:00:00Z"));
        let last = i128::from(nanos(AS_OF));
        assert_eq!(span, Some((first, last)), "{unit:?}");
        let reads_ts = |script: &str, as_of: &str| {
            d.event_columns_read(script, as_of)
                .contains(&"ts".to_string())
        };

        // Every event is at or before as_of: `ts <= as_of` goes, and `ts`
        // is not read.
        assert_eq!(d.ids("click.email exists", AS_OF), vec![1, 2, 3]);
        assert!(!reads_ts("click.email exists", AS_OF), "{unit:?}");
        // One second earlier, the last event is after as_of.
        let earlier = "2026-02-28T23:59:59Z";
        assert_eq!(d.ids("click.email exists", earlier), vec![1, 2]);
        assert!(reads_ts("click.email exists", earlier), "{unit:?}");
        // `last 30d` is open at its start, which is the first event: the
        // bound stays and leaves it out.
        assert_eq!(d.ids("click.email at_least 1 last 30d", AS_OF), vec![2, 3]);
        assert!(reads_ts("click.email at_least 1 last 30d", AS_OF));
        // `since` is closed: every event meets it.
        let since = "click.email at_least 1 since 2026-01-30";
        assert_eq!(d.ids(since, AS_OF), vec![1, 2, 3]);
        assert!(!reads_ts(since, AS_OF), "{unit:?}");
        // `before` is open at its end: the last event does not meet it.
        let before = "click.email at_least 1 before 2026-03-01";
        assert_eq!(d.ids(before, AS_OF), vec![1, 2]);
        assert!(reads_ts(before, AS_OF), "{unit:?}");
        // … and one nanosecond later, every event does.
        let before = "click.email at_least 1 before 2026-03-01T00:00:00.000000001Z";
        assert_eq!(d.ids(before, AS_OF), vec![1, 2, 3]);
        assert!(!reads_ts(before, AS_OF), "{unit:?}");
        // Negation, over the same data with a profiles table.
        let d = d.profiles(&[1, 2, 3, 4]);
        assert_eq!(d.ids("not click.email exists", AS_OF), vec![4]);
        let read = d.event_columns_read("not click.email exists", AS_OF);
        assert!(!read.contains(&"ts".to_string()), "{unit:?}: {read:?}");
    }
}

#[test]
fn files_whose_time_is_decided_are_read_without_ts_and_answer_the_same() {
    // Sixty days of events up to as_of, in six files of ten days each (in
    // three units); the same events in one file of row groups of about five
    // days, where row groups split; and in one file of one row group, where
    // nothing splits.
    let mut rows = Vec::new();
    for day in 0..60i64 {
        for p in 1..=6i64 {
            if (day + p) % 3 == 0 {
                let at = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
                    .expect("time")
                    + chrono::TimeDelta::days(day)
                    + chrono::TimeDelta::hours(p);
                let at: &'static str = Box::leak(at.to_rfc3339().into_boxed_str());
                let what = if (day + p) % 2 == 0 {
                    "click.email"
                } else {
                    "opened.email"
                };
                rows.push(ev(what, p, at));
            }
        }
    }
    // Profile 7 clicked once, early.
    rows.push(ev("click.email", 7, "2026-01-06T12:00:00+00:00"));
    rows.sort_by_key(|r| r.ts);
    let split = Data::empty();
    let units = [
        TimeUnit::Second,
        TimeUnit::Millisecond,
        TimeUnit::Nanosecond,
    ];
    for (i, chunk) in rows.chunks(rows.len().div_ceil(6)).enumerate() {
        write_events(
            &split.path().join(format!("events/part-{i}.parquet")),
            chunk,
            Encoding {
                dictionary: i % 2 == 0,
                unit: units[i % 3],
                zoned: true,
            },
        );
    }
    let split = split.profiles(&[1, 2, 3, 4, 5, 6, 7]);
    let grouped = Data::empty();
    let props = datafusion::parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(rows.len().div_ceil(12)))
        .build();
    write_events_with(
        &grouped.path().join("events/all.parquet"),
        &rows,
        PLAIN_US,
        Some(props),
    );
    let grouped = grouped.profiles(&[1, 2, 3, 4, 5, 6, 7]);
    let one = Data::new(&rows).profiles(&[1, 2, 3, 4, 5, 6, 7]);
    let scripts = [
        "click.email at_least 2 last 14d",
        "click.email at_least 2 last 25d",
        "click.email at_least 1 between 2026-01-05 and 2026-01-25",
        "click.email at_least 1 since 2026-01-21T01:00:00Z",
        "click.email at_least 2 last 20d and not opened.email at_least 3 last 45d",
        "not click.email at_least 1 last 10d",
        "click.email at_least 3 days last 30d",
        "opened.email at_least 1 before 2026-01-11 or click.email at_least 4 last 7d",
        "click.email last_seen before 20d ago",
        "click.email last_seen last 25d",
        "opened.email first_seen last 45d",
        "opened.email first_seen between 2026-01-03 and 2026-01-20",
        "click.email last_seen before 2026-02-10 and not opened.email first_seen last 10d",
        "opened.email at_least 3 weeks",
        "opened.email at_least 2 weeks last 40d",
        "click.email at_least 2 months",
        "click.email at_least 2 months last 45d or opened.email at_most 4 days last 30d",
    ];
    for script in scripts {
        let expected = one.ids(script, AS_OF);
        assert_eq!(split.ids(script, AS_OF), expected, "{script}");
        assert_eq!(grouped.ids(script, AS_OF), expected, "{script}");
        let expected = one.ids(script, "2026-02-15");
        assert_eq!(split.ids(script, "2026-02-15"), expected, "{script}");
        assert_eq!(grouped.ids(script, "2026-02-15"), expected, "{script}");
    }
    // Neither the data nor the scripts are trivial.
    assert_eq!(
        one.ids("click.email last_seen before 20d ago", AS_OF),
        vec![7]
    );
    let first = "opened.email first_seen between 2026-01-03 and 2026-01-20";
    assert_eq!(one.ids(first, AS_OF), vec![1, 4, 5, 6]);
    // Row groups of one file split like files: the last seen before 20 days
    // ago reads `ts` only for the row group that straddles the bound.
    for data in [&split, &grouped] {
        let plan = data.optimized_plan("click.email last_seen before 20d ago", AS_OF);
        let scans: Vec<&str> = plan
            .lines()
            .filter(|l| l.contains("TableScan: events"))
            .collect();
        assert!(scans.len() >= 2, "{plan}");
        assert_eq!(
            scans.iter().filter(|l| l.contains(", ts")).count(),
            1,
            "{plan}"
        );
    }
    // A 25-day window: the files that straddle its start or as_of read
    // `ts` (one scan), the one between them reads no `ts`, and the older
    // ones drop out.
    let plan = split.optimized_plan("click.email at_least 2 last 25d", AS_OF);
    let scans: Vec<&str> = plan
        .lines()
        .filter(|l| l.contains("TableScan: events"))
        .collect();
    assert_eq!(scans.len(), 2, "{plan}");
    assert_eq!(
        scans.iter().filter(|l| l.contains(", ts")).count(),
        1,
        "{plan}"
    );
    // Weeks and months: a file or row group within one week or month is
    // read without `ts` (the ten-day files each lie in one month; some
    // five-day row groups in one week).
    for (data, script) in [
        (&split, "click.email at_least 2 months"),
        (&grouped, "opened.email at_least 3 weeks"),
    ] {
        let plan = data.optimized_plan(script, AS_OF);
        let scans: Vec<&str> = plan
            .lines()
            .filter(|l| l.contains("TableScan: events"))
            .collect();
        assert!(scans.iter().any(|l| !l.contains(", ts")), "{plan}");
        assert!(scans.iter().any(|l| l.contains(", ts")), "{plan}");
    }
    // Distinct days date `ts`: no file is read without it.
    let plan = split.optimized_plan("click.email at_least 3 days last 30d", AS_OF);
    assert!(plan
        .lines()
        .filter(|l| l.contains("TableScan: events"))
        .all(|l| l.contains(", ts")));
}

#[test]
fn a_null_ts_keeps_the_as_of_bound_so_the_event_never_counts() {
    use datafusion::arrow::array::{ArrayRef, TimestampMicrosecondArray};
    use std::sync::Arc;
    let d = Data::empty();
    let ts: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![
        Some(nanos("2026-01-10") / 1_000),
        None,
    ]));
    write_table(
        &d.path().join("events/a.parquet"),
        vec![
            ("profile_id", ints(&[1, 2])),
            ("channel", strs(&["email", "email"])),
            ("event", strs(&["click", "click"])),
            ("ts", ts),
        ],
    );
    let d = d.profiles(&[1, 2, 3]);
    let span = seglang::data::DataDir::open(d.path())
        .expect("open")
        .ts_span();
    assert_eq!(span, None);
    assert_eq!(d.ids("click.email exists", AS_OF), vec![1]);
    assert_eq!(d.ids("not click.email exists", AS_OF), vec![2, 3]);
}

#[test]
fn millisecond_and_microsecond_files_mix_in_one_events_folder() {
    let d = Data::empty();
    write_events(
        &d.path().join("events/a.parquet"),
        &[ev("click.email", 1, "2026-01-10T00:00:00.001Z")],
        Encoding {
            dictionary: true,
            unit: TimeUnit::Millisecond,
            zoned: true,
        },
    );
    write_events(
        &d.path().join("events/date=2026-01-11/b.parquet"),
        &[ev("click.email", 2, "2026-01-11T00:00:00.000001Z")],
        PLAIN_US,
    );
    // Hidden and underscore files are ignored.
    write_events(
        &d.path().join("events/_tmp.parquet"),
        &[ev("click.email", 3, "2026-01-11")],
        PLAIN_US,
    );
    write_events(
        &d.path().join("events/.x.parquet"),
        &[ev("click.email", 4, "2026-01-11")],
        PLAIN_US,
    );
    assert_eq!(d.ids("click.email exists", AS_OF), vec![1, 2]);
    assert_eq!(
        d.ids("click.email at_least 1 since 2026-01-11", AS_OF),
        vec![2]
    );
    // The span of `ts` over both files, each in its own unit.
    let span = seglang::data::DataDir::open(d.path())
        .expect("open")
        .ts_span();
    assert_eq!(
        span,
        Some((
            i128::from(nanos("2026-01-10T00:00:00.001Z")),
            i128::from(nanos("2026-01-11T00:00:00.000001Z"))
        ))
    );
}

#[test]
fn dictionary_and_plain_strings_give_the_same_answer() {
    let rows = [
        ev("click.email", 1, "2026-01-10").link("https://a/x"),
        ev("link_click.email", 2, "2026-01-10").link("https://a/x"),
        ev("link_click.email", 3, "2026-01-10").link("https://b/y"),
    ];
    for dictionary in [false, true] {
        let d = Data::with_encoding(
            &rows,
            Encoding {
                dictionary,
                unit: TimeUnit::Microsecond,
                zoned: true,
            },
        );
        assert_eq!(
            d.ids(
                "link_click.email at_least 1 link like \"https://a/%\"",
                AS_OF
            ),
            vec![2]
        );
    }
}

#[test]
fn star_counts_every_channel_where_the_event_exists() {
    let d = Data::new(&[
        ev("click.email", 1, "2026-01-10"),
        ev("click.viber", 1, "2026-01-11"),
        ev("click.sms", 2, "2026-01-10"),
        ev("opened.email", 3, "2026-01-10"),
    ]);
    assert_eq!(d.ids("click.* at_least 2", AS_OF), vec![1]);
    assert_eq!(d.ids("click.* exists", AS_OF), vec![1, 2]);
    assert_eq!(d.ids("click.* at_least 2 days", AS_OF), vec![1]);
}

fn scoped_data() -> Data {
    Data::new(&[
        ev("click.email", 1, "2026-01-10").camp(10).tmpl(100),
        ev("click.email", 2, "2026-01-10").camp(11).tmpl(101),
        ev("click.email", 3, "2026-01-10").camp(12).tmpl(102),
        ev("click.email", 4, "2026-01-10").camp(99),
        ev("click.email", 5, "2026-01-10"), // null campaign id
    ])
    .campaigns(&[
        (10, "Black Friday"),
        (11, "Cyber Monday"),
        (12, "Black Friday"),
    ])
    .templates(&[(100, "Promo A"), (101, "Promo B"), (102, "Digest")])
    .tags(&[
        ("campaign", 10, "Online store"),
        ("campaign", 11, "Online store"),
        ("campaign", 12, "Retail"),
        ("template", 102, "Online store"),
    ])
    .attributes(&[
        ("campaign", 10, "region", "EU"),
        ("campaign", 11, "region", "US"),
        ("campaign", 12, "region", "EU"),
        ("campaign", 10, "goal", "sales"),
        ("campaign", 12, "goal", "retention"),
        ("template", 100, "region", "US"),
    ])
}

#[test]
fn scope_by_id_selects_itself_even_when_unlisted() {
    let d = scoped_data();
    assert_eq!(
        d.ids("click.email at_least 1 in campaigns 11, 99", AS_OF),
        vec![2, 4]
    );
}

#[test]
fn scope_by_name_selects_every_object_with_the_name_exactly() {
    let d = scoped_data();
    assert_eq!(
        d.ids(
            "click.email at_least 1 in campaigns \"Black Friday\"",
            AS_OF
        ),
        vec![1, 3]
    );
    assert!(d
        .ids(
            "click.email at_least 1 in campaigns \"black friday\"",
            AS_OF
        )
        .is_empty());
    assert!(d
        .ids(
            "click.email at_least 1 in campaigns \"Black Friday \"",
            AS_OF
        )
        .is_empty());
}

#[test]
fn scope_by_tag_matches_any_tag_of_the_right_object_kind() {
    let d = scoped_data();
    assert_eq!(
        d.ids(
            "click.email at_least 1 in campaigns tagged \"Online store\"",
            AS_OF
        ),
        vec![1, 2]
    );
    assert_eq!(
        d.ids(
            "click.email at_least 1 in campaigns tagged \"Retail\", \"Online store\"",
            AS_OF
        ),
        vec![1, 2, 3]
    );
    assert_eq!(
        d.ids(
            "click.email at_least 1 in templates tagged \"Online store\"",
            AS_OF
        ),
        vec![3]
    );
    assert_eq!(
        d.ids(
            "click.email at_least 1 in messages tagged \"Online store\"",
            AS_OF
        ),
        vec![3]
    );
}

#[test]
fn scope_by_attribute_equal_not_equal_and_conjunction() {
    let d = scoped_data();
    assert_eq!(
        d.ids(
            "click.email at_least 1 in campaigns where region = \"EU\"",
            AS_OF
        ),
        vec![1, 3]
    );
    // != needs the attribute, with another value.
    assert_eq!(
        d.ids(
            "click.email at_least 1 in campaigns where goal != \"sales\"",
            AS_OF
        ),
        vec![3]
    );
    assert_eq!(
        d.ids(
            "click.email at_least 1 in campaigns where (region = \"EU\" and goal = \"sales\")",
            AS_OF
        ),
        vec![1]
    );
    assert_eq!(
        d.ids(
            "click.email at_least 1 in templates where region = \"US\"",
            AS_OF
        ),
        vec![1]
    );
}

#[test]
fn a_selection_that_matches_nothing_selects_nothing() {
    let d = scoped_data().profiles(&[1, 2, 3, 4, 5]);
    assert!(d
        .ids("click.email at_least 1 in campaigns tagged \"nope\"", AS_OF)
        .is_empty());
    // ...so not_happened in it holds for everyone.
    assert_eq!(
        d.ids(
            "click.email not_happened in campaigns tagged \"nope\"",
            AS_OF
        ),
        vec![1, 2, 3, 4, 5]
    );
}

#[test]
fn null_campaign_ids_are_never_in_a_scope() {
    let d = scoped_data().profiles(&[1, 2, 3, 4, 5]);
    let ids = d.ids(
        "click.email not_happened in campaigns 10, 11, 12, 99",
        AS_OF,
    );
    assert_eq!(ids, vec![5]);
}

#[test]
fn not_happened_over_several_objects_means_none_in_all_of_them() {
    let d = Data::new(&[
        ev("opened.email", 1, "2026-01-10").camp(10),
        ev("opened.email", 2, "2026-01-10").camp(11),
        ev("opened.email", 3, "2026-01-10").camp(12),
        ev("sent.email", 4, "2026-01-10").camp(10),
    ]);
    assert_eq!(
        d.ids("opened.email not_happened in campaigns 10, 11", AS_OF),
        vec![3, 4]
    );
}

#[test]
fn not_happened_after_requires_the_preceding_event() {
    let d = Data::new(&[
        // delivered, not opened: in
        ev("delivered.email", 1, "2026-01-10").camp(10),
        // delivered and opened: out
        ev("delivered.email", 2, "2026-01-10").camp(10),
        ev("opened.email", 2, "2026-01-11").camp(10),
        // never delivered: out
        ev("sent.email", 3, "2026-01-10").camp(10),
        // delivered in another campaign: out (same scope)
        ev("delivered.email", 4, "2026-01-10").camp(11),
        // delivered by sms: out (same channel)
        ev("delivered.sms", 5, "2026-01-10").camp(10),
        // opened before delivered: no order in time, still out
        ev("opened.email", 6, "2026-01-09").camp(10),
        ev("delivered.email", 6, "2026-01-10").camp(10),
    ]);
    assert_eq!(
        d.ids(
            "opened.email not_happened in campaigns 10 after delivered",
            AS_OF
        ),
        vec![1]
    );
}

#[test]
fn after_respects_the_window() {
    let d = Data::new(&[
        ev("delivered.email", 1, "2026-02-25"),
        ev("delivered.email", 2, "2025-12-01"),
    ]);
    assert_eq!(
        d.ids("opened.email not_happened last 30d after delivered", AS_OF),
        vec![1]
    );
}

#[test]
fn after_with_star_counts_the_preceding_event_over_the_conditions_channels() {
    let d = Data::new(&[
        ev("delivered.sms", 1, "2026-01-10"),
        ev("delivered.viber", 2, "2026-01-10"),
        ev("delivered.email", 3, "2026-01-10"),
        ev("opened.email", 3, "2026-01-10"),
    ]);
    // opened exists in email, sms, push: a viber delivery does not count.
    assert_eq!(
        d.ids("opened.* not_happened after delivered", AS_OF),
        vec![1]
    );
}

#[test]
fn link_exact_and_like_with_escapes() {
    let d = Data::new(&[
        ev("link_click.email", 1, "2026-01-10").link("https://shop/a_b"),
        ev("link_click.email", 2, "2026-01-10").link("https://shop/axb"),
        ev("link_click.email", 3, "2026-01-10").link("https://SHOP/a_b"),
        ev("unique_link_click.viber", 4, "2026-01-10").link("https://shop/100%"),
    ]);
    assert_eq!(
        d.ids(
            "link_click.email at_least 1 link \"https://shop/a_b\"",
            AS_OF
        ),
        vec![1]
    );
    assert_eq!(
        d.ids(
            "link_click.email at_least 1 link like \"https://shop/a_b\"",
            AS_OF
        ),
        vec![1, 2]
    );
    assert_eq!(
        d.ids(
            r#"link_click.email at_least 1 link like "https://shop/a\\_b""#,
            AS_OF
        ),
        vec![1]
    );
    assert_eq!(
        d.ids("link_click.email at_least 1 link like \"%shop%\"", AS_OF),
        vec![1, 2]
    );
    assert_eq!(
        d.ids(
            r#"unique_link_click.viber at_least 1 link like "%\\%""#,
            AS_OF
        ),
        vec![4]
    );
}

#[test]
fn unsubscribe_clicks_are_not_clicks() {
    let d = Data::new(&[
        ev("unsubscribe_click.email", 1, "2026-01-10"),
        ev("click.email", 2, "2026-01-10"),
    ]);
    assert_eq!(d.ids("click.email exists", AS_OF), vec![2]);
    assert_eq!(d.ids("unsubscribe_click.email exists", AS_OF), vec![1]);
}

#[test]
fn and_or_not_are_set_operations_over_the_universe() {
    let d = Data::new(&[
        ev("click.email", 1, "2026-01-10"),
        ev("opened.email", 1, "2026-01-10"),
        ev("click.email", 2, "2026-01-10"),
        ev("opened.email", 3, "2026-01-10"),
    ])
    .profiles(&[1, 2, 3, 4]);
    assert_eq!(
        d.ids("click.email exists and opened.email exists", AS_OF),
        vec![1]
    );
    assert_eq!(
        d.ids("click.email exists or opened.email exists", AS_OF),
        vec![1, 2, 3]
    );
    assert_eq!(d.ids("not click.email exists", AS_OF), vec![3, 4]);
    assert_eq!(
        d.ids("not click.email exists and not opened.email exists", AS_OF),
        vec![4]
    );
    assert_eq!(
        d.ids("not (click.email exists or opened.email exists)", AS_OF),
        vec![4]
    );
    // not binds tighter than and, and tighter than or.
    assert_eq!(
        d.ids(
            "opened.email exists or click.email exists and not opened.email exists",
            AS_OF
        ),
        vec![1, 2, 3]
    );
}

#[test]
fn references_resolve_before_or_after_their_definition() {
    let d = Data::new(&[
        ev("click.email", 1, "2026-01-10"),
        ev("unsubscribe_click.email", 1, "2026-01-11"),
        ev("click.email", 2, "2026-01-10"),
        ev("opened.email", 3, "2026-01-10"),
    ]);
    let script = "
        segment target = clickers and not unsub;
        segment clickers = click.email exists;
        segment unsub = unsubscribe_click.email exists or unsubscribed.telegram_bot exists;
        segment last_one = target or opened.email exists;
    ";
    assert_eq!(d.ids(script, AS_OF), vec![2, 3]);
}

#[test]
fn the_same_data_and_as_of_always_give_the_same_set() {
    let d = scoped_data();
    let a = d.ids("click.email at_least 1 last 90d", AS_OF);
    let b = d.ids("click.email at_least 1 last 90d", AS_OF);
    assert_eq!(a, b);
    assert_eq!(a, vec![1, 2, 3, 4, 5]);
}

#[test]
fn a_window_of_a_date_and_an_ago_that_inverts_at_as_of_is_a_run_error() {
    let d = Data::new(&[ev("click.email", 1, "2026-01-10")]);
    let engine = seglang::Engine::open(d.path()).unwrap();
    let compiled = seglang::compile("click.email at_least 1 between 2026-02-01 and 7d ago", None)
        .expect("checks clean");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let at = |t: &str| seglang::syntax::literal::parse_datetime(t).unwrap();
    // On 2026-03-01, 7d ago is 2026-02-22: a fine window.
    assert!(rt
        .block_on(engine.run(&compiled.program, 0, at("2026-03-01")))
        .is_ok());
    // On 2026-02-05, 7d ago is 2026-01-29: before the start.
    let err = rt
        .block_on(engine.run(&compiled.program, 0, at("2026-02-05")))
        .unwrap_err();
    assert!(
        err.message.contains("E019") && err.message.contains("inverted"),
        "{err}"
    );
}

#[test]
fn running_all_segments_in_one_scan_gives_each_segments_own_ids() {
    let dir = common::examples_dir();
    let engine = seglang::Engine::open(&dir.join("data")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let as_of = seglang::syntax::literal::parse_datetime("2026-11-01").unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "seg") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let program = seglang::compile(&text, Some(engine.objects()))
            .unwrap()
            .program;
        let all: Vec<usize> = (0..program.segments.len()).collect();
        let together = rt.block_on(engine.run_many(&program, &all, as_of)).unwrap();
        for (i, ids) in together.iter().enumerate() {
            let alone = rt.block_on(engine.run(&program, i, as_of)).unwrap();
            assert_eq!(ids, &alone, "{} segment {i}", path.display());
            checked += 1;
        }
    }
    assert!(checked > 40, "{checked}");
}

// ---- SPEC §10: sequences, then not, first/last seen, weeks/months, samples ----

#[test]
fn a_sequence_needs_its_steps_in_strictly_increasing_time() {
    let d = Data::new(&[
        // 1: opened, then clicked later.
        ev("opened.email", 1, "2026-02-01T10:00:00Z"),
        ev("click.email", 1, "2026-02-01T10:00:01Z"),
        // 2: at the same instant: not an order.
        ev("opened.email", 2, "2026-02-01T10:00:00Z"),
        ev("click.email", 2, "2026-02-01T10:00:00Z"),
        // 3: the wrong way round.
        ev("click.email", 3, "2026-02-01T10:00:00Z"),
        ev("opened.email", 3, "2026-02-01T11:00:00Z"),
        // 4: a repeated event needs two of them.
        ev("click.email", 4, "2026-02-01T10:00:00Z"),
        ev("click.email", 4, "2026-02-02T10:00:00Z"),
        // 5: the click is after as_of.
        ev("opened.email", 5, "2026-02-01T10:00:00Z"),
        ev("click.email", 5, "2026-03-01T00:00:01Z"),
    ]);
    assert_eq!(d.ids("opened.email then click.email", AS_OF), vec![1]);
    assert_eq!(d.ids("click.email then click.email", AS_OF), vec![4]);
    assert_eq!(d.ids("opened.email then click.* ", AS_OF), vec![1]);
}

#[test]
fn within_is_inclusive_to_the_unit_of_the_file() {
    for unit in [TimeUnit::Millisecond, TimeUnit::Microsecond] {
        let tick = if unit == TimeUnit::Millisecond {
            "001"
        } else {
            "000001"
        };
        let after = |s: &'static str| -> &'static str {
            Box::leak(format!("2026-02-01T11:00:00.{s}Z").into_boxed_str())
        };
        let events = [
            // 1: exactly one hour.
            ev("delivered.email", 1, "2026-02-01T10:00:00Z"),
            ev("opened.email", 1, "2026-02-01T11:00:00Z"),
            // 2: one hour and one unit.
            ev("delivered.email", 2, "2026-02-01T10:00:00Z"),
            ev("opened.email", 2, after(tick)),
        ];
        let enc = Encoding {
            dictionary: false,
            unit,
            zoned: true,
        };
        let d = Data::with_encoding(&events, enc);
        assert_eq!(
            d.ids("delivered.email then opened.email within 1h", AS_OF),
            vec![1],
            "{unit:?}"
        );
        assert_eq!(
            d.ids("delivered.email then opened.email within 1h", AS_OF)
                .len()
                + d.ids("delivered.email then not opened.email within 1h", AS_OF)
                    .len(),
            2,
            "{unit:?}: each profile either opened within the hour or not"
        );
    }
}

#[test]
fn the_window_restricts_the_first_step_only() {
    let d = Data::new(&[
        // 1: delivered in the window, opened after its end (before as_of).
        ev("delivered.email", 1, "2026-01-10T00:00:00Z"),
        ev("opened.email", 1, "2026-02-10T00:00:00Z"),
        // 2: delivered before the window, opened in it.
        ev("delivered.email", 2, "2025-12-31T23:59:59Z"),
        ev("opened.email", 2, "2026-01-05T00:00:00Z"),
    ]);
    let q = "delivered.email then opened.email between 2026-01-01 and 2026-02-01";
    assert_eq!(d.ids(q, AS_OF), vec![1]);
}

#[test]
fn later_steps_may_fall_up_to_within_after_the_window_s_end() {
    // The window's end plus `within` bounds the later steps' scan: a step
    // exactly `within` after a first step at the window's last second
    // still counts, and blocks a `then not`.
    let d = Data::new(&[
        ev("delivered.email", 1, "2026-01-31T23:59:59Z"),
        ev("opened.email", 1, "2026-02-01T23:59:59Z"),
        // One second too late.
        ev("delivered.email", 2, "2026-01-31T23:59:59Z"),
        ev("opened.email", 2, "2026-02-02T00:00:00Z"),
        // Its first step is after the window.
        ev("delivered.email", 3, "2026-02-01T00:00:00Z"),
        ev("opened.email", 3, "2026-02-01T00:00:01Z"),
    ]);
    let window = "within 1d between 2026-01-01 and 2026-02-01";
    let then = format!("delivered.email then opened.email {window}");
    assert_eq!(d.ids(&then, AS_OF), vec![1]);
    let then_not = format!("delivered.email then not opened.email {window}");
    assert_eq!(d.ids(&then_not, AS_OF), vec![2]);
}

#[test]
fn same_key_needs_equal_non_null_keys_on_every_step() {
    let d = Data::new(&[
        ev("delivered.email", 1, "2026-02-01T10:00:00Z")
            .msg(7)
            .camp(1),
        ev("opened.email", 1, "2026-02-01T10:05:00Z").msg(7).camp(1),
        ev("delivered.email", 2, "2026-02-01T10:00:00Z")
            .msg(7)
            .camp(1),
        ev("opened.email", 2, "2026-02-01T10:05:00Z").msg(8).camp(1),
        // Null keys are never the same.
        ev("delivered.email", 3, "2026-02-01T10:00:00Z"),
        ev("opened.email", 3, "2026-02-01T10:05:00Z"),
    ]);
    assert_eq!(
        d.ids("delivered.email then opened.email same message", AS_OF),
        vec![1]
    );
    assert_eq!(
        d.ids("delivered.email then opened.email same campaign", AS_OF),
        vec![1, 2]
    );
    assert_eq!(
        d.ids("delivered.email then opened.email", AS_OF),
        vec![1, 2, 3]
    );
}

#[test]
fn three_steps_are_within_from_the_first_to_the_last() {
    let d = Data::new(&[
        // 1: 0h, 1h, 48h: within 2d.
        ev("sent.email", 1, "2026-02-01T00:00:00Z"),
        ev("opened.email", 1, "2026-02-01T01:00:00Z"),
        ev("click.email", 1, "2026-02-03T00:00:00Z"),
        // 2: the click precedes the open.
        ev("sent.email", 2, "2026-02-01T00:00:00Z"),
        ev("click.email", 2, "2026-02-01T01:00:00Z"),
        ev("opened.email", 2, "2026-02-01T02:00:00Z"),
        // 3: a second send starts a chain that fits; the first does not.
        ev("sent.email", 3, "2026-01-01T00:00:00Z"),
        ev("sent.email", 3, "2026-02-01T00:00:00Z"),
        ev("opened.email", 3, "2026-02-01T01:00:00Z"),
        ev("click.email", 3, "2026-02-01T02:00:00Z"),
        // 4: 0h, 1h, 48h + 1s.
        ev("sent.email", 4, "2026-02-01T00:00:00Z"),
        ev("opened.email", 4, "2026-02-01T01:00:00Z"),
        ev("click.email", 4, "2026-02-03T00:00:01Z"),
    ]);
    let q = "sent.email then opened.email then click.email within 2d";
    assert_eq!(d.ids(q, AS_OF), vec![1, 3]);
    assert_eq!(
        d.ids("sent.email then opened.email then click.email", AS_OF),
        vec![1, 3, 4]
    );
}

#[test]
fn steps_take_scopes_and_links() {
    let d = Data::new(&[
        ev("delivered.email", 1, "2026-02-01T00:00:00Z").camp(1),
        ev("link_click.email", 1, "2026-02-01T01:00:00Z").link("https://a/x"),
        ev("delivered.email", 2, "2026-02-01T00:00:00Z").camp(2),
        ev("link_click.email", 2, "2026-02-01T01:00:00Z").link("https://a/x"),
        ev("delivered.email", 3, "2026-02-01T00:00:00Z").camp(1),
        ev("link_click.email", 3, "2026-02-01T01:00:00Z").link("https://b/x"),
    ]);
    let q = r#"delivered.email in campaigns 1 then link_click.email link like "https://a/%""#;
    assert_eq!(d.ids(q, AS_OF), vec![1]);
}

#[test]
fn then_not_is_decided_only_once_its_span_has_passed() {
    let d = Data::new(&[
        // 1: delivered exactly one day before as_of, never opened: decided.
        ev("delivered.email", 1, "2026-02-28T00:00:00Z").msg(1),
        // 2: delivered one microsecond later: not decided yet.
        ev("delivered.email", 2, "2026-02-28T00:00:00.000001Z").msg(2),
        // 3: opened exactly one day later: blocked.
        ev("delivered.email", 3, "2026-02-01T00:00:00Z").msg(3),
        ev("opened.email", 3, "2026-02-02T00:00:00Z").msg(3),
        // 4: opened one day and one microsecond later: not blocked.
        ev("delivered.email", 4, "2026-02-01T00:00:00Z").msg(4),
        ev("opened.email", 4, "2026-02-02T00:00:00.000001Z").msg(4),
        // 5: opened at the same instant: not after it, not blocked.
        ev("delivered.email", 5, "2026-02-01T00:00:00Z").msg(5),
        ev("opened.email", 5, "2026-02-01T00:00:00Z").msg(5),
        // 6: another message's open does not block with `same message`.
        ev("delivered.email", 6, "2026-02-01T00:00:00Z").msg(6),
        ev("opened.email", 6, "2026-02-01T01:00:00Z").msg(60),
        // 7: a delivery without a message id never counts with `same`.
        ev("delivered.email", 7, "2026-02-01T00:00:00Z"),
        // 8: one blocked delivery and one unblocked: enough.
        ev("delivered.email", 8, "2026-02-01T00:00:00Z").msg(8),
        ev("opened.email", 8, "2026-02-01T01:00:00Z").msg(8),
        ev("delivered.email", 8, "2026-02-10T00:00:00Z").msg(80),
    ]);
    assert_eq!(
        d.ids(
            "delivered.email then not opened.email within 1d same message",
            AS_OF
        ),
        vec![1, 4, 5, 6, 8]
    );
    assert_eq!(
        d.ids("delivered.email then not opened.email within 1d", AS_OF),
        vec![1, 4, 5, 7, 8]
    );
}

#[test]
fn then_not_looks_for_the_second_step_whatever_the_window() {
    let d = Data::new(&[
        // The delivery is in January; the open, in February, still blocks.
        ev("delivered.email", 1, "2026-01-31T23:00:00Z"),
        ev("opened.email", 1, "2026-02-01T01:00:00Z"),
        ev("delivered.email", 2, "2026-01-31T23:00:00Z"),
    ]);
    let q = "delivered.email then not opened.email within 1d between 2026-01-01 and 2026-02-01";
    assert_eq!(d.ids(q, AS_OF), vec![2]);
}

#[test]
fn first_and_last_seen_ignore_the_window_for_the_extremum() {
    let d = Data::new(&[
        // 1: opened long ago and this week.
        ev("opened.email", 1, "2026-01-01T00:00:00Z"),
        ev("opened.email", 1, "2026-02-27T00:00:00Z"),
        // 2: opened this week only.
        ev("opened.email", 2, "2026-02-27T00:00:00Z"),
        // 3: opened long ago only.
        ev("opened.email", 3, "2026-01-01T00:00:00Z"),
        // 4: never opened (an event after as_of does not exist).
        ev("sent.email", 4, "2026-01-01T00:00:00Z"),
        ev("opened.email", 4, "2026-03-02T00:00:00Z"),
    ]);
    assert_eq!(d.ids("opened.email first_seen last 7d", AS_OF), vec![2]);
    assert_eq!(d.ids("opened.email last_seen last 7d", AS_OF), vec![1, 2]);
    assert_eq!(
        d.ids("opened.email last_seen before 7d ago", AS_OF),
        vec![3]
    );
    // A profile without the event is not in either, so `not` holds for it.
    assert_eq!(
        d.ids("not opened.email last_seen before 7d ago", AS_OF),
        vec![1, 2, 4]
    );
}

#[test]
fn weeks_run_monday_to_sunday_and_months_are_calendar_months_in_utc() {
    let d = Data::new(&[
        // 1: Sunday 23:59:59 and Monday 00:00: two weeks.
        ev("opened.email", 1, "2026-02-22T23:59:59Z"),
        ev("opened.email", 1, "2026-02-23T00:00:00Z"),
        // 2: Monday 00:00 and the Sunday after at 23:59:59: one week.
        ev("opened.email", 2, "2026-02-16T00:00:00Z"),
        ev("opened.email", 2, "2026-02-22T23:59:59Z"),
        // 3: before 1970: Wednesday 1969-12-31 and Sunday 1970-01-04 share
        // the week that starts on Monday 1969-12-29.
        ev("opened.email", 3, "1969-12-31T12:00:00Z"),
        ev("opened.email", 3, "1970-01-04T12:00:00Z"),
        // 4: the last microsecond of January and the first of February
        // (Saturday and Sunday of one week).
        ev("opened.email", 4, "2026-01-31T23:59:59.999999Z"),
        ev("opened.email", 4, "2026-02-01T00:00:00Z"),
        // 5: a zone offset: 2026-02-01T01:00+03:00 is still January in UTC.
        ev("opened.email", 5, "2026-01-05T00:00:00Z"),
        ev("opened.email", 5, "2026-02-01T01:00:00+03:00"),
    ]);
    assert_eq!(d.ids("opened.email at_least 2 weeks", AS_OF), vec![1, 5]);
    // 3's week straddles December 1969 and January 1970.
    assert_eq!(d.ids("opened.email at_least 2 months", AS_OF), vec![3, 4]);
    assert_eq!(d.ids("opened.email exactly 1 months", AS_OF), vec![1, 2, 5]);
}

#[test]
fn a_sample_is_the_integer_hash_exactly_as_written() {
    let ids: Vec<i64> = (-50..150)
        .chain([i64::MIN, i64::MAX, 2_147_483_647])
        .collect();
    let events: Vec<Ev> = ids
        .iter()
        .map(|&p| ev("sent.email", p, "2026-01-01T00:00:00Z"))
        .collect();
    let d = Data::new(&events);
    for (percent, bp, seed) in [("30%", 3_000, 7), ("2.5%", 250, 0), ("99.99%", 9_999, 123)] {
        let q = format!("sample {percent} seed {seed}");
        let expected: Vec<i64> = {
            let mut v: Vec<i64> = ids
                .iter()
                .copied()
                .filter(|&p| seglang::sample::holds(p, bp, seed))
                .collect();
            v.sort_unstable();
            v
        };
        assert_eq!(d.ids(&q, AS_OF), expected, "{q}");
        // Test and control split the universe exactly.
        let control = d.ids(&format!("not sample {percent} seed {seed}"), AS_OF);
        assert_eq!(expected.len() + control.len(), ids.len(), "{q}");
        assert!(control.iter().all(|p| !expected.contains(p)));
    }
    // The default seed is 0.
    assert_eq!(
        d.ids("sample 30%", AS_OF),
        d.ids("sample 30% seed 0", AS_OF)
    );
    assert_eq!(d.ids("sample 100%", AS_OF).len(), ids.len());
}

#[test]
fn a_sample_of_a_target_keeps_silent_profiles_of_the_universe() {
    let d = Data::new(&[ev("click.email", 1, "2026-01-01T00:00:00Z")])
        .profiles(&[1, 2, 3, 4, 5, 6, 7, 8]);
    let inside: Vec<i64> = (2..=8)
        .filter(|&p| seglang::sample::holds(p, 5_000, 7))
        .collect();
    assert_eq!(
        d.ids("click.email not_exists and sample 50% seed 7", AS_OF),
        inside
    );
}

#[test]
fn sequences_over_a_range_of_ids_keep_orphans_out_and_silent_profiles_in() {
    // Profiles 1..=4 are a range (the dense counters decide the sequences);
    // 9 is an orphan that holds the sequence.
    let d = Data::new(&[
        ev("delivered.email", 1, "2026-02-01T10:00:00Z"),
        ev("opened.email", 1, "2026-02-01T10:30:00Z"),
        ev("click.email", 1, "2026-02-01T10:40:00Z"),
        ev("delivered.email", 2, "2026-02-01T10:00:00Z"),
        ev("opened.email", 2, "2026-02-01T12:00:00Z"),
        ev("delivered.email", 9, "2026-02-01T10:00:00Z"),
        ev("opened.email", 9, "2026-02-01T10:30:00Z"),
    ])
    .profiles(&[1, 2, 3, 4]);
    let q = "delivered.email then opened.email within 1h";
    assert_eq!(d.ids(q, AS_OF), vec![1]);
    assert_eq!(d.ids(&format!("not ({q})"), AS_OF), vec![2, 3, 4]);
    assert_eq!(
        d.ids(&format!("({q}) and click.email at_least 1"), AS_OF),
        vec![1]
    );
    assert_eq!(
        d.ids(&format!("({q}) or opened.email at_least 1"), AS_OF),
        vec![1, 2]
    );
    assert_eq!(
        d.ids("delivered.email then not opened.email within 1h", AS_OF),
        vec![2]
    );
}

#[test]
fn a_split_into_more_scans_than_it_saves_is_not_made() {
    // A hundred days, a row group a day: `days` would take a scan per day,
    // `weeks` fifteen.
    let mut rows = Vec::new();
    for day in 0..100i64 {
        for p in 1..=3i64 {
            let at = chrono::DateTime::parse_from_rfc3339("2025-11-01T00:00:00Z").expect("time")
                + chrono::TimeDelta::days(day)
                + chrono::TimeDelta::hours(p);
            let at: &'static str = Box::leak(at.to_rfc3339().into_boxed_str());
            rows.push(ev("click.email", p, at));
        }
    }
    let d = Data::empty();
    let props = datafusion::parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(3))
        .build();
    write_events_with(
        &d.path().join("events/all.parquet"),
        &rows,
        PLAIN_US,
        Some(props),
    );
    let scans = |script: &str| {
        let plan = d.optimized_plan(script, AS_OF);
        plan.lines()
            .filter(|l| l.contains("TableScan: events"))
            .count()
    };
    assert_eq!(scans("click.email at_least 100 days"), 1);
    assert_eq!(d.ids("click.email at_least 100 days", AS_OF), vec![1, 2, 3]);
    assert!(scans("click.email at_least 15 weeks") > 1);
    assert_eq!(d.ids("click.email at_least 15 weeks", AS_OF), vec![1, 2, 3]);
    assert_eq!(
        d.ids("click.email at_least 16 weeks", AS_OF),
        Vec::<i64>::new()
    );
}
