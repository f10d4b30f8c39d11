//! Test support: tiny Parquet fixtures written with arrow, and helpers that run
//! segments through the library and through the real `seg` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    ArrayRef, DictionaryArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    TimestampMillisecondArray, TimestampNanosecondArray, TimestampSecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;

/// One event row.
#[derive(Clone, Debug)]
pub struct Ev {
    pub p: i64,
    pub ch: &'static str,
    pub ev: &'static str,
    pub ts: &'static str,
    pub msg: Option<i64>,
    pub camp: Option<i64>,
    pub tmpl: Option<i64>,
    pub link: Option<&'static str>,
}

/// An event of profile `p`: `ev("click.email", p, "2026-01-10")`.
pub fn ev(what: &'static str, p: i64, ts: &'static str) -> Ev {
    let (e, c) = what.split_once('.').expect("event.channel");
    Ev {
        p,
        ch: c,
        ev: e,
        ts,
        msg: None,
        camp: None,
        tmpl: None,
        link: None,
    }
}

impl Ev {
    pub fn msg(mut self, m: i64) -> Self {
        self.msg = Some(m);
        self
    }
    pub fn camp(mut self, c: i64) -> Self {
        self.camp = Some(c);
        self
    }
    pub fn tmpl(mut self, t: i64) -> Self {
        self.tmpl = Some(t);
        self
    }
    pub fn link(mut self, l: &'static str) -> Self {
        self.link = Some(l);
        self
    }
}

/// How to encode the events file.
#[derive(Clone, Copy, Debug)]
pub struct Encoding {
    pub dictionary: bool,
    pub unit: TimeUnit,
    pub zoned: bool,
}

pub const PLAIN_US: Encoding = Encoding {
    dictionary: false,
    unit: TimeUnit::Microsecond,
    zoned: true,
};

pub fn nanos(ts: &str) -> i64 {
    seglang::syntax::literal::parse_datetime(ts)
        .unwrap_or_else(|| panic!("bad fixture time {ts}"))
        .timestamp_nanos_opt()
        .expect("in range")
}

fn strings(values: Vec<Option<&str>>, dictionary: bool) -> ArrayRef {
    if dictionary {
        Arc::new(values.into_iter().collect::<DictionaryArray<Int32Type>>())
    } else {
        Arc::new(StringArray::from(values))
    }
}

/// Writes events to `path` as Parquet.
pub fn write_events(path: &Path, rows: &[Ev], enc: Encoding) {
    write_events_with(path, rows, enc, None);
}

/// Writes events to `path` as Parquet with the writer's `props`.
pub fn write_events_with(
    path: &Path,
    rows: &[Ev],
    enc: Encoding,
    props: Option<datafusion::parquet::file::properties::WriterProperties>,
) {
    let tz: Option<Arc<str>> = enc.zoned.then(|| "UTC".into());
    let str_type = if enc.dictionary {
        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
    } else {
        DataType::Utf8
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("profile_id", DataType::Int64, false),
        Field::new("channel", str_type.clone(), false),
        Field::new("event", str_type.clone(), false),
        Field::new("ts", DataType::Timestamp(enc.unit, tz.clone()), false),
        Field::new("message_id", DataType::Int64, true),
        Field::new("campaign_id", DataType::Int64, true),
        Field::new("template_id", DataType::Int64, true),
        Field::new("link", str_type, true),
    ]));
    let ns: Vec<i64> = rows.iter().map(|r| nanos(r.ts)).collect();
    let ts: ArrayRef = match enc.unit {
        TimeUnit::Second => Arc::new(
            TimestampSecondArray::from(ns.iter().map(|n| n / 1_000_000_000).collect::<Vec<_>>())
                .with_timezone_opt(tz),
        ),
        TimeUnit::Millisecond => Arc::new(
            TimestampMillisecondArray::from(ns.iter().map(|n| n / 1_000_000).collect::<Vec<_>>())
                .with_timezone_opt(tz),
        ),
        TimeUnit::Microsecond => Arc::new(
            TimestampMicrosecondArray::from(ns.iter().map(|n| n / 1_000).collect::<Vec<_>>())
                .with_timezone_opt(tz),
        ),
        TimeUnit::Nanosecond => Arc::new(TimestampNanosecondArray::from(ns).with_timezone_opt(tz)),
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(
            rows.iter().map(|r| r.p).collect::<Vec<_>>(),
        )),
        strings(rows.iter().map(|r| Some(r.ch)).collect(), enc.dictionary),
        strings(rows.iter().map(|r| Some(r.ev)).collect(), enc.dictionary),
        ts,
        Arc::new(Int64Array::from(
            rows.iter().map(|r| r.msg).collect::<Vec<_>>(),
        )),
        Arc::new(Int64Array::from(
            rows.iter().map(|r| r.camp).collect::<Vec<_>>(),
        )),
        Arc::new(Int64Array::from(
            rows.iter().map(|r| r.tmpl).collect::<Vec<_>>(),
        )),
        strings(rows.iter().map(|r| r.link).collect(), enc.dictionary),
    ];
    write_batch_with(
        path,
        RecordBatch::try_new(schema, columns).expect("batch"),
        props,
    );
}

