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
