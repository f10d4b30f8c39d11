//! `seg fmt`: idempotent, the same AST (spans aside), comments kept, the
//! same ids on data; examples/ stay formatted.

use proptest::prelude::*;

use crate::common::seg;

/// The AST's debug form with every span (`12..34`) blanked.
fn ast_without_spans(text: &str) -> String {
    let debug = format!("{:?}", seglang::parse(text).script);
    let mut out = String::with_capacity(debug.len());
    let mut chars = debug.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            let mut run = c.to_string();
            while let Some(&d) = chars.peek() {
                if d.is_ascii_digit() || d == '.' {
                    run.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push_str(if run.contains("..") { "_" } else { &run });
        } else {
            out.push(c);
        }
    }
    out
}

fn comments(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.find('#').map(|i| l[i..].trim_end().to_string()))
        .collect()
}

fn assert_formats_well(text: &str) {
    let once = seglang::fmt::format(text).unwrap_or_else(|| panic!("not formatted: {text:?}"));
    let twice = seglang::fmt::format(&once).expect("formatted text parses");
    assert_eq!(once, twice, "not idempotent on {text:?}");
    assert_eq!(
        ast_without_spans(text),
        ast_without_spans(&once),
        "another AST after formatting {text:?} as {once:?}"
    );
    assert_eq!(comments(text), comments(&once), "comments of {text:?}");
}

const CONDITIONS: &[&str] = &[
    "click.email exists",
    "opened.EMAIL not_exists",
    "click.email AT_LEAST 3 in campaigns tagged \"Online store\" last 30d",
    "delivered.email at_most 2 DAYS between 2026-01-01 and 2026-02-01",
    "click.email exactly 1 in campaigns where (region = \"EU\" and goal != \"sales\")",
    "link_click.email exists link like \"%sale%\"",
    "delivered.email not_happened after opened since 10d ago",
    "delivered.email then opened.email within 1h same message last 30d",
    "delivered.email then not opened.email within 1d Same Message",
    "click.email last_seen before 30d ago",
    "opened.email at_least 4 weeks last 90d",
    "sample 10% seed 3",
    "click.push at_least 1 in campaigns 1001, 1002 ,1003",
    "s0",
];

fn space() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        " ",
        "  ",
        "\n",
        "\n\n  ",
        "\t",
        " # note\n",
        "\n# own line\n",
    ])
    .prop_map(str::to_string)
}

fn expr() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(CONDITIONS).prop_map(str::to_string);
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), space()).prop_map(|(e, s)| format!("({s}{e}{s})")),
            (inner.clone(), space()).prop_map(|(e, s)| format!("NOT{s}{e}")),
            (inner.clone(), space(), inner.clone())
                .prop_map(|(a, s, b)| format!("{a}{s}and{s}{b}")),
            (inner.clone(), space(), inner).prop_map(|(a, s, b)| format!("{a}{s}Or{s}{b}")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn formatting_is_idempotent_and_keeps_the_ast_and_the_comments(
        defs in prop::collection::vec((expr(), space()), 1..5),
        lead in space(),
    ) {
        let mut text = String::from("segment s0 = click.email exists;\n");
        for (i, (e, s)) in defs.iter().enumerate() {
            text.push_str(&format!("{lead}SEGMENT s{}{s}={s}{e}{s};", i + 1));
        }
        assert_formats_well(&text);
    }

    #[test]
    fn a_bare_expression_formats_too(e in expr()) {
        let e = e.replace("s0", "click.sms exists");
        assert_formats_well(&e);
    }
}

#[test]
fn examples_are_formatted() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("examples/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    for f in &files {
        assert_formats_well(&std::fs::read_to_string(f).expect("read"));
    }
    let out = seg()
        .arg("fmt")
        .arg("--check")
        .args(&files)
        .output()
        .expect("run seg");
    assert_eq!(
        out.status.code(),
        Some(0),
        "not formatted (run `seg fmt --write examples/*.seg`):\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn check_write_and_errors_from_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ugly = dir.path().join("ugly.seg");
    let text = "# keep me\nSEGMENT a=click.email   AT_LEAST 3 LAST 30d;segment b = a OR opened.email exists # and me\n;";
    std::fs::write(&ugly, text).expect("write");
    let check = seg()
        .args(["fmt", "--check"])
        .arg(&ugly)
        .output()
        .expect("run seg");
    assert_eq!(check.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&check.stdout).contains("ugly.seg"));
    assert_eq!(
        std::fs::read_to_string(&ugly).expect("read"),
        text,
        "--check wrote"
    );

    let write = seg()
        .args(["fmt", "--write"])
        .arg(&ugly)
        .output()
        .expect("run seg");
    assert_eq!(
        write.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&write.stderr)
    );
    let formatted = std::fs::read_to_string(&ugly).expect("read");
    assert_eq!(
        formatted,
        "# keep me\nsegment a = click.email at_least 3 last 30d;\n\nsegment b =\n    a\n    or opened.email exists # and me\n    ;\n"
    );
    let again = seg()
        .args(["fmt", "--check"])
        .arg(&ugly)
        .output()
        .expect("run seg");
    assert_eq!(again.status.code(), Some(0));

    let bad = dir.path().join("bad.seg");
    std::fs::write(&bad, "segment a = click.email at_least;").expect("write");
    let out = seg()
        .args(["fmt", "--write"])
        .arg(&bad)
        .output()
        .expect("run seg");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("E001"));
    assert_eq!(
        std::fs::read_to_string(&bad).expect("read"),
        "segment a = click.email at_least;"
    );

    let e = seg()
        .args(["fmt", "-e", "click.email  EXISTS"])
        .output()
        .expect("run seg");
    assert_eq!(String::from_utf8_lossy(&e.stdout), "click.email exists\n");
    let refused = seg()
        .args(["fmt", "--write", "-e", "x"])
        .output()
        .expect("run seg");
    assert_eq!(refused.status.code(), Some(2));
}

#[test]
fn a_formatted_script_gives_the_same_ids() {
    let root = env!("CARGO_MANIFEST_DIR");
    let original =
        std::fs::read_to_string(format!("{root}/examples/retargeting.seg")).expect("read");
    // The same script written carelessly: keywords in capitals, no new lines.
    let careless = original
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ")
        .replace(" and ", " AND ")
        .replace(" or ", " OR ")
        .replace("segment ", "Segment ");
    let formatted = seglang::fmt::format(&careless).expect("formats");
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |text: &str| {
        let path = dir.path().join("s.seg");
        std::fs::write(&path, text).expect("write");
        let out = seg()
            .args([
                "run",
                "--all",
                "--data",
                &format!("{root}/examples/data"),
                "--as-of",
                "2026-11-01",
            ])
            .arg(&path)
            .output()
            .expect("run seg");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let before = run(&careless);
    assert!(!before.is_empty());
    assert_eq!(before, run(&formatted));
}

#[test]
fn a_reader_that_goes_away_is_not_an_internal_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.seg");
    let text: String = (0..20_000)
        .map(|i| format!("segment s{i} = click.email exists;\n"))
        .collect();
    std::fs::write(&path, text).expect("write");
    let mut child = seg()
        .arg("fmt")
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run seg");
    // Close the read end at once, as `| head -0` would.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("internal error"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
