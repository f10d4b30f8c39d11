//! `--data s3://…`: the same answers from an S3-compatible server on
//! loopback (moto's server mode, from PyPI, which `.ci/run` installs) as
//! from the local copy, and the store's faults as errors naming the URL.
//!
//! One server serves the whole test process: its endpoint and credentials
//! are set in this process's environment once (every `seg` started from
//! here inherits them), and each test uses buckets of its own.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::{
    example_scripts, examples_dir, free_port, python_has, seg, seg_out, wait_for_port,
};

/// A moto server, killed when the process ends (or when dropped).
struct Moto {
    port: u16,
    child: Child,
}

impl Moto {
    /// A server on a free port; `None` (the test is skipped) when moto is
    /// not installed and `SEG_REQUIRE_ENGINES` is not 1.
    fn start(env: &[(&str, &str)]) -> Option<Moto> {
        if !python_has("python3", "moto.server", "an S3 test (moto)") {
            return None;
        }
        let port = free_port();
        // The process's server is a static, never dropped: it ends when
        // its standard input does, as the test binary exits.
        let serve = format!(
            "import os, sys, threading\n\
             threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()\n\
             from moto.server import main\n\
             main(['-H', '127.0.0.1', '-p', '{port}'])"
        );
        let mut child = Command::new("python3")
            .args(["-c", &serve])
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        wait_for_port(port, &mut child, "moto");
        Some(Moto { port, child })
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates `bucket` (moto takes an unsigned request).
    fn create_bucket(&self, bucket: &str) {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The process's server, with `AWS_*` set to reach it.
fn server() -> Option<&'static Moto> {
    static SERVER: OnceLock<Option<Moto>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            let moto = Moto::start(&[])?;
            for (key, value) in [
                ("AWS_ENDPOINT_URL", moto.endpoint().as_str()),
                ("AWS_ALLOW_HTTP", "true"),
                ("AWS_ACCESS_KEY_ID", "seg-test"),
                ("AWS_SECRET_ACCESS_KEY", "seg-test-secret"),
                ("AWS_REGION", "us-east-1"),
            ] {
                std::env::set_var(key, value);
            }
            Some(moto)
        })
        .as_ref()
}

/// A copy of the local directory `dir` at `s3://bucket/prefix`.
fn upload(moto: &Moto, dir: &Path, bucket: &str, prefix: &str) -> String {
    moto.create_bucket(bucket);
    let url = format!("s3://{bucket}/{prefix}");
    let object = seglang::data::remote::Object::at(Path::new(&url)).unwrap();
    let bytes = seglang::data::remote::upload_dir(dir, &object).unwrap();
    assert!(bytes > 0);
    url
}

fn local_dir() -> std::path::PathBuf {
    examples_dir().join("data")
}