pub fn write_batch(path: &Path, batch: RecordBatch) {
    write_batch_with(path, batch, None);
}

pub fn write_batch_with(
    path: &Path,
    batch: RecordBatch,
    props: Option<datafusion::parquet::file::properties::WriterProperties>,
) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    let file = std::fs::File::create(path).expect("create");
    let mut w = ArrowWriter::try_new(file, batch.schema(), props).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
}

/// Writes a table of int64 and utf8 columns.
pub fn write_table(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .expect("batch");
    write_batch(path, batch);
}

pub fn ints(v: &[i64]) -> ArrayRef {
    Arc::new(Int64Array::from(v.to_vec()))
}

pub fn strs(v: &[&str]) -> ArrayRef {
    Arc::new(StringArray::from(v.to_vec()))
}

/// A data directory in a temp dir.
pub struct Data {
    pub dir: tempfile::TempDir,
}

impl Data {
    pub fn new(events: &[Ev]) -> Data {
        Data::with_encoding(events, PLAIN_US)
    }

    pub fn with_encoding(events: &[Ev], enc: Encoding) -> Data {
        let dir = tempfile::tempdir().expect("tempdir");
        write_events(&dir.path().join("events.parquet"), events, enc);
        Data { dir }
    }

    /// Events in `files` files under `events/`, each a stretch of time (in
    /// the order of `ts`), as partitioned event tables are.
    pub fn in_time_files(events: &[Ev], files: usize) -> Data {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sorted = events.to_vec();
        sorted.sort_by_key(|e| nanos(e.ts));
        let per_file = sorted.len().div_ceil(files.max(1)).max(1);
        for (i, chunk) in sorted.chunks(per_file).enumerate() {
            let path = dir.path().join(format!("events/part-{i:05}.parquet"));
            write_events(&path, chunk, PLAIN_US);
        }
        Data { dir }
    }

