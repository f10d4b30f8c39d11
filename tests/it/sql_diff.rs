//! Differential tests of `--emit sql`: random valid segments (proptest
//! strategies, seeded) over a small random data set; for each, the ids of
//! `seg run` against the ids of the emitted SQL executed by DataFusion (in
//! process), DuckDB, SQLite and PostgreSQL (through `tests/engines/run_sql.py`).
//!
//! DuckDB (the Python package) and PostgreSQL (`SEG_PG_DSN`) are installed
//! and started by `.ci/run`, which sets `SEG_REQUIRE_ENGINES=1`: without it a
//! missing engine is reported and skipped, with it a missing engine fails.
//! `SEG_DIFF_CASES` and `SEG_DIFF_SEED` change the number of segments and the
//! seed; with `SEG_DIFF_KEEP` set, a run that disagrees keeps its data
//! directory and prints where it is.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use chrono::{DateTime, TimeDelta, Utc};
use common::{ev, Data, Ev};
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rand::{Rng, SeedableRng};
use seglang::catalog::{Channel, Event, CHANNELS, EVENTS};
use seglang::sql::{segment_sql, segment_sql_from_plan, Dialect, SqlOptions};

const AS_OF: &str = "2026-11-01T00:00:00Z";

const CAMPAIGNS: &[(i64, &str)] = &[
    (1, "Black Friday"),
    (2, "black friday"),
    (3, "O'Brien"),
    (4, r"a\b"),
    (5, "50% off"),
    (6, "Black Friday"),
    (7, "Ünïcode “quotes”"),
    (8, "Cyber Monday"),
    (9, r"\' OR 1=1 --"),
    (10, "''"),
];
const TEMPLATES: &[(i64, &str)] = &[(1, "Welcome"), (2, "Digest"), (3, "O'Brien"), (4, "x_y")];
const TAGS: &[(&str, i64, &str)] = &[
    ("campaign", 1, "Online store"),
    ("campaign", 2, "Online store"),
    ("campaign", 3, "it's"),
    ("campaign", 5, "100%_sure"),
    ("campaign", 9, "VIP"),
    ("campaign", 4, r"x\y"),
    ("template", 1, "Online store"),
    ("template", 2, "VIP"),
    ("template", 3, "it's"),
];
const ATTRIBUTES: &[(&str, i64, &str, &str)] = &[
    ("campaign", 1, "region", "EU"),
    ("campaign", 2, "region", "US"),
    ("campaign", 3, "region", "E'U"),
    ("campaign", 5, "region", "EU"),
    ("campaign", 1, "goal", "sales"),
    ("campaign", 6, "goal", "info"),
    ("campaign", 8, "goal", "sales"),
    ("template", 1, "ab_group", "variant"),
    ("template", 2, "ab_group", "control"),
];
const LINKS: &[&str] = &[
    "https://shop.example.com/sale",
    "https://shop.example.com/a_b",
    "https://shop.example.com/a%b",
    "https://SHOP.example.com/sale",
    "https://shop.example.com/axb",
    "it's",
    r"back\slash",
    "*star?[x]",
    "ünïcode/€",
    r"\'x''",
    "",
];
/// Names, tags and keys the data does not have, next to those it has.
const NAMES: &[&str] = &[
    "Black Friday",
    "black friday",
    "O'Brien",
    r"a\b",
    "50% off",
    "Ünïcode “quotes”",
    "Welcome",
    "x_y",
    r"\' OR 1=1 --",
    "''",
    "Nope",
];
const TAG_NAMES: &[&str] = &[
    "Online store",
    "VIP",
    "it's",
    "100%_sure",
    r"x\y",
    "missing",
];
const ATTR_TESTS: &[(&str, &str)] = &[
    ("region", "EU"),
    ("region", "E'U"),
    ("goal", "sales"),
    ("ab_group", "variant"),
    ("color", "red"),
];
const LIKE_PATTERNS: &[&str] = &[
    "https://shop.example.com/%",
    r"%a\_b",
    "%a_b",
    r"%a\%b",
    "%'%",
    r"%\\%",
    "*star?[x]",
    "%[x]",
    "%€",
    "%",
    "_%",
    r"back\",
    "HTTPS%",
    "",
];