#[test]
fn data_in_s3_gives_the_answers_of_the_local_copy() {
    let Some(moto) = server() else { return };
    let local = examples_dir().join("data");
    let url = upload(moto, &local, "examples", "shop/v1");
    let local = local.to_str().unwrap();

    // Every example, every segment, in two formats; and `check`, which
    // reads the dimension tables for its warnings.
    for script in example_scripts() {
        for format in ["table", "json"] {
            let args = |data: &str| {
                [
                    "run",
                    &script,
                    "--data",
                    data,
                    "--all",
                    "--as-of",
                    "2026-11-01",
                    "--format",
                    format,
                ]
                .map(str::to_string)
            };
            let there = seg_out(&args(&url).each_ref().map(String::as_str));
            let here = seg_out(&args(local).each_ref().map(String::as_str));
            assert_eq!(there.0, 0, "{script}: {}", there.2);
            assert_eq!(there, here, "{script} --format {format}");
        }
    }
    let typo = "click.email at_least 1 in campaigns \"Black Fridya\" last 90d";
    let there = seg_out(&["check", "-e", typo, "--data", &url]);
    let here = seg_out(&["check", "-e", typo, "--data", local]);
    assert!(there.2.contains("W00"), "{}", there.2);
    assert_eq!(there.2, here.2);

    // A writer's layout: Hive folders, and what Spark leaves beside the
    // data (`_SUCCESS`, `_temporary/`, hidden checksum files), which is
    // not read (the files there are not Parquet).
    let hive = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(local_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, hive.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    for (i, entry) in std::fs::read_dir(local_dir().join("events"))
        .unwrap()
        .enumerate()
    {
        let folder = hive.path().join(format!("events/date=2026-10-0{i}"));
        std::fs::create_dir_all(folder.join("_temporary/0")).unwrap();
        std::fs::copy(entry.unwrap().path(), folder.join("part-0.snappy.parquet")).unwrap();
        std::fs::write(folder.join(".part-0.snappy.parquet.crc"), "not parquet").unwrap();
        std::fs::write(folder.join("_temporary/0/part-1.parquet"), "not parquet").unwrap();
    }
    std::fs::write(hive.path().join("events/_SUCCESS"), "").unwrap();
    let hive_url = upload(moto, hive.path(), "examples", "spark/v1");
    let retargeting = examples_dir().join("retargeting.seg");
    let retargeting = retargeting.to_str().unwrap();
    let run = |data: &str| {
        seg_out(&[
            "run",
            retargeting,
            "--data",
            data,
            "--all",
            "--as-of",
            "2026-11-01",
        ])
    };
    let there = run(&hive_url);
    assert_eq!(there.0, 0, "{}", there.2);
    assert_eq!(there, run(local));

    // Channel and event only in the folder names (percent-encoded:
    // `channel=max%5Fbot/`), read from the object names as from local
    // folders (see `writers::hive_partition_values_are_read_as_columns`).
    let partitioned = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(local_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, partitioned.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    crate::writers::partition_events(&local_dir(), partitioned.path(), &["channel", "event"]);
    assert!(partitioned.path().join("events/channel=max%5Fbot").is_dir());
    let there = run(&upload(
        moto,
        partitioned.path(),
        "examples",
        "partitioned/v1",
    ));
    assert_eq!(there.0, 0, "{}", there.2);
    assert_eq!(there, run(local));

    // The differential corpus over the SQL tests' data (edge cases of
    // every kind), from the library.
    let corpus = crate::sql_diff::data(7, crate::sql_diff::Universe::Listed);
    let corpus_url = upload(moto, corpus.path(), "corpus", "");
    let remote = seglang::Engine::open(Path::new(&corpus_url)).unwrap();
    // Opening the data costs one listing and one read per file (its tail,
    // with the footer); a query reads no footer again. (Counted by a
    // process of its own: this one's tests run side by side.)
    let out = seg()
        .env("SEG_TIMINGS", "1")
        .args([
            "run",
            "-e",
            "click.email at_least 1 last 30d",
            "--data",
            &corpus_url,
        ])
        .output()
        .unwrap();
    let timings = String::from_utf8_lossy(&out.stderr);
    let after = |phase: &str| -> [u64; 3] {
        let line = timings
            .lines()
            .find(|l| l.contains(phase))
            .unwrap_or_else(|| panic!("{phase}: {timings}"));
        let counts = line.split('(').nth(1).unwrap();
        let mut n = counts
            .split(", ")
            .map(|part| part.split(' ').next().unwrap().parse::<u64>().unwrap());
        [n.next().unwrap(), n.next().unwrap(), n.next().unwrap()]
    };
    let files = walk(corpus.path()) as u64;
    let [gets, heads, lists] = after("data opened");
    assert!(
        gets <= files && heads == 0 && lists == 1,
        "{files} files: {timings}"
    );
    let [run_gets, ..] = after("planned and run");
    let event_files = walk(&corpus.path().join("events")) as u64;
    assert!(run_gets - gets <= 2 * event_files.max(1) + 2, "{timings}");
    same_ids(&remote, corpus.path(), 13);

    // And from one events.parquet (ts in milliseconds, without a zone), no
    // profiles table.
    let single = crate::sql_diff::data(8, crate::sql_diff::Universe::FromEvents);
    let single_url = upload(moto, single.path(), "corpus-single", "single");
    let remote = seglang::Engine::open(Path::new(&single_url)).unwrap();
    same_ids(&remote, single.path(), 14);
}

/// Random scripts of the differential corpus give the same ids from
/// `remote` as from the local directory `local`.
fn same_ids(remote: &seglang::Engine, local: &Path, seed: u64) {
    let local_engine = seglang::Engine::open(local).unwrap();
    let as_of = seglang::syntax::literal::parse_datetime("2026-11-01T00:00:00Z").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for script in &crate::sql_diff::random_scripts(seed, 40, remote.objects()) {
        let program = seglang::compile(script, Some(remote.objects()))
            .unwrap()
            .program;
        let all: Vec<usize> = (0..program.segments.len()).collect();
        assert_eq!(
            rt.block_on(remote.run_many(&program, &all, as_of)).unwrap(),
            rt.block_on(local_engine.run_many(&program, &all, as_of))
                .unwrap(),
            "{script}"
        );
    }
}

/// The files below `dir`.
fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| if p.is_dir() { walk(&p) } else { 1 })
        .sum()
}

