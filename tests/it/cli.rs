//! The `seg` binary as a black box: exit codes, formats, files.

use crate::common;

use common::*;

fn example(name: &str) -> String {
    examples_dir().join(name).display().to_string()
}

fn data() -> String {
    examples_dir().join("data").display().to_string()
}

fn write_script(dir: &std::path::Path, name: &str, text: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write script");
    p.display().to_string()
}

#[test]
fn check_clean_scripts_exits_0_silently() {
    let (code, out, err) = seg_out(&[
        "check",
        &example("retargeting.seg"),
        &example("01_exists.seg"),
    ]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
}

#[test]
fn check_errors_exit_1_and_report_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_script(dir.path(), "a.seg", b"clik.email exists");
    let b = write_script(dir.path(), "b.seg", b"opened.viber exists");
    let (code, _, err) = seg_out(&["check", "--color", "never", &a, &b]);
    assert_eq!(code, 1);
    assert!(err.contains("[E010] Error: unknown event `clik`"), "{err}");
    assert!(err.contains("[E012]"), "{err}");
    assert!(err.contains("a.seg:1:1"), "{err}");
    assert!(
        !err.contains("\u{1b}["),
        "no colour when not a terminal: {err}"
    );
}

#[test]
fn check_json_is_one_array_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_script(
        dir.path(),
        "a.seg",
        "segment a = click.email exists;\nsegment b = clik.emial exists;".as_bytes(),
    );
    let (code, out, _) = seg_out(&["check", "--format", "json", &a]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let arr = v.as_array().expect("array");
    assert_eq!(arr.len(), 2);
    assert_eq!(arr[0]["code"], "E010");
    assert_eq!(arr[0]["severity"], "error");
    assert_eq!(arr[0]["line"], 2);
    assert_eq!(arr[0]["column"], 13);
    assert_eq!(arr[0]["start"], 44);
    assert_eq!(arr[0]["end"], 48);
    assert_eq!(arr[0]["help"], "did you mean `click`?");
    assert_eq!(arr[1]["code"], "E011");
    // Clean input: an empty array.
    let (code, out, _) = seg_out(&["check", "--format", "json", &example("01_exists.seg")]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "[]");
}

#[test]
fn check_reads_stdin_and_reports_non_utf8() {
    use std::io::Write;
    let mut child = seg()
        .args(["check", "--color", "never", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"click.email \xff exists")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[E008]") && err.contains("0xff at offset 12"),
        "{err}"
    );
}

