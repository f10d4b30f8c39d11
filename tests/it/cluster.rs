//! `seg run --cluster`: a real Ballista cluster of `seg scheduler` and two
//! `seg executor` processes on loopback, against the same runs in one
//! process.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{TimestampMicrosecondArray, UInt64Array};

use crate::common::{
    example_scripts, examples_dir, free_port, seg, seg_out, seg_within, wait_for_port,
};

/// A scheduler and executors, killed when dropped.
pub(crate) struct Cluster {
    url: String,
    scheduler: Child,
    executors: Vec<Child>,
    _work: tempfile::TempDir,
}

impl Cluster {
    pub(crate) fn start(executors: usize) -> Cluster {
        let work = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut scheduler = seg()
            .args(["scheduler", "--bind", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start seg scheduler");
        wait_for_port(port, &mut scheduler, "seg scheduler");
        let mut cluster = Cluster {
            url: format!("df://127.0.0.1:{port}"),
            scheduler,
            executors: Vec::new(),
            _work: work,
        };
        for i in 0..executors {
            cluster.add_executor(port, i);
        }
        cluster
    }

    fn add_executor(&mut self, scheduler_port: u16, i: usize) {
        self.add_executor_with(scheduler_port, i, None);
    }

    /// An executor; with `hide`, one that sees an empty directory at that
    /// path (a mount namespace of its own).
    fn add_executor_with(&mut self, scheduler_port: u16, i: usize, hide: Option<&Path>) {
        let port = free_port();
        let dir = self._work.path().join(format!("executor-{i}"));
        let mut command = match hide {
            None => seg(),
            Some(hidden) => {
                let mut c = Command::new("unshare");
                c.args([
                    "-m",
                    "sh",
                    "-c",
                    r#"mount -t tmpfs none "$1" && shift && exec "$@""#,
                    "sh",
                ])
                .arg(hidden)
                .arg(env!("CARGO_BIN_EXE_seg"));
                c
            }
        };
        let mut child = command
            .args([
                "executor",
                "--scheduler",
                &format!("127.0.0.1:{scheduler_port}"),
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--concurrency",
                "2",
                "--memory-limit",
                "512M",
                "--work-dir",
            ])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start seg executor");
        wait_for_port(port + 1, &mut child, "seg executor");
        self.executors.push(child);
    }

    fn scheduler_port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// `seg run` on the cluster, in eight partitions (so that both
    /// executors get tasks and read each other's shuffle output).
    pub(crate) fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = seg()
            .args(args)
            .args(["--cluster", &self.url, "--timeout", "120s"])
            .env("DATAFUSION_EXECUTION_TARGET_PARTITIONS", "8")
            .output()
            .expect("run seg");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The jobs an executor has written shuffle output for.
    fn jobs_of(&self, i: usize) -> usize {
        std::fs::read_dir(self._work.path().join(format!("executor-{i}")))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| !e.file_name().to_string_lossy().starts_with("datafusion-"))
                    .count()
            })
            .unwrap_or(0)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self
            .executors
            .iter_mut()
            .chain(std::iter::once(&mut self.scheduler))
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A query of the library on the cluster, which must end within two minutes.
fn on_time<T>(rt: &tokio::runtime::Runtime, work: impl std::future::Future<Output = T>) -> T {
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(120), work).await })
        .expect("the cluster answers within two minutes")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// Every example and every format give the same output on the cluster as in