/// The profiles of a data set.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Universe {
    /// No `profiles`; no tags or attributes, and `ts` without a zone.
    FromEvents,
    /// 1..=140 with 7 and 8 twice: a join with the universe.
    Listed,
    /// Exactly 1..=140 in order: a range, so the engine counts in arrays by
    /// profile id and takes the profiles as rows of the aggregate's input.
    Range,
}

/// A small data set with every construct's edge cases: orphans, silent
/// profiles, null ids, events after as_of and on window edges, strings with
/// quotes, backslashes, LIKE and GLOB metacharacters.
pub(crate) fn data(seed: u64, universe: Universe) -> Data {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let as_of = parse(AS_OF);
    let pairs: Vec<(Event, Channel)> = EVENTS
        .iter()
        .flat_map(|info| info.channels.iter().map(move |c| (info.event, *c)))
        .collect();
    let mut events = Vec::new();
    for _ in 0..6_000 {
        // Profiles 1..=160; 141..=160 are not in `profiles` (orphans), and
        // 121..=140 of the universe never appear.
        let mut p = rng.random_range(1..=160);
        if (121..=140).contains(&p) {
            p -= 20;
        }
        let (e, c) = pairs[rng.random_range(0..pairs.len())];
        let day = rng.random_range(-70i64..=3);
        let ts = match rng.random_range(0..4) {
            // exactly on a day or hour boundary
            0 => as_of + TimeDelta::days(day),
            1 => as_of + TimeDelta::days(day) + TimeDelta::hours(rng.random_range(0..24)),
            _ => {
                as_of
                    + TimeDelta::microseconds(
                        rng.random_range(-70 * 86_400_000_000i64..86_400_000_000 * 3),
                    )
            }
        };
        let ts: &'static str = Box::leak(ts.to_rfc3339().into_boxed_str());
        let what: &'static str = Box::leak(format!("{}.{}", e.name(), c.name()).into_boxed_str());
        let mut row: Ev = ev(what, p, ts);
        if rng.random_bool(0.9) {
            row = row.msg(rng.random_range(1..400));
        }
        if rng.random_bool(0.8) {
            row = row.camp(rng.random_range(1..=10));
        }
        if rng.random_bool(0.8) {
            row = row.tmpl(rng.random_range(1..=5));
        }
        if e.has_link() && rng.random_bool(0.9) {
            row = row.link(LINKS[rng.random_range(0..LINKS.len())]);
        }
        events.push(row);
    }
    events.extend(crafted(&mut rng, as_of));
    if universe == Universe::FromEvents {
        // No profiles, tags or attributes; `ts` without a zone, in ms.
        let naive_ms = common::Encoding {
            dictionary: true,
            unit: datafusion::arrow::datatypes::TimeUnit::Millisecond,
            zoned: false,
        };
        return Data::with_encoding(&events, naive_ms)
            .campaigns(CAMPAIGNS)
            .templates(TEMPLATES);
    }
    let profiles: Vec<i64> = match universe {
        Universe::Range => (1..=140).collect(),
        _ => (1..=140).chain([7, 8]).collect(),
    };
    // Twelve files of about a week each: most lie on one side of every
    // window bound, so Seg reads them without `ts` (`plan::split`).
    Data::in_time_files(&events, 12)
        .profiles(&profiles)
        .campaigns(CAMPAIGNS)
        .templates(TEMPLATES)
        .tags(TAGS)
        .attributes(ATTRIBUTES)
}

