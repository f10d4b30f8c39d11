//! A real editor: Neovim's built-in LSP client on `seg lsp`, headless.

use std::process::Command;

fn nvim_present() -> bool {
    Command::new("nvim")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn neovim_shows_diagnostics_renames_and_completes() {
    if !nvim_present() {
        assert!(
            std::env::var_os("SEG_REQUIRE_ENGINES").is_none(),
            "nvim is not installed (.ci/run installs the Debian package neovim)"
        );
        eprintln!("skipped: nvim is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("s.seg");
    std::fs::write(
        &script,
        "segment engaged = opened.email exists;\nsegment target = engaged and clik.email exists;\n",
    )
    .expect("write");
    let out = dir.path().join("out.txt");
    let lua = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/nvim_lsp.lua");
    let status = Command::new("nvim")
        .args(["--headless", "--clean", "-c", &format!("luafile {lua}")])
        .env("SEG_BIN", env!("CARGO_BIN_EXE_seg"))
        .env("SEG_SCRIPT", &script)
        .env("SEG_OUT", &out)
        .current_dir(dir.path())
        .status()
        .expect("run nvim");
    assert!(status.success());
    let got = std::fs::read_to_string(&out).expect("the editor wrote what it got");
    let lines: Vec<&str> = got.lines().collect();
    assert!(lines.contains(&"diagnostic E010 1:29"), "{got}");
    assert!(lines.contains(&"rename 0:8 active"), "{got}");
    assert!(lines.contains(&"rename 1:17 active"), "{got}");
    assert!(lines.contains(&"completion click.email"), "{got}");
    assert!(
        lines
            .iter()
            .filter(|l| l.starts_with("completion "))
            .all(|l| l.starts_with("completion click.")),
        "{got}"
    );
}

/// The VS Code extension in `editors/vscode`: its TextMate grammar knows
/// exactly Seg's keywords (read from grammar/seg.pest), events and channels
/// (the catalog), and its manifest names files that are there.
#[test]
fn the_textmate_grammar_knows_every_keyword_event_and_channel() {
    use std::collections::BTreeSet;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("editors/vscode");
    let read = |p: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(root.join(p)).expect(p)).expect(p)
    };
    let grammar = read("syntaxes/seg.tmLanguage.json");
    let repo = &grammar["repository"];
    // The words of the `(?i)\b(a|b|…)` alternation in `pattern`.
    let words = |pattern: &str, group: usize| -> BTreeSet<String> {
        let parts: Vec<&str> = pattern.split('(').collect();
        let alternation = parts[group + 1].split(')').next().unwrap();
        alternation
            .split('|')
            .filter(|w| *w != "\\*")
            .map(str::to_string)
            .collect()
    };
    let mut keywords = words(repo["keyword"]["match"].as_str().unwrap(), 1);
    keywords.extend(words(repo["operator"]["match"].as_str().unwrap(), 1));
    keywords.extend(words(repo["definition"]["match"].as_str().unwrap(), 1));
    let expected: BTreeSet<String> = seglang::syntax::literal::KEYWORDS
        .iter()
        .map(|k| k.to_string())
        .collect();
    assert_eq!(
        keywords, expected,
        "editors/vscode/syntaxes/seg.tmLanguage.json keywords"
    );
    let event = repo["event"]["match"].as_str().unwrap();
    let events: BTreeSet<String> = seglang::catalog::event_names()
        .map(str::to_string)
        .collect();
    let channels: BTreeSet<String> = seglang::catalog::channel_names()
        .map(str::to_string)
        .collect();
    assert_eq!(words(event, 1), events);
    assert_eq!(words(event, 3), channels);
    assert_eq!(
        words(repo["same"]["match"].as_str().unwrap(), 2),
        ["campaign", "message", "template"].map(String::from).into()
    );
    assert_eq!(grammar["scopeName"], "source.seg");

    let manifest = read("package.json");
    let contributes = &manifest["contributes"];
    assert_eq!(contributes["languages"][0]["extensions"][0], ".seg");
    assert_eq!(contributes["grammars"][0]["scopeName"], "source.seg");
    for file in [
        manifest["main"].as_str().unwrap(),
        contributes["grammars"][0]["path"].as_str().unwrap(),
        contributes["languages"][0]["configuration"]
            .as_str()
            .unwrap(),
    ] {
        assert!(root.join(file).is_file(), "{file}");
    }
    read("language-configuration.json");
    let extension = std::fs::read_to_string(root.join("extension.js")).unwrap();
    assert!(
        extension.contains(r#"args: ["lsp"]"#),
        "the extension starts `seg lsp`"
    );
}

/// The same grammar run by a TextMate engine with Oniguruma's regular
/// expressions (`tests/it/textmate.py`), as VS Code runs it: every token of
/// every example gets a scope, and each kind of token the right one.
#[test]
fn the_textmate_grammar_highlights_every_token_in_a_textmate_engine() {
    let python = crate::common::python();
    if !crate::common::python_has(&python, "textmate_grammar", "the TextMate grammar test") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let sample = dir.path().join("sample.seg");
    std::fs::write(
        &sample,
        concat!(
            "# a comment\n",
            "segment loyal = opened.email at_least 5 times;\n",
            "SEGMENT buyers = click.* AT_LEAST 3 in campaigns tagged \"Black \\\"Friday\\\"\" last 30d\n",
            "    and read.* not_happened after delivered # trailing\n",
            "    or sent.email then opened.email within 1h same message since 2026-01-31T10:00:00Z\n",
            "    and not (loyal or unique_link_click.vk_notify exists)\n",
            "    and sample 12.5% seed 7 and click.email at_least 1 in campaigns where region != \"EU\";\n",
        ),
    )
    .expect("write");
    let mut files = crate::common::example_scripts();
    files.push(sample.to_str().expect("UTF-8").to_string());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(&python)
        .arg(root.join("tests/it/textmate.py"))
        .arg(root.join("editors/vscode/syntaxes/seg.tmLanguage.json"))
        .args(&files)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tokens: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    // (text, scope) of every token of a file.
    let of = |file: &str| -> Vec<(String, String)> {
        tokens[file]
            .as_array()
            .unwrap_or_else(|| panic!("no tokens for {file}"))
            .iter()
            .map(|t| {
                (
                    t[2].as_str().unwrap().to_string(),
                    t[3].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    for file in &files {
        let unscoped: Vec<String> = of(file)
            .into_iter()
            .filter(|(text, scope)| scope == "source.seg" && !text.trim().is_empty())
            .map(|(text, _)| text)
            .collect();
        assert!(unscoped.is_empty(), "{file}: no scope for {unscoped:?}");
    }
    let sample = of(sample.to_str().unwrap());
    let scope_of = |text: &str| -> Vec<&str> {
        sample
            .iter()
            .filter(|(t, _)| t == text)
            .map(|(_, s)| s.as_str())
            .collect()
    };
    let expected = [
        ("# a comment", "comment.line.number-sign.seg"),
        ("# trailing", "comment.line.number-sign.seg"),
        ("SEGMENT", "storage.type.segment.seg"),
        ("buyers", "entity.name.function.segment.seg"),
        ("click", "support.function.event.seg"),
        ("*", "support.type.channel.seg"),
        ("AT_LEAST", "keyword.control.seg"),
        ("3", "constant.numeric.integer.seg"),
        ("tagged", "keyword.control.seg"),
        ("\\\"", "constant.character.escape.seg"),
        ("30d", "constant.numeric.duration.seg"),
        ("delivered", "support.function.event.seg"),
        ("unique_link_click", "support.function.event.seg"),
        ("vk_notify", "support.type.channel.seg"),
        ("message", "variable.language.key.seg"),
        ("2026-01-31T10:00:00Z", "constant.other.datetime.seg"),
        ("12.5%", "constant.numeric.percent.seg"),
        ("region", "variable.other.seg"),
        ("!=", "keyword.operator.comparison.seg"),
        ("or", "keyword.operator.logical.seg"),
        ("(", "punctuation.section.parens.seg"),
        (";", "punctuation.terminator.seg"),
    ];
    for (text, scope) in expected {
        let found = scope_of(text);
        assert!(
            !found.is_empty() && found.iter().all(|s| *s == scope),
            "`{text}`: {found:?}, expected {scope}\n{sample:?}"
        );
    }
    // A segment's name where it is used (`loyal` is also defined above).
    let used = sample
        .iter()
        .skip_while(|(t, _)| t != "(")
        .nth(1)
        .expect("a token after `(`");
    assert_eq!(
        used,
        &("loyal".to_string(), "variable.other.seg".to_string())
    );
    // The sample is a script Seg accepts.
    let (code, _, stderr) = crate::common::seg_out(&["check", &files[files.len() - 1]]);
    assert_eq!(code, 0, "{stderr}");
}
