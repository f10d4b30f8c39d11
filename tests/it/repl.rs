//! The REPL: its core without a terminal, piped stdin, and a scripted session
//! through a pseudo-terminal.

use crate::common;

use common::*;
use seglang::repl::Session;

fn data() -> std::path::PathBuf {
    examples_dir().join("data")
}

fn as_of() -> Option<chrono::DateTime<chrono::Utc>> {
    seglang::syntax::literal::parse_datetime("2026-11-01")
}

#[test]
fn a_query_shows_the_count_the_first_ids_and_the_time() {
    let mut s = Session::new(Some(&data()), as_of()).unwrap();
    s.show = 3;
    let r = s.eval("click.email at_least 1 last 30d");
    assert!(r.diagnostics.is_empty(), "{}", r.diagnostics);
    let re = regex_lite(&r.text);
    assert!(re, "{}", r.text);
    // The same count as `seg run`.
    let (_, count, _) = seg_out(&[
        "run",
        "-e",
        "click.email at_least 1 last 30d",
        "--data",
        &data().display().to_string(),
        "--as-of",
        "2026-11-01",
        "--format",
        "count",
    ]);
    assert!(
        r.text.starts_with(&format!("{} profiles", count.trim())),
        "{} vs {count}",
        r.text
    );
}

/// `N profiles: a, b, c, … (x ms)`
fn regex_lite(text: &str) -> bool {
    let Some((count, rest)) = text.split_once(" profiles: ") else {
        return false;
    };
    count.parse::<u64>().is_ok()
        && rest.matches(", ").count() == 3
        && rest.trim_end().ends_with(" ms)")
}

#[test]
fn definitions_persist_and_completion_knows_them_and_the_data() {
    let mut s = Session::new(Some(&data()), as_of()).unwrap();
    assert_eq!(
        s.eval("segment clickers = click.* at_least 1").text,
        "defined: clickers\n"
    );
    let r = s.eval("clickers and not opened.email exists");
    assert!(r.text.contains(" profiles"), "{r:?}");
    assert_eq!(s.complete("clic", 4).1, vec!["click.", "clickers"]);
    let (start, names) = s.complete("click.email at_least 1 in campaigns \"Black F", 44);
    assert_eq!(start, 37);
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("Black F") && n.ends_with('"')),
        "{names:?}"
    );
    assert!(!names.is_empty());
    let (_, tags) = s.complete("click.email at_least 1 in campaigns tagged \"Onl", 47);
    assert_eq!(tags, vec!["Online store\""]);
    assert!(s
        .eval(":segments")
        .text
        .contains("segment clickers = click.* at_least 1;"));
    assert!(s.eval(":plan clickers").text.contains("TableScan: events"));
    assert!(s
        .eval(":as-of 2026-01-01")
        .text
        .contains("2026-01-01T00:00:00"));
}

#[test]
fn load_runs_or_defines_a_script() {
    let mut s = Session::new(Some(&data()), as_of()).unwrap();
    let r = s.eval(&format!(
        ":load {}",
        examples_dir().join("retargeting.seg").display()
    ));
    assert_eq!(
        r.text,
        "defined: store_clickers, gone_quiet, unsubscribed, target\n"
    );
    assert!(s.eval("target").text.contains(" profiles"));
}

#[test]
fn a_piped_session_shows_a_cycle_through_an_earlier_input_and_exits_1() {
    use std::io::Write;
    let mut child = seg()
        .arg("repl")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"segment b = click.email exists;\nsegment a = b;\nsegment b = a\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("E022"), "{stderr}");
    assert!(stderr.contains("input#2"), "{stderr}");
    assert!(!stderr.contains("does not compile"), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
}

#[test]
fn piped_stdin_runs_the_lines_as_a_script() {
    use std::io::Write;
    let mut child = seg()
        .args([
            "repl",
            "--data",
            &data().display().to_string(),
            "--as-of",
            "2026-11-01",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"segment a = (click.email exists\n   or opened.email exists);\na\nclik.email exists\n",
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.starts_with("defined: a\n"), "{stdout}");
    assert!(stdout.contains(" profiles: "), "{stdout}");
    assert!(
        stderr.contains("E010") && !stderr.contains("\u{1b}["),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_terminal_session_shows_the_prompt_results_and_diagnostics() {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_seg"));
    let home = tempfile::tempdir().unwrap();
    cmd.args([
        "repl",
        "--data",
        &data().display().to_string(),
        "--as-of",
        "2026-11-01",
    ])
    .env("HOME", home.path())
    .env("XDG_DATA_HOME", home.path())
    .env("TERM", "dumb");
    let mut p = rexpect::session::spawn_command(cmd, Some(30_000)).expect("spawn in a pty");
    p.exp_string("seg> ").unwrap();
    p.send_line("segment c = click.email at_least 1").unwrap();
    p.exp_string("defined: c").unwrap();
    p.send_line("c and not unsubscribe_click.email exists")
        .unwrap();
    p.exp_regex(r"\d+ profiles: \d+").unwrap();
    p.send_line("clik.email exists").unwrap();
    p.exp_string("E010").unwrap();
    p.exp_string("did you mean `click`?").unwrap();
    // Multi-line input while a bracket is open.
    p.send_line("(click.sms exists").unwrap();
    p.send_line(" or click.push exists)").unwrap();
    p.exp_regex(r"\d+ profiles").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
    assert!(home.path().join("seg/history").exists(), "history is saved");
}