/// Events at the edges of SPEC §10: same-message pairs at gaps of exactly
/// an hour or a day and one microsecond either side, steps at equal times,
/// three-step chains, and opens on both sides of week and month boundaries
/// at UTC midnight.
fn crafted(rng: &mut rand_chacha::ChaCha8Rng, as_of: DateTime<Utc>) -> Vec<Ev> {
    let leak = |t: DateTime<Utc>| -> &'static str { Box::leak(t.to_rfc3339().into_boxed_str()) };
    let us = TimeDelta::microseconds;
    let mut out = Vec::new();
    for k in 0..80i64 {
        let p = 1 + (k * 37) % 140;
        let base = as_of
            - TimeDelta::days(rng.random_range(0..45))
            - TimeDelta::hours(rng.random_range(0..24));
        let gap = [TimeDelta::hours(1), TimeDelta::days(1), TimeDelta::zero()]
            [rng.random_range(0..3)]
            + us([-1, 0, 1][rng.random_range(0..3)]);
        let m = 1_000 + k;
        let camp = rng.random_range(1..=10);
        let message = |row: Ev, same: bool, null: bool| {
            let row = row.camp(camp).tmpl(1 + k % 5);
            if null {
                row
            } else {
                row.msg(if same { m } else { m + 500 })
            }
        };
        let null = rng.random_bool(0.1);
        out.push(message(ev("delivered.email", p, leak(base)), true, null));
        let same = rng.random_bool(0.85);
        out.push(message(
            ev("opened.email", p, leak(base + gap)),
            same,
            false,
        ));
        if rng.random_bool(0.5) {
            let click = base + gap + [us(0), us(1), TimeDelta::hours(1)][rng.random_range(0..3)];
            out.push(message(ev("click.email", p, leak(click)), same, false));
            let sent = base - us(rng.random_range(0..2));
            out.push(message(ev("sent.email", p, leak(sent)), true, false));
        }
    }
    // Monday 2026-10-26 and Sunday 2026-10-25, the first of October and the
    // last instant of September.
    let monday = parse("2026-10-26");
    let october = parse("2026-10-01");
    for k in 0..40i64 {
        let p = 1 + (k * 53) % 140;
        let weeks_back = TimeDelta::weeks(rng.random_range(0..10));
        for t in [
            monday - weeks_back,
            monday - weeks_back - us(1),
            october - us(1),
            october,
        ] {
            if rng.random_bool(0.6) {
                out.push(ev("opened.email", p, leak(t)));
            }
        }
    }
    out
}

fn parse(t: &str) -> DateTime<Utc> {
    seglang::syntax::literal::parse_datetime(t).expect("time")
}

/// A Seg string literal.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn list(items: &[String]) -> String {
    items.join(", ")
}

fn scope() -> impl Strategy<Value = String> {
    let kind = prop::sample::select(vec!["campaigns", "templates", "messages"]);
    let name = prop::sample::select(NAMES).prop_map(quoted);
    let items = prop::collection::vec(
        prop_oneof![(0i64..12).prop_map(|i| i.to_string()), name],
        1..4,
    )
    .prop_map(|v| list(&v));
    let tagged = prop::collection::vec(prop::sample::select(TAG_NAMES).prop_map(quoted), 1..3)
        .prop_map(|v| format!("tagged {}", list(&v)));
    let test = (prop::sample::select(ATTR_TESTS), any::<bool>())
        .prop_map(|((k, v), ne)| format!("{k} {} {}", if ne { "!=" } else { "=" }, quoted(v)));
    let tests = prop::collection::vec(test, 1..3).prop_map(|v| match v.len() {
        1 => format!("where {}", v[0]),
        _ => format!("where ({})", v.join(" and ")),
    });
    (kind, prop_oneof![items, tagged, tests]).prop_map(|(k, s)| format!("in {k} {s}"))
}

fn window() -> impl Strategy<Value = String> {
    let date = (0i64..50).prop_map(|d| {
        (parse("2026-09-15") + TimeDelta::days(d))
            .format("%Y-%m-%d")
            .to_string()
    });
    prop_oneof![
        (1i64..60, prop::sample::select(vec!["d", "h", "w"]))
            .prop_map(|(n, u)| format!("last {n}{u}")),
        (date.clone(), 1i64..30).prop_map(|(a, len)| {
            let b = (parse(&a) + TimeDelta::days(len)).format("%Y-%m-%d");
            format!("between {a} and {b}")
        }),
        (1i64..60, 1i64..30)
            .prop_map(|(end, len)| format!("between {}d ago and {end}d ago", end + len)),
        date.clone().prop_map(|a| format!("since {a}")),
        (1i64..40).prop_map(|d| format!("before {d}d ago")),
        date.prop_map(|b| format!("before {b}T12:30:00Z")),
    ]
}

fn link() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(LINKS).prop_map(|l| format!("link {}", quoted(l))),
        prop::sample::select(LIKE_PATTERNS).prop_map(|p| format!("link like {}", quoted(p))),
    ]
}