    /// An empty data directory (add tables yourself).
    pub fn empty() -> Data {
        Data {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn profiles(self, ids: &[i64]) -> Data {
        write_table(
            &self.path().join("profiles.parquet"),
            vec![("profile_id", ints(ids))],
        );
        self
    }

    pub fn campaigns(self, rows: &[(i64, &str)]) -> Data {
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let names: Vec<&str> = rows.iter().map(|r| r.1).collect();
        write_table(
            &self.path().join("campaigns.parquet"),
            vec![("campaign_id", ints(&ids)), ("name", strs(&names))],
        );
        self
    }

    pub fn templates(self, rows: &[(i64, &str)]) -> Data {
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let names: Vec<&str> = rows.iter().map(|r| r.1).collect();
        write_table(
            &self.path().join("templates.parquet"),
            vec![("template_id", ints(&ids)), ("name", strs(&names))],
        );
        self
    }

    pub fn tags(self, rows: &[(&str, i64, &str)]) -> Data {
        write_table(
            &self.path().join("tags.parquet"),
            vec![
                (
                    "object",
                    strs(&rows.iter().map(|r| r.0).collect::<Vec<_>>()),
                ),
                (
                    "object_id",
                    ints(&rows.iter().map(|r| r.1).collect::<Vec<_>>()),
                ),
                ("tag", strs(&rows.iter().map(|r| r.2).collect::<Vec<_>>())),
            ],
        );
        self
    }

    pub fn attributes(self, rows: &[(&str, i64, &str, &str)]) -> Data {
        write_table(
            &self.path().join("attributes.parquet"),
            vec![
                (
                    "object",
                    strs(&rows.iter().map(|r| r.0).collect::<Vec<_>>()),
                ),
                (
                    "object_id",
                    ints(&rows.iter().map(|r| r.1).collect::<Vec<_>>()),
                ),
                ("key", strs(&rows.iter().map(|r| r.2).collect::<Vec<_>>())),
                ("value", strs(&rows.iter().map(|r| r.3).collect::<Vec<_>>())),
            ],
        );
        self
    }

    /// Opens the data and compiles a bare expression or a one-segment
    /// script: the engine, the program, its last segment and `as_of`.
    fn compiled(
        &self,
        script: &str,
        as_of: &str,
    ) -> (seglang::Engine, seglang::Program, usize, DateTime<Utc>) {
        let engine = seglang::Engine::open(self.path()).expect("open data");
        let compiled = seglang::compile(script, Some(engine.objects()))
            .unwrap_or_else(|d| panic!("script {script:?} does not compile: {d:?}"));
        let last = compiled.program.segments.len() - 1;
        let as_of = seglang::syntax::literal::parse_datetime(as_of).expect("as_of");
        (engine, compiled.program, last, as_of)
    }

    /// Runs a bare expression or a one-segment script at `as_of`.
    pub fn ids(&self, script: &str, as_of: &str) -> Vec<i64> {
        let (engine, program, last, as_of) = self.compiled(script, as_of);
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(engine.run(&program, last, as_of))
            .unwrap_or_else(|e| panic!("running {script:?}: {e}"))
    }

    /// The plan of a bare expression or one-segment script at `as_of`, after
    /// DataFusion's optimizer (its scans list the columns they read).
    pub fn optimized_plan(&self, script: &str, as_of: &str) -> String {
        let (engine, program, last, as_of) = self.compiled(script, as_of);
        engine
            .optimized_plan(&program, last, as_of)
            .unwrap_or_else(|e| panic!("planning {script:?}: {e}"))
            .display_indent()
            .to_string()
    }

    /// The columns the plan of `script` reads from events.
    pub fn event_columns_read(&self, script: &str, as_of: &str) -> Vec<String> {
        let plan = self.optimized_plan(script, as_of);
        let scan = plan
            .lines()
            .find(|l| l.contains("TableScan: events"))
            .unwrap_or_else(|| panic!("no scan of events in\n{plan}"));
        let list = scan
            .split("projection=[")
            .nth(1)
            .and_then(|r| r.split(']').next())
            .unwrap_or_else(|| panic!("no projection in {scan}"));
        list.split(", ").map(str::to_string).collect()
    }
}

/// The built `seg` binary.
pub fn seg() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_seg"));
    cmd.env_remove("NO_COLOR");
    cmd
}

/// Runs `seg` with args; returns (exit code, stdout, stderr).
pub fn seg_out(args: &[&str]) -> (i32, String, String) {
    let out = seg().args(args).output().expect("run seg");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// Every example script (`examples/*.seg`), sorted.
pub fn example_scripts() -> Vec<String> {
    let mut scripts: Vec<_> = std::fs::read_dir(examples_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .map(|p| p.to_str().expect("a UTF-8 path").to_string())
        .collect();
    scripts.sort();
    assert!(scripts.len() > 20, "the examples are there");
    scripts
}

/// The Python the tests run: `$PYTHON`, or `python3`.
pub fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Whether `python` imports `modules` (`"moto.server, boto3"`). When it
/// does not, a test of `what` is skipped with a message, unless
/// `SEG_REQUIRE_ENGINES=1` (as `.ci/run` sets, after installing them),
/// where it fails.
pub fn python_has(python: &str, modules: &str, what: &str) -> bool {
    let imported = std::process::Command::new(python)
        .args(["-c", &format!("import {modules}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !imported {
        let why = format!("{python} cannot import {modules} (.ci/run installs them)");
        assert!(
            !std::env::var("SEG_REQUIRE_ENGINES").is_ok_and(|v| v == "1"),
            "{what}: {why}"
        );
        eprintln!("SKIPPED {what}: {why}");
    }
    imported
}

/// A port nobody listens on now (and, for executors, the one after it).
pub fn free_port() -> u16 {
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

pub fn wait_for_port(port: u16, child: &mut std::process::Child, what: &str) {
    let started = std::time::Instant::now();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    while std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(200))
        .is_err()
    {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening: {status}");
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "{what} did not listen on {port} within 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// `seg run -e EXPR` over `data` at `as_of`: the ids, one a line.
pub fn run_ids(expr: &str, data: &str, as_of: &str) -> Vec<i64> {
    let (code, out, err) = seg_out(&[
        "run", "-e", expr, "--data", data, "--as-of", as_of, "--format", "csv",
    ]);
    assert_eq!(code, 0, "seg run -e {expr:?} failed: {err}");
    out.lines()
        .skip(1)
        .map(|l| l.parse().unwrap_or_else(|_| panic!("not an id: {l:?}")))
        .collect()
}

/// Runs `seg` with `args`, killed once `limit` has passed: (exit code,
/// stderr), or `None` when it had to be killed. Stdout is dropped.
pub fn seg_within(args: &[&str], limit: std::time::Duration) -> Option<(Option<i32>, String)> {
    use std::io::Read;
    let mut child = seg()
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run seg");
    // Read as it comes, so that a long message cannot fill the pipe.
    let mut stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut err = String::new();
        stderr.read_to_string(&mut err).map(|_| err)
    });
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if start.elapsed() > limit {
            child.kill().expect("kill");
            child.wait().expect("wait");
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let err = reader.join().expect("reader").expect("stderr");
    status.map(|s| (s.code(), err))
}
