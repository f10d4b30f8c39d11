//! Link-time settings of the `seg` binary, and the keyword list read from
//! the grammar (`grammar/seg.pest` is the one place keywords are written).

use std::fmt::Write as _;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    keywords();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        // A position-dependent executable: its pointers are written at
        // link time, so the dynamic loader has no relative relocations to
        // apply. As a PIE, `seg` spent about 3 ms of every start (15 % of a
        // small query's CPU time) writing ~160 000 of them, copying 3.5 MB
        // of `.data.rel.ro` page by page, even packed as DT_RELR.
        println!("cargo:rustc-link-arg-bin=seg=-no-pie");
    }
}

/// Writes `$OUT_DIR/keywords.rs`: `KEYWORDS`, the words of the grammar's
/// `keyword` rule (the reserved ones), and `KEYWORD_RULES`, each `kw_…`
/// rule with its word and the word in backticks. Fails the build when a `kw_…` rule above the
/// `// Not reserved` line is missing from the `keyword` rule, or the other
/// way round.
fn keywords() {
    println!("cargo:rerun-if-changed=grammar/seg.pest");
    let grammar = std::fs::read_to_string("grammar/seg.pest").expect("grammar/seg.pest");
    let word = |text: &str| -> Option<String> {
        let start = text.find("^\"")? + 2;
        let len = text[start..].find('"')?;
        Some(text[start..start + len].to_string())
    };
    let mut rules: Vec<(String, String, String)> = Vec::new();
    let mut unreserved: Vec<String> = Vec::new();
    let mut reserved_part = true;
    for line in grammar.lines() {
        if line.contains("Not reserved") {
            reserved_part = false;
        }
        let Some(rest) = line.strip_prefix("kw_") else {
            continue;
        };
        let name = rest.split_whitespace().next().unwrap_or_default();
        let w = word(line).unwrap_or_else(|| panic!("kw_{name} has no ^\"word\""));
        if !reserved_part {
            unreserved.push(w.clone());
        }
        rules.push((format!("kw_{name}"), w.clone(), format!("`{w}`")));
    }
    let body = grammar
        .split("\nkeyword = @{")
        .nth(1)
        .and_then(|rest| rest.split("\n}").next())
        .expect("grammar/seg.pest has a `keyword = @{ … }` rule");
    let reserved: Vec<String> = body
        .split("^\"")
        .skip(1)
        .filter_map(|w| w.split('"').next().map(str::to_string))
        .collect();
    for (rule, w, _) in &rules {
        assert!(
            reserved.contains(w) != unreserved.contains(w),
            "grammar/seg.pest: `{rule}` ({w}) must be in the `keyword` rule exactly when it is reserved"
        );
    }
    for w in &reserved {
        assert!(
            rules.iter().any(|(_, r, _)| r == w),
            "grammar/seg.pest: `{w}` is in the `keyword` rule but has no kw_ rule"
        );
    }
    let mut out = String::new();
    writeln!(
        out,
        "/// Every reserved keyword (SPEC §2, §10), lower-case, as the grammar's"
    )
    .unwrap();
    writeln!(out, "/// `keyword` rule lists them.").unwrap();
    writeln!(
        out,
        "pub const KEYWORDS: [&str; {}] = {reserved:?};",
        reserved.len()
    )
    .unwrap();
    writeln!(
        out,
        "/// Each keyword rule of the grammar (`kw_…`), its word (reserved or not)"
    )
    .unwrap();
    writeln!(out, "/// and the word as messages quote it.").unwrap();
    writeln!(
        out,
        "pub(crate) const KEYWORD_RULES: [(&str, &str, &str); {}] = {rules:?};",
        rules.len()
    )
    .unwrap();
    let path =
        std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("keywords.rs");
    std::fs::write(path, out).expect("write keywords.rs");
}