/// One condition with clauses that suit its event and operator.
fn condition() -> impl Strategy<Value = String> {
    let pairs: Vec<(Event, Option<Channel>)> = EVENTS
        .iter()
        .flat_map(|info| {
            info.channels
                .iter()
                .map(move |c| (info.event, Some(*c)))
                .chain([(info.event, None)])
        })
        .collect();
    let units = prop::sample::select(vec![
        "",
        " times",
        " messages",
        " campaigns",
        " templates",
        " days",
        " weeks",
        " months",
    ]);
    let op = prop_oneof![
        1 => Just("exists".to_string()),
        1 => Just("not_exists".to_string()),
        6 => (prop::sample::select(vec!["at_least", "at_most", "exactly"]), 0u32..4, units)
            .prop_map(|(o, n, u)| format!("{o} {n}{u}")),
        3 => Just("not_happened".to_string()),
    ];
    (
        prop::sample::select(pairs),
        op,
        prop::option::weighted(0.5, scope()),
        prop::option::weighted(0.6, window()),
        prop::option::weighted(0.8, link()),
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(
            |((event, channel), op, scope, window, link, after, with_after)| {
                let target = format!("{}.{}", event.name(), channel.map_or("*", Channel::name));
                if op.ends_with("exists") {
                    return format!("{target} {op}");
                }
                let mut clauses: Vec<String> = scope.into_iter().chain(window).collect();
                if event.has_link() {
                    clauses.extend(link);
                }
                if op == "not_happened" && with_after {
                    // An `after` event that exists in the condition's channel(s).
                    let candidates: Vec<Event> = EVENTS
                        .iter()
                        .map(|i| i.event)
                        .filter(|e| match channel {
                            Some(c) => e.exists_in(c),
                            None => CHANNELS
                                .iter()
                                .any(|c| event.exists_in(*c) && e.exists_in(*c)),
                        })
                        .collect();
                    clauses.push(format!("after {}", after.get(&candidates).name()));
                }
                format!("{target} {op} {}", clauses.join(" "))
            },
        )
}

/// An event in a channel for a sequence's step: mostly the email funnel
/// that `crafted` fills, sometimes any pair.
fn step_target() -> impl Strategy<Value = (Event, Option<Channel>)> {
    let pairs: Vec<(Event, Option<Channel>)> = EVENTS
        .iter()
        .flat_map(|info| info.channels.iter().map(move |c| (info.event, Some(*c))))
        .chain(EVENTS.iter().map(|info| (info.event, None)))
        .collect();
    let funnel: Vec<(Event, Option<Channel>)> = ["sent", "delivered", "opened", "click"]
        .iter()
        .map(|e| (Event::from_name(e).expect("catalog"), Some(Channel::Email)))
        .collect();
    prop_oneof![3 => prop::sample::select(funnel), 1 => prop::sample::select(pairs)]
}

fn step() -> impl Strategy<Value = String> {
    (
        step_target(),
        prop::option::weighted(0.2, scope()),
        prop::option::weighted(0.5, link()),
    )
        .prop_map(|((event, channel), scope, link)| {
            let mut s = format!("{}.{}", event.name(), channel.map_or("*", Channel::name));
            s.extend(scope.map(|x| format!(" {x}")));
            if event.has_link() {
                s.extend(link.map(|x| format!(" {x}")));
            }
            s
        })
}

/// A sequence or a `then not`, with `within`, a window and `same` or not.
fn sequence() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(step(), 2..4),
        any::<bool>(),
        prop::option::weighted(0.7, prop::sample::select(vec!["1h", "1d", "30m", "7d"])),
        prop::option::weighted(0.4, window()),
        prop::option::weighted(
            0.5,
            prop::sample::select(vec!["message", "campaign", "template"]),
        ),
    )
        .prop_map(|(steps, negated, within, window, same)| {
            let mut s = if negated {
                format!(
                    "{} then not {} within {}",
                    steps[0],
                    steps[1],
                    within.unwrap_or("1d")
                )
            } else {
                let mut s = steps.join(" then ");
                s.extend(within.map(|w| format!(" within {w}")));
                s
            };
            s.extend(same.map(|k| format!(" same {k}")));
            s.extend(window.map(|w| format!(" {w}")));
            s
        })
}

/// `first_seen` / `last_seen` with a window, and maybe a scope and a link.
fn seen() -> impl Strategy<Value = String> {
    (
        step(),
        prop::sample::select(vec!["first_seen", "last_seen"]),
        window(),
    )
        .prop_map(|(step, op, window)| {
            // A step's scope and link are a condition's clauses too.
            let (target, clauses) = step.split_once(' ').unwrap_or((step.as_str(), ""));
            format!("{target} {op} {window} {clauses}")
        })
}