/// one process, and so do the §10 constructs on generated data; a cluster
/// that loses an executor mid-query gives the right ids or a clear error.
#[test]
fn a_cluster_gives_the_answers_of_one_process() {
    let cluster = Cluster::start(2);
    let data = examples_dir().join("data");
    let data = path(&data);

    // Every example script, every segment at once and in every format.
    for script in &example_scripts() {
        let script = script.as_str();
        for format in ["table", "csv", "json", "count"] {
            let args = [
                "run",
                script,
                "--data",
                data,
                "--all",
                "--as-of",
                "2026-11-01",
                "--format",
                format,
            ];
            let local = seg_out(&args);
            let remote = cluster.run(&args);
            assert_eq!(local.0, 0, "{script}: {}", local.2);
            assert_eq!(remote, local, "{script} --format {format}");
        }
    }

    // Both executors ran tasks (and so read each other's output).
    for i in 0..2 {
        assert!(cluster.jobs_of(i) > 0, "executor {i} ran no task");
    }

    // One segment alone (the plan of one segment, not of a script), and the
    // Parquet output written atomically by the client.
    let out = tempfile::tempdir().unwrap();
    let retargeting = examples_dir().join("retargeting.seg");
    let local_file = out.path().join("local.parquet");
    let remote_file = out.path().join("remote.parquet");
    for (file, on_cluster) in [(&local_file, false), (&remote_file, true)] {
        let args = [
            "run",
            path(&retargeting),
            "--data",
            data,
            "--segment",
            "gone_quiet",
            "--as-of",
            "2026-11-01",
            "--format",
            "parquet",
            "--output",
            path(file),
        ];
        let (code, _, err) = if on_cluster {
            cluster.run(&args)
        } else {
            seg_out(&args)
        };
        assert_eq!(code, 0, "{err}");
    }
    assert_eq!(
        std::fs::read(&remote_file).unwrap(),
        std::fs::read(&local_file).unwrap(),
        "the same Parquet file"
    );

    // Events in Hive folders, the channel and event in the folder names
    // only (see `writers::hive_partition_values_are_read_as_columns`): the
    // executors read the values the client found, with the answers of the
    // unpartitioned events.
    let hive = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(examples_dir().join("data")).unwrap() {
        let file = entry.unwrap().path();
        if file.is_file() {
            std::fs::copy(&file, hive.path().join(file.file_name().unwrap())).unwrap();
        }
    }
    crate::writers::partition_events(
        &examples_dir().join("data"),
        hive.path(),
        &["channel", "event"],
    );
    let hive_args = [
        "run",
        path(&retargeting),
        "--data",
        path(hive.path()),
        "--all",
        "--as-of",
        "2026-11-01",
        "--format",
        "csv",
    ];
    let mut flat_args = hive_args;
    flat_args[3] = data;
    let local = seg_out(&flat_args);
    assert_eq!(local.0, 0, "{}", local.2);
    assert!(local.1.lines().count() > 100, "{}", local.1);
    assert_eq!(cluster.run(&hive_args), local);

    // SPEC §10 on generated data, whose profiles have many events each.
    let gen = tempfile::tempdir().unwrap();
    let (code, _, err) = seg_out(&[
        "gen",
        "--out",
        path(gen.path()),
        "--profiles",
        "2000",
        "--events",
        "200000",
        "--days",
        "60",
        "--end",
        "2026-11-01",
    ]);
    assert_eq!(code, 0, "{err}");
    let script = "\
segment seq1 = delivered.email then opened.email within 1h same message last 30d;
segment seq2 = delivered.email then not opened.email within 1d same message last 30d;
segment seq3 = sent.email then opened.email then click.email within 2d last 30d;
segment lapsed = click.email last_seen before 30d ago;
segment regulars = opened.email at_least 4 weeks last 60d and sample 50%;
segment many = click.* at_least 3 last 45d and not seq1 or regulars;
";
    let args = [
        "run",
        "-e",
        script,
        "--data",
        path(gen.path()),
        "--all",
        "--as-of",
        "2026-11-01",
        "--format",
        "csv",
    ];
    let local = seg_out(&args);
    assert_eq!(local.0, 0, "{}", local.2);
    assert!(local.1.lines().count() > 100, "the segments are not empty");
    assert_eq!(cluster.run(&args), local);

    // The differential corpus: random segments of every construct over the
    // SQL tests' data (twelve files, edge cases of every kind), alone and all
    // at once.
    let corpus_data = crate::sql_diff::data(7, crate::sql_diff::Universe::Listed);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let remote = rt
        .block_on(seglang::Engine::open_on_cluster(
            corpus_data.path(),
            &cluster.url,
            Duration::from_secs(5),
        ))
        .unwrap();
    let local_engine = seglang::Engine::open(corpus_data.path()).unwrap();
    let as_of = seglang::syntax::literal::parse_datetime("2026-11-01T00:00:00Z").unwrap();
    let mut cases = crate::sql_diff::random_scripts(11, 60, remote.objects());
    // A join whose side is empty (no counts): Ballista's adaptive planner
    // never finished such a job.
    cases.push("click.email at_most 0 times in messages 99999".to_string());
    let mut bare = Vec::new();
    for script in &cases {
        let program = seglang::compile(script, Some(remote.objects()))
            .unwrap()
            .program;
        let all: Vec<usize> = (0..program.segments.len()).collect();
        assert_eq!(
            on_time(&rt, remote.run_many(&program, &all, as_of)).unwrap(),
            rt.block_on(local_engine.run_many(&program, &all, as_of))
                .unwrap(),
            "{script}"
        );
        if !script.contains("segment ") {
            bare.push(format!("segment c{} = {script};", bare.len()));
        }
    }
    assert!(bare.len() > 20, "most cases are bare expressions");
    let joined = bare.join("\n");
    let corpus_args = [
        "run",
        "-e",
        &joined,
        "--data",
        path(corpus_data.path()),
        "--all",
        "--as-of",
        "2026-11-01T00:00:00Z",
        "--format",
        "csv",
    ];
    let corpus_local = seg_out(&corpus_args);
    assert_eq!(corpus_local.0, 0, "{}", corpus_local.2);
    assert_eq!(
        cluster.run(&corpus_args),
        corpus_local,
        "{} segments at once",
        bare.len()
    );
    drop((remote, local_engine));

    // The library on the cluster: the same ids, and one scan of the events
    // per segment, as in one process.
    let remote = rt
        .block_on(seglang::Engine::open_on_cluster(
            gen.path(),
            &cluster.url,
            Duration::from_secs(5),
        ))
        .unwrap();
    let local_engine = seglang::Engine::open(gen.path()).unwrap();
    let program = seglang::compile(script, Some(remote.objects()))
        .unwrap()
        .program;
    let as_of = seglang::syntax::literal::parse_datetime("2026-11-01").unwrap();
    for (i, segment) in program.segments.iter().enumerate() {
        let plan = remote.optimized_plan(&program, i, as_of).unwrap();
        let plan = plan.display_indent().to_string();
        assert_eq!(
            plan.matches("TableScan: events").count(),
            1,
            "{}:\n{plan}",
            segment.name
        );
        assert_eq!(
            on_time(&rt, remote.run(&program, i, as_of)).unwrap(),
            rt.block_on(local_engine.run(&program, i, as_of)).unwrap(),
            "{}",
            segment.name
        );
    }
    let all: Vec<usize> = (0..program.segments.len()).collect();
    assert_eq!(
        on_time(&rt, remote.run_many(&program, &all, as_of)).unwrap(),
        rt.block_on(local_engine.run_many(&program, &all, as_of))
            .unwrap()
    );

    // The REPL on the cluster.
    let mut repl = seg()
        .args([
            "repl",
            "--data",
            path(gen.path()),
            "--as-of",
            "2026-11-01",
            "--cluster",
            &cluster.url,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        repl.stdin.as_mut().unwrap(),
        b"delivered.email then opened.email within 1h same message last 30d\n",
    )
    .unwrap();
    let done = repl.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&done.stdout);
    let seq1 = local.1.lines().filter(|l| l.starts_with("seq1,")).count();
    assert!(
        text.contains(&format!("{seq1} profiles")),
        "{text}{}",
        String::from_utf8_lossy(&done.stderr)
    );

    // A value that does not decode as the query reads it, on an executor:
    // the client, which reads the same directory, names the file, the
    // column and the row group, as a run in one process does.
    let bad = crate::common::Data::empty();
    crate::common::write_table(
        &bad.path().join("events.parquet"),
        vec![
            ("profile_id", Arc::new(UInt64Array::from(vec![1, u64::MAX]))),
            ("channel", crate::common::strs(&["email", "email"])),
            ("event", crate::common::strs(&["click", "click"])),
            (
                "ts",
                Arc::new(TimestampMicrosecondArray::from(vec![0, 0]).with_timezone("UTC")),
            ),
        ],
    );
    let (code, _, err) = cluster.run(&[
        "run",
        "-e",
        "click.email exists",
        "--data",
        path(bad.path()),
        "--as-of",
        "2026-11-01",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("events.parquet: column `profile_id`, row group 0: a UInt64 value does not fit in int64")
            && err.contains("the cluster's job"),
        "{err}"
    );

    // An executor killed while a query runs: the query completes on the
    // other one (Ballista resubmits its tasks) or fails naming what was
    // lost; never a wrong answer, never a hang.
    let mut cluster = cluster;
    let work = cluster._work.path().join("executor-0");
    let jobs = |dir: &Path| -> std::collections::BTreeSet<std::ffi::OsString> {
        std::fs::read_dir(dir)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default()
    };
    let before = jobs(&work);
    let mut counted = args;
    counted[counted.len() - 1] = "count";
    let count = seg_out(&counted);
    let mut query = seg()
        .args(counted)
        .args(["--cluster", &cluster.url, "--timeout", "90s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Killed as soon as it has written the output of a task of this job.
    let started = Instant::now();
    while jobs(&work) == before
        && query.try_wait().unwrap().is_none()
        && started.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut lost = cluster.executors.remove(0);
    lost.kill().unwrap();
    lost.wait().unwrap();
    let killed_mid_job = jobs(&work) != before;
    let done = query.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(120));
    eprintln!(
        "executor killed after it wrote a task's output: {killed_mid_job}; the query took {:?} more, exit {:?}",
        started.elapsed(),
        done.status.code()
    );
    let stdout = String::from_utf8_lossy(&done.stdout);
    let stderr = String::from_utf8_lossy(&done.stderr);
    match done.status.code() {
        Some(0) => assert_eq!(stdout, count.1, "the same ids after losing an executor"),
        Some(2) => assert!(
            stderr.contains("executor") || stderr.contains("--timeout"),
            "the error says what was lost: {stderr}"
        ),
        other => panic!("exit {other:?}: {stderr}"),
    }
    // The cluster still answers with one executor.
    assert_eq!(cluster.run(&args), local);
}

#[test]
fn an_unreachable_scheduler_fails_at_once_with_its_address() {
    let port = free_port();
    let url = format!("df://127.0.0.1:{port}");
    let data = examples_dir().join("data");
    let started = Instant::now();
    let (code, out, err) = seg_out(&[
        "run",
        "-e",
        "click.email",
        "--data",
        path(&data),
        "--cluster",
        &url,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert!(err.contains(&url), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "within seconds"
    );

    // Not a scheduler URL at all.
    let (code, _, err) = seg_out(&[
        "run",
        "-e",
        "click.email",
        "--data",
        path(&data),
        "--cluster",
        "http://localhost:50050",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("df://HOST:PORT"), "{err}");

    // An executor whose scheduler never answers gives up with its address.
    let (code, _, err) = seg_out(&[
        "executor",
        "--scheduler",
        &format!("127.0.0.1:{port}"),
        "--bind",
        &format!("127.0.0.1:{}", free_port()),
        "--memory-limit",
        "lots",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--memory-limit"), "{err}");
}

/// Whether this process may make mount namespaces and mount in them (root,
/// usually).
fn can_unshare() -> bool {
    let Ok(dir) = tempfile::tempdir() else {
        return false;
    };
    Command::new("unshare")
        .args([
            "-m",
            "sh",
            "-c",
            r#"mount -t tmpfs none "$1" && mount --bind "$1" "$1""#,
            "sh",
        ])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A data path that the scheduler or an executor cannot read: an error that
/// names the path and the node, never the ids of no files.
#[test]
fn a_path_a_node_cannot_read_is_an_error_naming_both() {
    if !can_unshare() {
        eprintln!("skipped: `unshare -m` is not allowed here (it needs root)");
        return;
    }
    let gen = tempfile::tempdir().unwrap();
    let (code, _, err) = seg_out(&[
        "gen",
        "--out",
        path(gen.path()),
        "--profiles",
        "500",
        "--events",
        "20000",
    ]);
    assert_eq!(code, 0, "{err}");
    let query = ["run", "-e", "click.email exists", "--data"];

    // The client sees the data at a path the cluster does not.
    let mut cluster = Cluster::start(1);
    let hidden = tempfile::tempdir().unwrap();
    let out = Command::new("unshare")
        .args([
            "-m",
            "sh",
            "-c",
            r#"mount --bind "$1" "$2" && shift 2 && exec "$@""#,
            "sh",
        ])
        .arg(gen.path())
        .arg(hidden.path())
        .arg(env!("CARGO_BIN_EXE_seg"))
        .args(query)
        .arg(hidden.path())
        .args(["--cluster", &cluster.url, "--timeout", "60s"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty());
    let missing = hidden.path().join("events");
    assert!(err.contains(path(&missing)), "{err}");
    assert!(err.contains("the scheduler"), "{err}");

    // An executor that sees an empty directory there.
    let port = cluster.scheduler_port();
    for mut child in cluster.executors.drain(..) {
        let _ = child.kill();
        let _ = child.wait();
    }
    cluster.add_executor_with(port, 9, Some(gen.path()));
    let mut args = query.to_vec();
    args.push(path(gen.path()));
    let (code, out, err) = cluster.run(&args);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert!(
        err.contains(&path(&gen.path().join("events"))[1..]),
        "{err}"
    );
    assert!(err.contains("executor"), "{err}");
}

/// A cluster with no executor: the query waits for one, and `--timeout`
/// ends the wait.
#[test]
fn the_timeout_bounds_the_wait_for_a_cluster() {
    let cluster = Cluster::start(0);
    let data = examples_dir().join("data");
    let started = Instant::now();
    let (code, out, err) = seg_out(&[
        "run",
        "-e",
        "click.email exists",
        "--data",
        path(&data),
        "--cluster",
        &cluster.url,
        "--timeout",
        "2s",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert!(err.contains("no answer within 2s (--timeout)"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(15));
    let (code, _, err) = seg_out(&[
        "run",
        "-e",
        "click.email",
        "--data",
        "x",
        "--timeout",
        "soon",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--timeout"), "{err}");
}

/// A scheduler's port taken: an error naming it, not a hang.
#[test]
fn a_taken_port_is_an_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let bind = addr.to_string();
    let Some((code, err)) = seg_within(&["scheduler", "--bind", &bind], Duration::from_secs(20))
    else {
        panic!("seg scheduler kept running on a taken port");
    };
    assert_eq!(code, Some(2));
    assert!(err.contains(&bind), "{err}");
}