#[test]
fn check_empty_file_is_clean_and_missing_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write_script(dir.path(), "empty.seg", b"");
    assert_eq!(seg_out(&["check", &empty]).0, 0);
    let (code, _, err) = seg_out(&["check", "/nonexistent/x.seg"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read /nonexistent/x.seg"), "{err}");
}

#[test]
fn warnings_do_not_fail_unless_denied() {
    let dir = tempfile::tempdir().unwrap();
    let w = write_script(dir.path(), "w.seg", b"click.email at_least 0");
    let (code, _, err) = seg_out(&["check", "--color", "never", &w]);
    assert_eq!(code, 0);
    assert!(err.contains("[W005] Warning"), "{err}");
    assert_eq!(seg_out(&["check", "--deny-warnings", &w]).0, 1);
}

#[test]
fn check_with_data_warns_about_unknown_tags() {
    let dir = tempfile::tempdir().unwrap();
    let w = write_script(
        dir.path(),
        "w.seg",
        b"click.email at_least 1 in campaigns tagged \"Onlin store\"",
    );
    let (code, _, err) = seg_out(&["check", "--color", "never", "--data", &data(), &w]);
    assert_eq!(code, 0);
    assert!(
        err.contains("[W003]") && err.contains("did you mean \"Online store\"?"),
        "{err}"
    );
}

#[test]
fn hostile_inputs_exit_1_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let deep = format!(
        "{}click.email exists{}",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    for (name, text) in [
        ("deep.seg", deep.into_bytes()),
        ("bytes.seg", (0..=255u8).cycle().take(100_000).collect()),
        ("nul.seg", b"click.email\0exists".to_vec()),
    ] {
        let p = write_script(dir.path(), name, &text);
        let (code, _, err) = seg_out(&["check", "--color", "never", &p]);
        assert_eq!(code, 1, "{name}: {err}");
        assert!(err.contains("Error"), "{name}");
        assert!(!err.contains("panicked"), "{name}");
    }
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(seg_out(&["check"]).0, 2);
    assert_eq!(seg_out(&["frobnicate"]).0, 2);
    assert_eq!(seg_out(&["run", "-e", "click.email exists"]).0, 2); // --data missing
}

#[test]
fn run_formats() {
    let d = Data::new(&[
        ev("click.email", 3, "2026-01-10"),
        ev("click.email", 1, "2026-01-10"),
        ev("opened.email", 2, "2026-01-10"),
    ]);
    let data = d.path().display().to_string();
    let run = |format: &str| {
        let (code, out, err) = seg_out(&[
            "run",
            "-e",
            "click.email exists",
            "--data",
            &data,
            "--as-of",
            "2026-02-01",
            "--format",
            format,
        ]);
        assert_eq!(code, 0, "{err}");
        out
    };
    assert_eq!(run("csv"), "profile_id\n1\n3\n");
    assert_eq!(run("count"), "2\n");
    assert_eq!(run("table"), "profile_id\n----------\n1\n3\n(2 profiles)\n");
    let v: serde_json::Value = serde_json::from_str(&run("json")).unwrap();
    assert_eq!(v["profile_ids"], serde_json::json!([1, 3]));
    assert_eq!(v["count"], 2);
}

#[test]
fn run_parquet_output_is_written_atomically_and_readable() {
    let d = Data::new(&[
        ev("click.email", 5, "2026-01-10"),
        ev("click.email", 4, "2026-01-10"),
    ]);
    let out = d.path().join("out.parquet");
    let (code, _, err) = seg_out(&[
        "run",
        "-e",
        "click.email exists",
        "--data",
        &d.path().display().to_string(),
        "--format",
        "parquet",
        "--output",
        &out.display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    let file = std::fs::File::open(&out).unwrap();
    let reader =
        datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
    let mut ids = Vec::new();
    for b in reader {
        let b = b.unwrap();
        use datafusion::arrow::array::AsArray;
        ids.extend(
            b.column(0)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .values()
                .iter()
                .copied(),
        );
    }
    assert_eq!(ids, vec![4, 5]);
    // Sorted ids are delta-packed, not put in a dictionary.
    let file = std::fs::File::open(&out).unwrap();
    let meta = datafusion::parquet::file::reader::FileReader::metadata(
        &datafusion::parquet::file::reader::SerializedFileReader::new(file).unwrap(),
    )
    .clone();
    let column = meta.row_group(0).column(0);
    use datafusion::parquet::basic::Encoding;
    assert!(column.dictionary_page_offset().is_none());
    assert!(
        column
            .encodings()
            .any(|e| e == Encoding::DELTA_BINARY_PACKED),
        "{:?}",
        column.encodings().collect::<Vec<_>>()
    );
    // Parquet needs a file.
    assert_eq!(
        seg_out(&[
            "run",
            "-e",
            "click.email exists",
            "--data",
            &d.path().display().to_string(),
            "--format",
            "parquet"
        ])
        .0,
        2
    );
}

/// A file Seg writes gets the mode a shell's `>` would give it (0666 less
/// the umask), not a temporary file's 0600, and a file it replaces
/// (`--output`, `fmt --write`) keeps its own.
#[test]
fn written_files_get_the_mode_a_shell_gives_them() {
    use std::os::unix::fs::PermissionsExt;
    let d = Data::new(&[ev("click.email", 5, "2026-01-10")]);
    let data = d.path().display().to_string();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    let shells = d.path().join("by_the_shell");
    std::fs::write(&shells, "").unwrap();
    let run_into = |out: &std::path::Path| {
        let out = out.display().to_string();
        let args = [
            "run",
            "-e",
            "click.email exists",
            "--data",
            &data,
            "--output",
            &out,
        ];
        let (code, _, err) = seg_out(&args);
        assert_eq!(code, 0, "{err}");
    };
    let new = d.path().join("new.csv");
    run_into(&new);
    assert_eq!(mode(&new), mode(&shells));
    let kept = d.path().join("kept.csv");
    std::fs::write(&kept, "old").unwrap();
    std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o640)).unwrap();
    run_into(&kept);
    assert_eq!(mode(&kept), 0o640);
    // Without --format, the name's extension chooses it.
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "profile_id\n5\n");
    let json = d.path().join("ids.JSON");
    run_into(&json);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["profile_ids"], serde_json::json!([5]));
    let parquet = d.path().join("ids.parquet");
    run_into(&parquet);
    assert!(std::fs::read(&parquet).unwrap().starts_with(b"PAR1"));
    let other = d.path().join("ids.txt");
    run_into(&other);
    assert!(std::fs::read_to_string(&other)
        .unwrap()
        .ends_with("5\n(1 profile)\n"));

    let script = d.path().join("s.seg");
    std::fs::write(&script, "segment   a =   click.email    exists\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o664)).unwrap();
    let (code, _, err) = seg_out(&["fmt", "--write", &script.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_to_string(&script).unwrap(),
        "segment a = click.email exists;\n"
    );
    assert_eq!(mode(&script), 0o664);
}

/// `--output` to a pipe or a device writes into it (a rename would put a
/// regular file in its place: `-o /dev/null` once replaced the device), and
/// through a symbolic link replaces the file it names, keeping the link.
#[test]
fn output_to_a_pipe_or_through_a_link_keeps_it() {
    use std::os::unix::fs::FileTypeExt;
    let d = Data::new(&[ev("click.email", 5, "2026-01-10")]);
    let data = d.path().display().to_string();
    let fifo = d.path().join("ids.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let fifo_arg = fifo.display().to_string();
    let args = [
        "run",
        "-e",
        "click.email exists",
        "--data",
        &data,
        "--format",
        "csv",
    ];
    let (code, _, err) = seg_out(&[&args[..], &["--output", &fifo_arg]].concat());
    assert_eq!(code, 0, "{err}");
    // Checked before the reader is joined: had the pipe been replaced, the
    // reader would wait for a writer forever.
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(reader.join().unwrap(), "profile_id\n5\n");

    let real = d.path().join("real.csv");
    std::fs::write(&real, "old").unwrap();
    let link = d.path().join("link.csv");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let link_arg = link.display().to_string();
    let (code, _, err) = seg_out(&[&args[..], &["--output", &link_arg]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_to_string(&real).unwrap(), "profile_id\n5\n");
}

#[test]
fn a_failed_run_leaves_no_output_file() {
    let d = Data::empty();
    write_table(
        &d.path().join("events.parquet"),
        vec![("profile_id", strs(&["x"]))],
    );
    let out = d.path().join("out.csv");
    let (code, _, err) = seg_out(&[
        "run",
        "-e",
        "click.email exists",
        "--data",
        &d.path().display().to_string(),
        "--format",
        "csv",
        "--output",
        &out.display().to_string(),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("events.parquet: column `profile_id` has type Utf8, expected int64 (or another integer type)"),
        "{err}"
    );
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "only events.parquet remains");
}

#[test]
fn missing_columns_name_the_file_and_column() {
    let d = Data::empty();
    write_table(
        &d.path().join("events.parquet"),
        vec![("profile_id", ints(&[1])), ("channel", strs(&["email"]))],
    );
    let (code, _, err) = seg_out(&[
        "run",
        "-e",
        "click.email exists",
        "--data",
        &d.path().display().to_string(),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("events.parquet: missing required column `event`"),
        "{err}"
    );
    let (code, _, err) = seg_out(&["run", "-e", "click.email exists", "--data", "/nonexistent"]);
    assert_eq!(code, 2);
    assert!(err.contains("not a directory"), "{err}");
}

#[test]
fn several_segments_need_segment_or_all() {
    let (code, _, err) = seg_out(&["run", &example("retargeting.seg"), "--data", &data()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("store_clickers, gone_quiet, unsubscribed, target"),
        "{err}"
    );
    let (code, _, err) = seg_out(&[
        "run",
        &example("retargeting.seg"),
        "--data",
        &data(),
        "--segment",
        "targte",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("did you mean `target`?"), "{err}");
}

#[test]
fn run_all_prints_counts_or_the_long_csv() {
    let args = [
        "run",
        &example("retargeting.seg"),
        "--data",
        &data(),
        "--as-of",
        "2026-11-01",
        "--all",
    ];
    let (code, table, _) = seg_out(&args);
    assert_eq!(code, 0);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5);
    assert!(lines[0].starts_with("segment"));
    let (_, csv, _) = seg_out(&[&args[..], &["--format", "csv"]].concat());
    assert!(csv.starts_with("segment,profile_id\n"));
    let target_rows = csv.lines().filter(|l| l.starts_with("target,")).count();
    let target_count: usize = lines[4].split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(target_rows, target_count);
}

#[test]
fn run_with_script_errors_exits_1() {
    let (code, out, err) = seg_out(&[
        "run",
        "-e",
        "clik.email exists",
        "--data",
        &data(),
        "--color",
        "never",
    ]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains("E010"));
}

/// `seg compile SCRIPT --emit plan` over the example data at 2026-11-01.
fn optimized_plan(script: &str, extra: &[&str]) -> String {
    let data = data();
    let mut args = vec![
        "compile",
        script,
        "--emit",
        "plan",
        "--data",
        &data,
        "--as-of",
        "2026-11-01",
    ];
    args.extend_from_slice(extra);
    let (code, plan, err) = seg_out(&args);
    assert_eq!(code, 0, "{err}");
    plan
}

#[test]
fn compile_emits_the_ast_and_the_optimized_plan() {
    let (code, out, _) = seg_out(&["compile", &example("01_exists.seg"), "--emit", "ast"]);
    assert_eq!(code, 0);
    assert!(out.contains("Condition"));
    let plan = optimized_plan(&example("retargeting.seg"), &["--segment", "target"]);
    // One aggregate for four conditions, over one pass of the events: a
    // scan per group of files (the files whose time is decided are read
    // without `ts`), at most one per file.
    assert_eq!(plan.matches("Aggregate:").count(), 1, "{plan}");
    let files = std::fs::read_dir(examples_dir().join("data/events"))
        .expect("events")
        .count();
    let scans = plan.matches("TableScan: events").count();
    assert!((1..=files).contains(&scans), "{plan}");
    insta::assert_snapshot!("retargeting_target_plan", plan);
}

#[test]
fn a_sequence_s_window_bounds_the_scan_of_every_step() {
    // The window restricts the first step, but no later step can precede
    // its start: the scan of every step's rows is bounded by it, so the
    // files and row groups before it are pruned; next to a windowed
    // condition, by the earlier of the two starts.
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("seq.seg");
    // 2026-11-01 minus 30 days, in microseconds, as a filter of its own
    // (not only inside the first step's part of an OR).
    let since = r#"TimestampMicrosecond(1790899200000000, Some("UTC"))"#;
    for (segment, bound) in [
        (
            "delivered.email then opened.email within 1h same message last 30d",
            format!("events.ts > {since}"),
        ),
        (
            "(delivered.email then opened.email within 1h last 30d) and click.email at_least 1 last 7d",
            format!("events.ts >= {since}"),
        ),
    ] {
        std::fs::write(&script, format!("segment s = {segment}\n")).expect("write");
        let plan = optimized_plan(script.to_str().expect("utf-8"), &[]);
        let scans: Vec<&str> = plan
            .lines()
            .filter(|l| l.trim_start().starts_with("TableScan: events"))
            .collect();
        assert!(!scans.is_empty(), "{plan}");
        for scan in scans {
            let filters = scan.split("partial_filters=").nth(1).unwrap_or_default();
            let alone = filters.match_indices(&bound).any(|(at, _)| {
                let (before, after) = (&filters[..at], &filters[at + bound.len()..]);
                (before.ends_with('[') || before.ends_with(", "))
                    && (after.starts_with(',') || after.starts_with(']'))
            });
            assert!(alone, "{segment}: {scan}");
        }
        if !segment.contains("same message") {
            continue;
        }
        // Alone, the steps' bits test only what the filter has not
        // established: the channel, the window and the key are tested once
        // per row, not once per step.
        let aggregate = plan
            .lines()
            .find(|l| l.contains("seg_sequence("))
            .unwrap_or_else(|| panic!("no sequence aggregate in {plan}"));
        let bits = aggregate.split("seg_sequence(").nth(1).unwrap_or_default();
        let bits = bits.split(") AS q0").next().unwrap_or_default();
        let bits = bits.replace("CAST(events.ts AS Int64)", "");
        assert!(bits.contains("CASE WHEN events.event"), "{aggregate}");
        for established in ["events.ts", "events.channel", "IS NOT NULL"] {
            assert!(!bits.contains(established), "{segment}: {aggregate}");
        }
    }
}

/// Conditions joined by `or`: the counting operator emits only the
/// profiles that reach one condition's count (the plan says which), and
/// the ids are those the conditions give one by one, joined as sets.
#[test]
fn or_conditions_emit_only_the_profiles_reaching_a_count() {
    use std::collections::BTreeSet;
    let data = data();
    let ids = |expr: &str| -> BTreeSet<i64> {
        common::run_ids(expr, &data, "2026-11-01")
            .into_iter()
            .collect()
    };
    let (a, b, c, d) = (
        ids("click.email at_least 2"),
        ids("opened.email at_least 3 last 30d"),
        ids("delivered.sms at_least 1"),
        ids("unsubscribe_click.email exists"),
    );
    let any: BTreeSet<i64> = a.iter().chain(&b).chain(&c).copied().collect();
    let but_not: BTreeSet<i64> = a.union(&b).copied().filter(|p| !d.contains(p)).collect();
    for (expr, emits, want) in [
        (
            "click.email at_least 2 or opened.email at_least 3 last 30d or delivered.sms at_least 1",
            "emits profiles where any of [count 0 >= 2, count 1 >= 3, count 2 >= 1]",
            any,
        ),
        (
            "(click.email at_least 2 or opened.email at_least 3 last 30d) and not unsubscribe_click.email exists",
            "emits profiles where any of [",
            but_not,
        ),
    ] {
        let (code, plan, err) = common::seg_out(&[
            "compile", "-e", expr, "--emit", "physical", "--data", &data, "--as-of", "2026-11-01",
        ]);
        assert_eq!(code, 0, "{err}");
        assert!(plan.contains(emits), "{expr}: {plan}");
        assert!(want.len() > 10 && want.len() < 2000, "{expr}: {}", want.len());
        assert_eq!(ids(expr), want, "{expr}");
    }
}

#[test]
fn compile_emits_the_physical_plan_with_seg_s_operators() {
    let physical = |limit: &str| {
        common::seg()
            .env("SEG_MEMORY_LIMIT", limit)
            .env("DATAFUSION_EXECUTION_TARGET_PARTITIONS", "2")
            .args([
                "compile",
                &example("retargeting.seg"),
                "--segment",
                "target",
                "--emit",
                "physical",
                "--data",
                &data(),
                "--as-of",
                "2026-11-01",
            ])
            .output()
            .expect("run seg")
    };
    let out = physical("1G");
    let plan = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{plan}");
    // The example's 2 000 profile ids are a range: counts in arrays, and
    // dictionary equalities shown as the comparisons they replace.
    assert_eq!(
        plan.matches("DenseCountExec: key=profile_id@0, range=[1, 2000]")
            .count(),
        1,
        "{plan}"
    );
    assert!(!plan.contains("AggregateExec"), "{plan}");
    assert!(plan.contains("event@2 = unsubscribe_click"), "{plan}");
    // 2 000 profiles × 5 counts do not fit half of 8 KiB: DataFusion's
    // aggregation.
    let out = physical("8K");
    let plan = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{plan}");
    assert!(!plan.contains("DenseCountExec"), "{plan}");
    assert!(
        plan.contains("AggregateExec: mode=FinalPartitioned"),
        "{plan}"
    );
    // The events are a union of scans (files read with and without `ts`),
    // with more partitions than the target: the partial aggregation still
    // runs in two.
    let lines: Vec<&str> = plan.lines().map(str::trim).collect();
    let partial = lines
        .iter()
        .position(|l| l.starts_with("AggregateExec: mode=Partial"))
        .unwrap_or_else(|| panic!("no partial aggregation in {plan}"));
    assert!(
        lines[partial + 1].starts_with("RepartitionExec: partitioning=RoundRobinBatch(2)"),
        "{plan}"
    );
    assert!(
        lines[partial + 2..]
            .iter()
            .any(|l| l.starts_with("UnionExec")),
        "{plan}"
    );
    // Without data there is no plan to show.
    let (code, _, err) = seg_out(&["compile", &example("retargeting.seg"), "--emit", "physical"]);
    assert_eq!(code, 2);
    assert!(err.contains("--emit physical needs --data DIR"), "{err}");
}

#[test]
fn a_small_memory_limit_spills_and_a_tiny_one_says_what_to_raise() {
    let args = [
        "run",
        &example("retargeting.seg"),
        "--data",
        &data(),
        "--all",
        "--as-of",
        "2026-11-01",
        "--format",
        "csv",
    ];
    let run = |limit: Option<&str>| {
        let mut cmd = common::seg();
        if let Some(l) = limit {
            cmd.env("SEG_MEMORY_LIMIT", l);
        }
        cmd.args(args).output().expect("run seg")
    };
    let unbounded = run(None);
    assert!(unbounded.status.success());
    let bounded = run(Some("64M"));
    assert!(bounded.status.success());
    assert_eq!(bounded.stdout, unbounded.stdout);

    let tiny = run(Some("16K"));
    assert_eq!(tiny.status.code(), Some(2));
    let err = String::from_utf8_lossy(&tiny.stderr);
    assert!(
        err.contains("raise it, for example SEG_MEMORY_LIMIT=4G"),
        "{err}"
    );
    assert!(tiny.stdout.is_empty());

    let bad = run(Some("lots"));
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("SEG_MEMORY_LIMIT"));
}

#[test]
fn check_and_compile_take_an_expression() {
    let (code, out, err) = seg_out(&["check", "-e", "opened.email then click.email within 1h"]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    let (code, _, err) = seg_out(&["check", "-e", "sample 10 %", "--color", "never"]);
    assert_eq!(code, 1);
    assert!(err.contains("<expr>:1:8"), "{err}");
    assert!(err.contains("without a space: `10%`"), "{err}");
    // Files and an expression are checked together.
    let (code, _, err) = seg_out(&[
        "check",
        &example("01_exists.seg"),
        "-e",
        "click.email last_seen",
        "--color",
        "never",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("E026"), "{err}");
    let (code, sql, err) = seg_out(&[
        "compile",
        "-e",
        "delivered.email then not opened.email within 1d same message last 30d",
        "--emit",
        "sql",
        "--dialect",
        "postgres",
        "--as-of",
        "2026-11-01",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(sql.contains("NOT EXISTS"), "{sql}");
    assert!(sql.contains("INTERVAL '86400 seconds'"), "{sql}");
}

#[test]
fn run_prints_the_ids_of_each_new_construct_on_the_examples() {
    // Counts checked against hand-written DuckDB SQL over the same data
    // (self-joins for the sequences, min/max for first/last seen).
    for (script, count) in [
        (
            "delivered.email then opened.email within 1h same message last 30d",
            "555",
        ),
        (
            "delivered.email then not opened.email within 1d same message last 30d",
            "1718",
        ),
        (
            "sent.email then opened.email then click.email within 2d last 30d",
            "295",
        ),
        ("click.email last_seen before 30d ago", "371"),
        (
            "opened.email at_least 4 weeks last 90d and sample 50%",
            "303",
        ),
        ("opened.email at_least 2 months", "1204"),
        ("sample 10% seed 7", "201"),
    ] {
        let (code, out, err) = seg_out(&[
            "run",
            "-e",
            script,
            "--data",
            &data(),
            "--as-of",
            "2026-11-01",
            "--format",
            "count",
        ]);
        assert_eq!((code, out.trim()), (0, count), "{script}: {err}");
    }
}