fn sample() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["10%", "50%", "2.5%", "99.99%", "0.01%", "100%"]),
        prop::option::of(prop::sample::select(vec![0i64, 7, 2_147_483_646])),
    )
        .prop_map(|(p, seed)| match seed {
            Some(s) => format!("sample {p} seed {s}"),
            None => format!("sample {p}"),
        })
}

fn leaf() -> impl Strategy<Value = String> {
    prop_oneof![6 => condition(), 3 => sequence(), 1 => seen(), 1 => sample()]
}

fn expression() -> impl Strategy<Value = String> {
    leaf().prop_recursive(3, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4)
                .prop_map(|v| format!("({})", v.join(" and "))),
            prop::collection::vec(inner.clone(), 2..4)
                .prop_map(|v| format!("({})", v.join(" or "))),
            inner.prop_map(|e| format!("not {e}")),
        ]
    })
}

/// A bare expression, or a script whose last segment refers to the others.
fn script() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => expression(),
        1 => (expression(), expression(), any::<bool>()).prop_map(|(a, b, or)| {
            format!(
                "segment base = {a};\nsegment target = base {} {b};",
                if or { "or not" } else { "and" }
            )
        }),
    ]
}

/// `count` random scripts that compile against `objects`, from the seed:
/// the corpus of these tests, for other comparisons (`cluster`).
pub(crate) fn random_scripts(
    seed: u64,
    count: usize,
    objects: &seglang::ObjectIndex,
) -> Vec<String> {
    let mut runner = runner(seed);
    let strategy = script();
    let mut out = Vec::new();
    let mut tries = 0;
    while out.len() < count {
        tries += 1;
        assert!(
            tries < 3 * count + 100,
            "the generator makes mostly invalid segments"
        );
        let script = strategy.new_tree(&mut runner).expect("generate").current();
        if seglang::compile(&script, Some(objects)).is_ok() {
            out.push(script);
        }
    }
    out
}

/// A proptest runner whose cases follow from `seed`.
fn runner(seed: u64) -> TestRunner {
    TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &{
            let mut s = [0u8; 32];
            s[..8].copy_from_slice(&seed.to_le_bytes());
            s
        }),
    )
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn required() -> bool {
    std::env::var("SEG_REQUIRE_ENGINES").is_ok_and(|v| v == "1")
}

fn ids_of(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_primitive::<Int64Type>()
                .iter()
                .flatten()
                .collect::<Vec<_>>()
        })
        .collect()
}

async fn datafusion_context(data: &Path) -> SessionContext {
    let ctx = SessionContext::new();
    for table in [
        "events",
        "profiles",
        "campaigns",
        "templates",
        "tags",
        "attributes",
    ] {
        let mut path = data.join(format!("{table}.parquet"));
        if table == "events" && !path.exists() {
            // A folder of files (read recursively by its trailing slash).
            path = data.join("events/");
        }
        if !path.exists() {
            continue;
        }
        ctx.register_parquet(
            table,
            path.to_string_lossy().as_ref(),
            ParquetReadOptions::default(),
        )
        .await
        .expect("register");
    }
    ctx
}

struct Case {
    script: String,
    seg: Vec<i64>,
    sql: Vec<(Dialect, String)>,
}

const ENGINES: [Dialect; 3] = [Dialect::DuckDb, Dialect::Sqlite, Dialect::Postgres];

#[test]
fn emitted_sql_gives_the_same_ids_as_seg_run_on_every_engine() {
    let seed = env_or("SEG_DIFF_SEED", 20261129);
    differential(
        data(seed, Universe::Listed),
        seed,
        env_or("SEG_DIFF_CASES", 300) as usize,
    );
}

/// Profile ids that are a range: counts in arrays by profile id, negations
/// without a join, and no OR of the conditions before the counts.
#[test]
fn emitted_sql_agrees_when_the_profile_ids_are_a_range() {
    let seed = env_or("SEG_DIFF_SEED", 20261129) + 2;
    let data = data(seed, Universe::Range);
    let dir = seglang::data::DataDir::open(data.path()).expect("open");
    assert_eq!(dir.profiles_range().expect("range"), Some((1, 140)));
    differential(data, seed, env_or("SEG_DIFF_CASES", 300) as usize / 2);
}