#[test]
fn seg_gen_writes_to_a_store() {
    let Some(moto) = server() else { return };
    moto.create_bucket("generated");
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local");
    let local = local.to_str().unwrap();
    let url = "s3://generated/sets/small";
    let gen = |out: &str, force: bool| {
        let mut args = vec![
            "gen",
            "--out",
            out,
            "--profiles",
            "2000",
            "--events",
            "60000",
            "--days",
            "20",
            "--seed",
            "5",
        ];
        if force {
            args.push("--force");
        }
        seg_out(&args)
    };
    let made = gen(url, false);
    assert_eq!(made.0, 0, "{}", made.2);
    assert!(made.2.contains(url), "{}", made.2);
    assert_eq!(gen(local, false).0, 0);
    let script = examples_dir().join("retargeting.seg");
    let script = script.to_str().unwrap();
    let run = |data: &str| {
        seg_out(&[
            "run",
            script,
            "--data",
            data,
            "--all",
            "--as-of",
            "2026-11-01",
        ])
    };
    let there = run(url);
    assert_eq!(there.0, 0, "{}", there.2);
    assert_eq!(there, run(local));

    // As a local --out: not over data without --force, and with it only
    // over what `seg gen` wrote.
    let again = gen(url, false);
    assert_eq!(again.0, 2);
    assert!(
        again.2.contains("not empty") && again.2.contains(url),
        "{}",
        again.2
    );
    assert_eq!(gen(url, true).0, 0);
    assert_eq!(run(url), run(local));
}

#[test]
fn a_file_deleted_after_listing_is_an_error_naming_it() {
    let Some(moto) = server() else { return };
    let url = upload(moto, &examples_dir().join("data"), "vanishing", "d");
    let engine = seglang::Engine::open(Path::new(&url)).unwrap();
    let gone = format!("{url}/events/part-00002.parquet");
    let object = seglang::data::remote::Object::at(Path::new(&gone)).unwrap();
    seglang::data::remote::delete(&object, vec![object.location.clone()]).unwrap();
    let program = seglang::compile("click.email at_least 1 last 30d", None)
        .unwrap()
        .program;
    let as_of = seglang::syntax::literal::parse_datetime("2026-11-01T00:00:00Z").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let err = rt.block_on(engine.run(&program, 0, as_of)).unwrap_err();
    assert!(
        err.message.contains(&gone) && err.message.contains("not found"),
        "{}",
        err.message
    );
}

/// Runs `seg` with `env` over the environment; (code, stderr, seconds).
fn seg_with(env: &[(&str, &str)], args: &[&str]) -> (i32, String, f64) {
    let started = Instant::now();
    let out = seg().envs(env.iter().copied()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed().as_secs_f64(),
    )
}

