//! Compile latency: parse + check, lowering to a logical plan, and `seg
//! fmt`, for a one-line segment and a 10 000-definition script.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use datafusion::logical_expr::{LogicalTableSource, TableSource};
use seglang::plan::{segment_plan, PlanEnv};
use seglang::ObjectIndex;

const ONE_LINE: &str = "click.email at_least 3 in campaigns tagged \"Online store\" last 30d";

fn big_script() -> String {
    let mut s = String::new();
    for i in 0..10_000 {
        s.push_str(&format!(
            "segment s{i} = click.email at_least {} in campaigns tagged \"Online store\" last {}d and not unsubscribe_click.email exists;\n",
            i % 7 + 1,
            i % 90 + 1
        ));
    }
    s
}

fn env(objects: &ObjectIndex) -> PlanEnv<'_> {
    let schema = seglang::data::canonical_events_schema();
    let events: Arc<dyn TableSource> = Arc::new(LogicalTableSource::new(schema));
    PlanEnv {
        events,
        profiles: None,
        profiles_range: None,
        objects,
        ts_type: seglang::data::canonical_ts_type(),
        as_of: chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default(),
        form: &seglang::plan::Executed,
        dense_counters: 0,
    }
}

fn compile(c: &mut Criterion) {
    c.bench_function("parse+check one-line segment", |b| {
        b.iter(|| {
            seglang::compile(std::hint::black_box(ONE_LINE), None).map(|c| c.program.segments.len())
        })
    });
    let big = big_script();
    let mut group = c.benchmark_group("10k definitions");
    group.sample_size(10);
    group.bench_function("parse+check 10 000-definition script", |b| {
        b.iter(|| {
            seglang::compile(std::hint::black_box(&big), None).map(|c| c.program.segments.len())
        })
    });
    group.bench_function("fmt 10 000-definition script", |b| {
        b.iter(|| seglang::fmt::format(std::hint::black_box(&big)).map(|f| f.len()))
    });
    group.finish();

    let objects = ObjectIndex::default();
    let env = env(&objects);
    let one = seglang::compile(ONE_LINE, None).expect("compiles").program;
    c.bench_function("plan one-line segment", |b| {
        b.iter(|| {
            segment_plan(std::hint::black_box(&one), 0, &env).map(|p| p.schema().fields().len())
        })
    });
    // `seg compile --emit sql` (and Python's `seglang.compile`): the plan
    // in the portable form, unparsed for DuckDB.
    let as_of = chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default();
    let duckdb = seglang::sql::SqlOptions::new(seglang::sql::Dialect::DuckDb);
    c.bench_function("SQL of a one-line segment (DuckDB)", |b| {
        b.iter(|| {
            seglang::sql::segment_sql(std::hint::black_box(&one), 0, as_of, &duckdb)
                .map(|s| s.len())
        })
    });
    c.bench_function("parse+check+SQL of a one-line segment (DuckDB)", |b| {
        b.iter(|| {
            let program = seglang::compile(std::hint::black_box(ONE_LINE), None)
                .expect("compiles")
                .program;
            seglang::sql::segment_sql(&program, 0, as_of, &duckdb).map(|s| s.len())
        })
    });
    let many = seglang::compile(&big, None).expect("compiles").program;
    let mut group = c.benchmark_group("10k definitions");
    group.sample_size(10);
    group.bench_function("plan every segment of a 10 000-definition script", |b| {
        b.iter(|| {
            (0..many.segments.len())
                .map(|i| {
                    segment_plan(&many, i, &env)
                        .map(|p| p.schema().fields().len())
                        .unwrap_or(0)
                })
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, compile);
criterion_main!(benches);