/// Every event before as_of: Seg's plan leaves out `ts <= as_of`, and the
/// starts of windows that begin before the first event, by the files'
/// statistics (`DataDir::ts_span`); the SQL keeps every bound.
#[test]
fn emitted_sql_agrees_when_every_event_precedes_as_of() {
    let seed = env_or("SEG_DIFF_SEED", 20261129) + 3;
    let data = data(seed, Universe::Range);
    let dir = seglang::data::DataDir::open(data.path()).expect("open");
    let (_, last) = dir.ts_span().expect("the footers give the span of ts");
    let as_of = parse(AS_OF) + TimeDelta::days(4);
    assert!(last <= i128::from(as_of.timestamp_nanos_opt().expect("in range")));
    differential_at(
        data,
        seed,
        env_or("SEG_DIFF_CASES", 300) as usize / 2,
        as_of,
    );
}

/// The universe from events (no `profiles`), lookups of absent tables, and a
/// `ts` without a zone (TIMESTAMP, not TIMESTAMPTZ, in DuckDB and PostgreSQL).
#[test]
fn emitted_sql_agrees_without_optional_tables_and_with_naive_timestamps() {
    let seed = env_or("SEG_DIFF_SEED", 20261129) + 1;
    differential(
        data(seed, Universe::FromEvents),
        seed,
        env_or("SEG_DIFF_CASES", 300) as usize / 2,
    );
}

fn differential(data: Data, seed: u64, cases: usize) {
    differential_at(data, seed, cases, parse(AS_OF));
}

fn differential_at(data: Data, seed: u64, cases: usize, as_of: DateTime<Utc>) {
    let engine = seglang::Engine::open(data.path()).expect("open");
    let options = |d| SqlOptions::for_data(d, engine.data(), engine.objects());

    let mut runner = runner(seed);
    let strategy = script();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let df = rt.block_on(datafusion_context(data.path()));

    let mut all = Vec::new();
    let mut rejected = 0;
    let mut failures = Vec::new();
    while all.len() < cases {
        let script = strategy.new_tree(&mut runner).expect("generate").current();
        let compiled = match seglang::compile(&script, Some(engine.objects())) {
            Ok(c) => c,
            Err(d) => {
                if std::env::var("SEG_DIFF_SHOW_REJECTED").is_ok() {
                    eprintln!(
                        "rejected {script}: {}",
                        d.iter()
                            .filter(|d| d.is_error())
                            .map(|d| format!("{} {}", d.code.as_str(), d.message))
                            .collect::<Vec<_>>()
                            .join("; ")
                    );
                }
                rejected += 1;
                assert!(
                    rejected < cases,
                    "the generator makes mostly invalid segments: {script}"
                );
                continue;
            }
        };
        let last = compiled.program.segments.len() - 1;
        let seg = match rt.block_on(engine.run(&compiled.program, last, as_of)) {
            Ok(ids) => ids,
            Err(e) => panic!("seg run failed on\n{script}\n{e}"),
        };
        let sql = |d| {
            let sql = segment_sql(&compiled.program, last, as_of, &options(d))
                .unwrap_or_else(|e| panic!("no {d} SQL for\n{script}\n{e}"));
            // Written from the planner's parts or from the plan: one text.
            let from_plan = segment_sql_from_plan(&compiled.program, last, as_of, &options(d));
            assert_eq!(Ok(&sql), from_plan.as_ref(), "{d} SQL of\n{script}");
            sql
        };
        // DataFusion, in process.
        let df_sql = sql(Dialect::DataFusion);
        let got = rt.block_on(async { df.sql(&df_sql).await?.collect().await });
        match got {
            Ok(b) if ids_of(&b) == seg => {}
            Ok(b) => failures.push(report(&script, "datafusion", &df_sql, &seg, Ok(ids_of(&b)))),
            Err(e) => failures.push(report(
                &script,
                "datafusion",
                &df_sql,
                &seg,
                Err(e.to_string()),
            )),
        }
        all.push(Case {
            sql: ENGINES.iter().map(|&d| (d, sql(d))).collect(),
            script,
            seg,
        });
    }
    let nonempty = all.iter().filter(|c| !c.seg.is_empty()).count();
    assert!(
        nonempty * 4 >= cases,
        "only {nonempty} of {cases} segments select anyone: the test would prove little"
    );

    let results = run_engines(data.path(), &all);
    for (engine_name, per_case) in &results {
        for (case, got) in all.iter().zip(per_case) {
            if got.as_ref().ok() != Some(&case.seg) {
                let sql = &case
                    .sql
                    .iter()
                    .find(|(d, _)| d.name() == engine_name)
                    .expect("sql")
                    .1;
                failures.push(report(
                    &case.script,
                    engine_name,
                    sql,
                    &case.seg,
                    got.clone(),
                ));
            }
        }
    }
    eprintln!(
        "{} segments ({} select someone, {rejected} generated scripts rejected by the checker) on datafusion{}",
        all.len(),
        nonempty,
        results.iter().map(|(e, _)| format!(", {e}")).collect::<String>()
    );
    if !failures.is_empty() {
        for f in failures.iter().take(5) {
            eprintln!("{f}");
        }
        if std::env::var("SEG_DIFF_KEEP").is_ok() {
            eprintln!("the data is kept in {}", data.path().display());
            std::mem::forget(data);
        }
        panic!("{} disagreements (first ones above)", failures.len());
    }
}

