//! The benchmark harness, tiny: `bench/run.py` over ~100 k events with the
//! binary under test, so the harness cannot rot. It generates the data,
//! rewrites it in every layout (DuckDB's COPY, pyarrow's defaults, Spark's
//! INT96 and uneven files, random order, small Hive-partitioned files, a
//! ClickHouse export with unsigned ids sorted by profile, DuckDB's
//! partitioned by channel and event into Hive folders), runs
//! the whole suite over each through `seg run`, hand-written SQL on DuckDB
//! and Seg's own SQL on DuckDB, and fails (`--check`) if any count
//! disagrees: Seg must read every layout DuckDB reads, with the same ids. Timings at
//! this size mean nothing; the real runs are by hand (docs/benchmarks.md).

use std::path::Path;
use std::process::Command;

use crate::common::python_has;

/// The Python that runs `bench/run.py`, when it has duckdb and pyarrow;
/// `None` (the test skips `what`) without them, unless every engine is
/// required.
fn python(what: &str) -> Option<String> {
    let python = crate::common::python();
    python_has(&python, "duckdb, pyarrow", what).then_some(python)
}

/// `bench/run.py` at 100 000 events, once each, with `--check` and `args`,
/// with the binary under test; its standard output (a failure shows both).
fn bench(python: &str, args: &[&str]) -> String {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/run.py");
    let out = Command::new(python)
        .arg(script)
        .args([
            "--events",
            "100000",
            "--runs",
            "1",
            "--threads",
            "2",
            "--check",
        ])
        .args(args)
        .arg("--seg")
        .arg(env!("CARGO_BIN_EXE_seg"))
        .arg("--out")
        .arg(out_dir.path())
        .output()
        .expect("run bench/run.py");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench/run.py {args:?} failed:\n{stdout}\n{stderr}"
    );
    stdout
}

#[test]
fn benchmark_harness_runs_and_every_count_agrees() {
    let Some(python) = python("the benchmark smoke run") else {
        return;
    };
    let stdout = bench(&python, &["--layout", "all"]);
    for segment in [
        "single condition",
        "tag + window",
        "not_happened … after",
        "distinct days, click.*",
        "universe negation",
        "8 conditions",
        "30 conditions",
    ] {
        assert!(
            stdout.contains(&format!("| {segment} |")),
            "no row for {segment}:\n{stdout}"
        );
    }
    for layout in [
        "seg",
        "duckdb",
        "pyarrow",
        "spark",
        "unsorted",
        "small-files",
        "clickhouse",
        "hive",
    ] {
        assert!(
            stdout.contains(&format!("## Layout `{layout}`")),
            "no section for layout {layout}:\n{stdout}"
        );
    }
    assert!(stdout.contains("Geometric mean Seg/DuckDB"), "{stdout}");
    assert!(stdout.contains("20 segments with --all"), "{stdout}");
    assert!(!stdout.contains("warning"), "{stdout}");
}

/// `bench/run.py --cluster`, tiny: the suite on a loopback cluster against
/// local runs, over Spark's layout (INT96 `ts`, 200 uneven files), and
/// every count equal (`--check`).
#[test]
fn benchmark_harness_on_a_cluster_agrees_with_local_runs() {
    let Some(python) = python("the cluster benchmark smoke run") else {
        return;
    };
    let stdout = bench(&python, &["--cluster", "--layout", "spark"]);
    for row in [
        "| 30 conditions |",
        "| 20 segments, --all |",
        "Geometric mean cluster/local",
    ] {
        assert!(stdout.contains(row), "no {row}:\n{stdout}");
    }
    assert!(stdout.contains("executor 1"), "{stdout}");
}

/// `bench/run.py --store s3`, tiny: the suite over an S3 copy of Spark's
/// layout on a loopback moto server against local runs, every count equal,
/// with the requests made.
#[test]
fn benchmark_harness_over_s3_agrees_with_local_runs() {
    let Some(python) = python("the object-store benchmark smoke run") else {
        return;
    };
    if !python_has(
        &python,
        "moto.server, boto3",
        "the object-store benchmark smoke run",
    ) {
        return;
    }
    let stdout = bench(&python, &["--store=s3", "--layout", "spark"]);
    for row in [
        "| 30 conditions |",
        "| 20 segments, --all |",
        "Geometric mean s3/local",
    ] {
        assert!(stdout.contains(row), "no {row}:\n{stdout}");
    }
}

/// `bench/examples.py` over the bundled data, once each: every segment of
/// every example script through `seg run` and as Seg's SQL on DuckDB, the
/// counts compared (it exits non-zero when one disagrees or fails).
#[test]
fn example_segments_harness_runs_and_every_count_agrees() {
    let Some(python) = python("the example segments' benchmark smoke run") else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(python)
        .arg(root.join("bench/examples.py"))
        .arg("--data")
        .arg(root.join("examples/data"))
        .args(["--runs", "1", "--seg", env!("CARGO_BIN_EXE_seg")])
        .output()
        .expect("run bench/examples.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let rows = stdout
        .lines()
        .filter(|l| l.ends_with(" |") && !l.starts_with("|---"))
        .count();
    // A header and one row per segment of the example scripts.
    assert!(rows > 50, "{stdout}");
    assert!(stdout.contains("Geometric mean Seg/DuckDB"), "{stdout}");
}
