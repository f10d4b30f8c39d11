//! Property tests: no input makes the compiler panic, and every input ends in
//! a program or in diagnostics whose spans lie inside the text.

use proptest::prelude::*;

fn examples() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("examples/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "seg") {
            out.push(std::fs::read_to_string(path).expect("read"));
        }
    }
    out.sort();
    out
}

fn compiles_or_diagnoses(text: &str) {
    match seglang::compile(text, None) {
        Ok(_) => {}
        Err(diagnostics) => {
            assert!(!diagnostics.is_empty());
            assert!(diagnostics.iter().any(|d| d.is_error()));
            for d in &diagnostics {
                assert!(
                    d.span.start <= d.span.end && d.span.end <= text.len(),
                    "{d:?} in {text:?}"
                );
                assert!(text.is_char_boundary(d.span.start), "{d:?}");
            }
            let rendered = seglang::diagnostic::render(
                &diagnostics,
                &seglang::diagnostic::Source { name: "x", text },
                false,
            );
            assert!(rendered.contains(diagnostics[0].code.as_str()));
        }
    }
}

const TOKENS: &[&str] = &[
    "segment",
    "a",
    "b",
    "=",
    ";",
    "(",
    ")",
    "and",
    "or",
    "not",
    "click.email",
    "opened.*",
    "link_click.viber",
    "exists",
    "not_exists",
    "not_happened",
    "at_least",
    "at_most",
    "exactly",
    "3",
    "0",
    "99999999999999999999",
    "times",
    "days",
    "campaigns",
    "in",
    "templates",
    "messages",
    "tagged",
    "where",
    "k",
    "=",
    "!=",
    "\"x\"",
    "\"",
    "\\",
    ",",
    "link",
    "like",
    "last",
    "30d",
    "0d",
    "2x",
    "between",
    "since",
    "before",
    "after",
    "delivered",
    "ago",
    // SPEC §10
    "then",
    "then not",
    "within",
    "1h",
    "0s",
    "same",
    "message",
    "Campaign",
    "template",
    "first_seen",
    "last_seen",
    "weeks",
    "months",
    "sample",
    "seed",
    "10%",
    "2.5%",
    "10.000%",
    "0%",
    "150%",
    "%",
    "2147483647",
    "2026-01-01",
    "2026-13-01",
    "2026-01-01T10:00:00Z",
    "#c\n",
    "\n",
    "é",
    "\u{0}",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in "\\PC{0,200}") {
        compiles_or_diagnoses(&text);
    }

    #[test]
    fn random_token_soup_never_panics(tokens in prop::collection::vec(prop::sample::select(TOKENS), 0..40)) {
        compiles_or_diagnoses(&tokens.join(" "));
    }

    #[test]
    fn mutated_examples_never_panic(
        index in 0usize..1000,
        cuts in prop::collection::vec((0usize..10_000, 0usize..8, prop::sample::select(TOKENS)), 1..5),
    ) {
        let examples = examples();
        let mut text = examples[index % examples.len()].clone();
        for (at, len, insert) in cuts {
            let mut at = at % (text.len() + 1);
            while !text.is_char_boundary(at) { at -= 1; }
            let mut end = (at + len).min(text.len());
            while !text.is_char_boundary(end) { end -= 1; }
            text.replace_range(at..end.max(at), insert);
        }
        compiles_or_diagnoses(&text);
    }
}

#[test]
fn every_example_checks_clean() {
    let examples = examples();
    assert!(examples.len() >= 20, "only {} examples", examples.len());
    for text in examples {
        if let Err(d) = seglang::compile(&text, None) {
            panic!("{text}\n{d:#?}");
        }
    }
}

#[test]
fn a_megabyte_of_random_bytes_is_diagnosed_quickly() {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let bytes: Vec<u8> = (0..1_000_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 96 + 32) as u8
        })
        .collect();
    let text = String::from_utf8(bytes).expect("ascii");
    compiles_or_diagnoses(&text);
}