#[test]
fn the_stores_faults_are_errors_naming_the_url() {
    let Some(moto) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("ids.csv");
    let output = output.to_str().unwrap();
    let run = |env: &[(&str, &str)], data: &str| {
        let got = seg_with(
            env,
            &[
                "run",
                "-e",
                "click.email at_least 1 last 30d",
                "--data",
                data,
                "--format",
                "csv",
                "--output",
                output,
            ],
        );
        assert!(!Path::new(output).exists(), "nothing is written");
        got
    };

    // A bucket that is not there.
    let (code, err, _) = run(&[], "s3://no-such-bucket/data");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("s3://no-such-bucket/data") && err.contains("NoSuchBucket"),
        "{err}"
    );

    // A prefix with nothing under it.
    moto.create_bucket("empty");
    let (code, err, _) = run(&[], "s3://empty/nothing");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("s3://empty/nothing") && err.contains("no events table"),
        "{err}"
    );

    // Credentials the store refuses: a server that checks them.
    if let Some(strict) = Moto::start(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]) {
        let endpoint = strict.endpoint();
        let (code, err, _) = run(&[("AWS_ENDPOINT_URL", &endpoint)], "s3://locked/data");
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("s3://locked/data") && err.contains("403"),
            "{err}"
        );
    }

    // A server that takes the connection and never answers: bounded by the
    // request timeout (and the retries).
    let stall = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", stall.local_addr().unwrap());
    // Connections are held (never answered) for a minute, then the
    // thread ends.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        stall.set_nonblocking(true).unwrap();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            match stall.accept() {
                Ok((s, _)) => held.push(s),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    let (code, err, seconds) = run(
        &[("AWS_ENDPOINT_URL", &endpoint), ("AWS_TIMEOUT", "1s")],
        "s3://stalled/data",
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("s3://stalled/data") && err.to_lowercase().contains("timed out"),
        "{err}"
    );
    assert!(seconds < 45.0, "{seconds} s");
}

/// A cluster whose executors read the files from the store themselves
/// (with the credentials of their own environment, inherited here): the
/// examples give the answers of a local run.
#[test]
fn a_cluster_reads_the_data_from_the_store() {
    let Some(moto) = server() else { return };
    let local = examples_dir().join("data");
    let url = upload(moto, &local, "clustered", "shop");
    let cluster = crate::cluster::Cluster::start(2);
    for script in example_scripts() {
        let args = |data: &str| {
            [
                "run",
                &script,
                "--data",
                data,
                "--all",
                "--as-of",
                "2026-11-01",
            ]
            .map(str::to_string)
        };
        let there = cluster.run(&args(&url).each_ref().map(String::as_str));
        let here = seg_out(&args(local.to_str().unwrap()).each_ref().map(String::as_str));
        assert_eq!(there.0, 0, "{script}: {}", there.2);
        assert_eq!(there.1, here.1, "{script}");
    }
}

/// `--data http://…`: a WebDAV server (wsgidav, from PyPI) lists the
/// directory and serves ranged GETs; the examples give the local answers.
#[test]
fn data_over_http_gives_the_answers_of_the_local_copy() {
    if !python_has(
        "python3",
        "wsgidav.server.server_cli, cheroot",
        "the HTTP test (wsgidav)",
    ) {
        return;
    }
    let port = free_port();
    let mut server = Command::new("python3")
        .args([
            "-m",
            "wsgidav.server.server_cli",
            "--host",
            "127.0.0.1",
            "--port",
        ])
        .arg(port.to_string())
        .arg("--root")
        .arg(examples_dir())
        .args(["--auth", "anonymous", "--no-config", "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start wsgidav");
    wait_for_port(port, &mut server, "wsgidav");
    let url = format!("http://127.0.0.1:{port}/data");
    let local = local_dir();
    let script = examples_dir().join("retargeting.seg");
    let run = |data: &str| {
        seg_out(&[
            "run",
            script.to_str().unwrap(),
            "--data",
            data,
            "--all",
            "--as-of",
            "2026-11-01",
        ])
    };
    let there = run(&url);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(there.0, 0, "{}", there.2);
    assert_eq!(there, run(local.to_str().unwrap()));
}