fn report(
    script: &str,
    engine: &str,
    sql: &str,
    seg: &[i64],
    got: Result<Vec<i64>, String>,
) -> String {
    let detail = match got {
        Err(e) => format!("{engine} failed: {e}"),
        Ok(ids) => {
            let a: BTreeSet<_> = seg.iter().collect();
            let b: BTreeSet<_> = ids.iter().collect();
            format!(
                "only in seg run: {:?}\nonly in {engine}: {:?}{}",
                a.difference(&b).collect::<Vec<_>>(),
                b.difference(&a).collect::<Vec<_>>(),
                if a == b {
                    "\n(same set, different order)"
                } else {
                    ""
                }
            )
        }
    };
    format!("==== {engine} disagrees on\n{script}\n---- SQL\n{sql}\n---- {detail}\n")
}

type EngineResults = Vec<(String, Vec<Result<Vec<i64>, String>>)>;

/// Runs every case's SQL on DuckDB, SQLite and PostgreSQL in one Python process.
fn run_engines(data: &Path, cases: &[Case]) -> EngineResults {
    let python = crate::common::python();
    let probe = Command::new(&python).args(["-c", "import duckdb"]).output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        let why = "python3 with the duckdb package is not available (.ci/run installs it)";
        assert!(!required(), "{why}");
        eprintln!("SKIPPED DuckDB, SQLite and PostgreSQL: {why}");
        return Vec::new();
    }
    let mut engines: Vec<&str> = vec!["duckdb", "sqlite"];
    if std::env::var("SEG_PG_DSN").is_ok() {
        engines.push("postgres");
    } else {
        assert!(
            !required(),
            "SEG_PG_DSN is not set (.ci/run starts PostgreSQL and sets it)"
        );
        eprintln!("SKIPPED PostgreSQL: SEG_PG_DSN is not set");
    }
    let queries: Vec<serde_json::Value> = cases
        .iter()
        .map(|c| {
            serde_json::Value::Object(
                c.sql
                    .iter()
                    .map(|(d, s)| (d.name().to_string(), serde_json::Value::String(s.clone())))
                    .collect(),
            )
        })
        .collect();
    let job = serde_json::json!({ "engines": engines, "queries": queries });
    let dir = tempfile::tempdir().expect("tempdir");
    let job_path = dir.path().join("queries.json");
    std::fs::write(&job_path, job.to_string()).expect("write job");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/engines/run_sql.py");
    let out = Command::new(&python)
        .arg(script)
        .arg(data)
        .arg(&job_path)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "run_sql.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json from run_sql.py");
    if let Some(u) = v["unavailable"].as_object() {
        for (engine, why) in u {
            assert!(!required(), "{engine} is unavailable: {why}");
            eprintln!("SKIPPED {engine}: {why}");
        }
    }
    let mut results = Vec::new();
    for (engine, list) in v["results"].as_object().into_iter().flatten() {
        let per_case = list
            .as_array()
            .expect("array")
            .iter()
            .map(|r| match r.get("ids") {
                Some(ids) => Ok(ids
                    .as_array()
                    .expect("ids")
                    .iter()
                    .map(|i| i.as_i64().expect("id"))
                    .collect()),
                None => Err(r["error"].as_str().unwrap_or("?").to_string()),
            })
            .collect();
        results.push((engine.clone(), per_case));
    }
    assert_eq!(
        results.len() + v["unavailable"].as_object().map_or(0, |u| u.len()),
        engines.len()
    );
    results
}
