//! Snapshots of the rendered text of every diagnostic code, and checks that
//! each lands on the right span with the right suggestion.

use std::collections::{BTreeMap, BTreeSet};

use seglang::diagnostic::{render, Code, Source};
use seglang::syntax::ast::ObjectKind;
use seglang::ObjectIndex;

fn objects() -> ObjectIndex {
    let mut idx = ObjectIndex::default();
    let c = idx.of_mut(ObjectKind::Campaign);
    c.ids = Some([10, 11].into());
    c.names.insert("Black Friday".into(), [10].into());
    c.names.insert("Cyber Monday".into(), [11].into());
    c.tags.insert("Online store".into(), [10].into());
    let mut region = BTreeMap::new();
    region.insert("EU".to_string(), BTreeSet::from([10]));
    c.attributes.insert("region".into(), region);
    idx.has_tags = true;
    idx.has_attributes = true;
    idx
}

fn diagnose(text: &str, with_data: bool) -> Vec<seglang::Diagnostic> {
    let objects = objects();
    match seglang::compile(text, with_data.then_some(&objects)) {
        Ok(c) => c.warnings,
        Err(d) => d,
    }
}

fn rendered(text: &str, with_data: bool) -> String {
    let d = diagnose(text, with_data);
    render(
        &d,
        &Source {
            name: "test.seg",
            text,
        },
        false,
    )
}

/// One script per code: (code, script, needs data).
const CASES: &[(Code, &str, bool)] = &[
    (Code::Syntax, "click.email at_least three", false),
    (
        Code::UnterminatedString,
        "click.email at_least 1 in campaigns \"Black Friday",
        false,
    ),
    (
        Code::BadEscape,
        r#"click.email at_least 1 in campaigns "Black\qFriday""#,
        false,
    ),
    (
        Code::IntegerOutOfRange,
        "click.email at_least 3000000000",
        false,
    ),
    (
        Code::BadDateTime,
        "click.email at_least 1 since 2026-02-30",
        false,
    ),
    (
        Code::BadDurationUnit,
        "click.email at_least 1 last 30days",
        false,
    ),
    (
        Code::MixedScript,
        "click.email exists\nsegment a = opened.email exists;",
        false,
    ),
    (Code::UnknownEvent, "clicks.email exists", false),
    (Code::UnknownChannel, "click.emali exists", false),
    (Code::EventNotInChannel, "opened.whatsapp exists", false),
    (Code::ClauseNotAllowed, "click.email exists last 30d", false),
    (
        Code::DuplicateClause,
        "click.email at_least 1 last 30d last 7d",
        false,
    ),
    (
        Code::LinkOnNonLinkEvent,
        "click.email at_least 1 link \"https://x\"",
        false,
    ),
    (
        Code::AfterWithoutNotHappened,
        "opened.email at_least 1 after delivered",
        false,
    ),
    (
        Code::AfterEventNotInChannel,
        "click.sms not_happened after read",
        false,
    ),
    (Code::EmptyWindow, "click.email at_least 1 last 0d", false),
    (
        Code::InvertedWindow,
        "click.email at_least 1 between 30d ago and 90d ago",
        false,
    ),
    (
        Code::UndefinedSegment,
        "segment clickers = click.email exists;\nsegment t = clickrs and not x;",
        false,
    ),
    (
        Code::DuplicateSegment,
        "segment a = click.email exists;\nsegment a = opened.email exists;",
        false,
    ),
    (
        Code::ReferenceCycle,
        "segment a = b;\nsegment b = c or click.email exists;\nsegment c = a;",
        false,
    ),
    (
        Code::UnknownId,
        "click.email at_least 1 in campaigns 10, 12",
        true,
    ),
    (
        Code::UnknownName,
        "click.email at_least 1 in campaigns \"Black Fridya\"",
        true,
    ),
    (
        Code::UnknownTag,
        "click.email at_least 1 in campaigns tagged \"Online stor\"",
        true,
    ),
    (
        Code::UnknownAttribute,
        "click.email at_least 1 in campaigns where regoin = \"EU\"",
        true,
    ),
    (
        Code::ThenNotWithoutWithin,
        "delivered.email then not opened.email same message last 30d",
        false,
    ),
    (
        Code::ThenNotPlacement,
        "sent.email then delivered.email then not opened.email within 1d",
        false,
    ),
    (Code::SeenWithoutWindow, "click.email last_seen", false),
    (
        Code::SeenWithCount,
        "opened.email first_seen 2 weeks last 7d",
        false,
    ),
    (
        Code::SeenWithAfter,
        "opened.email first_seen last 7d after delivered",
        false,
    ),
    (
        Code::DuplicateSeqClause,
        "delivered.email then opened.email within 1h same message same campaign",
        false,
    ),
    (Code::BadPercentage, "sample 10.000%", false),
    (Code::SeedOutOfRange, "sample 10% seed 2147483647", false),
    (
        Code::EmptyWithin,
        "delivered.email then opened.email within 0s",
        false,
    ),
    (Code::AlwaysTrue, "click.email at_least 0", false),
    (
        Code::AlwaysEmpty,
        "click.email at_least 9 days last 7d",
        false,
    ),
];

#[test]
fn every_code_has_a_case_and_a_snapshot() {
    for code in Code::ALL {
        if *code == Code::TooDeep || *code == Code::NotUtf8 || *code == Code::InstantOutOfRange {
            continue; // covered by dedicated tests (CLI, hostile input, run time)
        }
        assert!(
            CASES.iter().any(|(c, _, _)| c == code),
            "no case for {code}"
        );
    }
    for (code, text, data) in CASES {
        let d = diagnose(text, *data);
        assert!(
            d.iter().any(|d| d.code == *code),
            "{code}: expected in {text:?}, got {:?}",
            d.iter().map(|d| d.code.as_str()).collect::<Vec<_>>()
        );
        insta::assert_snapshot!(code.as_str(), rendered(text, *data));
    }
}

fn only(text: &str, data: bool) -> seglang::Diagnostic {
    let d = diagnose(text, data);
    assert_eq!(d.len(), 1, "{d:#?}");
    d.into_iter().next().unwrap()
}

#[test]
fn unknown_names_get_the_right_suggestion_and_span() {
    let d = only("segment a = clik.email exists;", false);
    assert_eq!((d.code, d.span.clone()), (Code::UnknownEvent, 12..16));
    assert_eq!(d.help.as_deref(), Some("did you mean `click`?"));

    let d = only("click.telegram exists", false);
    assert_eq!(d.code, Code::UnknownChannel);
    assert_eq!(d.span, 6..14);
    assert!(d.help.unwrap().contains("telegram_bot"));

    let d = only(
        "segment store_clickers = click.email exists;\nsegment t = store_clicker;",
        false,
    );
    assert_eq!(d.code, Code::UndefinedSegment);
    assert_eq!(d.help.as_deref(), Some("did you mean `store_clickers`?"));

    let d = only("click.email at_least 1 in campaigns \"Cyber monday\"", true);
    assert_eq!(d.help.as_deref(), Some("did you mean \"Cyber Monday\"?"));

    let d = only("click.email exsts", false);
    assert_eq!(d.help.as_deref(), Some("did you mean `exists`?"));
}

#[test]
fn event_not_in_channel_names_the_channels_where_it_is() {
    let d = only("unique_click.email at_least 1", false);
    assert_eq!(d.code, Code::EventNotInChannel);
    assert_eq!(
        d.help.as_deref(),
        Some("`unique_click` is available in: telegram_bot, max_bot, whatsapp, viber, vk_notify")
    );
}

#[test]
fn a_syntax_error_does_not_hide_the_errors_of_other_definitions() {
    let text = "segment a = click.email at_least;\nsegment b = clik.email exists;\nsegment c = opened.viber exists;";
    let codes: Vec<&str> = diagnose(text, false)
        .iter()
        .map(|d| d.code.as_str())
        .collect();
    assert_eq!(codes, vec!["E001", "E010", "E012"]);
}

#[test]
fn keywords_are_case_insensitive_and_names_case_sensitive() {
    assert!(seglang::compile(
        "SEGMENT A = click.email AT_LEAST 1 LAST 30d; Segment b = A Or Not A",
        None
    )
    .is_ok());
    let d = only("segment A = click.email exists; segment b = a;", false);
    assert_eq!(d.code, Code::UndefinedSegment);
    assert_eq!(d.help.as_deref(), Some("did you mean `A`?"));
}

#[test]
fn keywords_cannot_name_segments() {
    let d = diagnose("segment last = click.email exists;", false);
    assert_eq!(d[0].code, Code::Syntax);
    assert!(
        d[0].help.as_deref().unwrap_or("").contains("reserved"),
        "{d:?}"
    );
}

#[test]
fn cycle_labels_each_step() {
    let d = only("segment a = b;\nsegment b = a;", false);
    assert_eq!(d.code, Code::ReferenceCycle);
    assert_eq!(
        d.message,
        "segments refer to each other in a cycle: a → b → a"
    );
    assert_eq!(d.secondary.len(), 1);
    let d = only("segment a = a or click.email exists;", false);
    assert_eq!(d.message, "segments refer to each other in a cycle: a → a");
}

#[test]
fn ids_beyond_i64_are_a_diagnostic() {
    let d = only(
        "click.email at_least 1 in campaigns 9223372036854775808",
        false,
    );
    assert_eq!(d.code, Code::IntegerOutOfRange);
    assert!(seglang::compile(
        "click.email at_least 1 in campaigns 9223372036854775807",
        None
    )
    .is_ok());
    assert!(seglang::compile("click.email at_least 2147483647", None).is_ok());
    assert_eq!(
        only("click.email at_least 2147483648", false).code,
        Code::IntegerOutOfRange
    );
}

#[test]
fn empty_and_comment_only_scripts_check_clean() {
    for text in ["", "   \n", "# nothing here\n# at all"] {
        let c = seglang::compile(text, None).expect("clean");
        assert!(c.program.segments.is_empty());
        assert!(c.warnings.is_empty());
    }
}

#[test]
fn deep_nesting_is_a_diagnostic_not_a_stack_overflow() {
    let text = format!(
        "{}click.email exists{}",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    let d = diagnose(&text, false);
    assert_eq!(d[0].code, Code::TooDeep);
    let text = format!("{}click.email exists", "not ".repeat(10_000));
    assert_eq!(diagnose(&text, false)[0].code, Code::TooDeep);
    // 50 levels are fine.
    let text = format!("{}click.email exists{}", "(not ".repeat(50), ")".repeat(50));
    assert!(seglang::compile(&text, None).is_ok());
}

#[test]
fn long_flat_scripts_compile() {
    let mut text = String::new();
    for i in 0..10_000 {
        text.push_str(&format!(
            "segment s{i} = click.email at_least {} last 30d;\n",
            i % 5 + 1
        ));
    }
    text.push_str(
        &(0..2_000)
            .map(|i| format!("s{i}"))
            .collect::<Vec<_>>()
            .join(" or "),
    );
    text.insert_str(text.rfind('\n').unwrap() + 1, "segment all_of_them = ");
    let c = seglang::compile(&text, None).expect("compiles");
    assert_eq!(c.program.segments.len(), 10_001);
}

#[test]
fn mistakes_in_sequences_and_samples_get_a_fix() {
    for (text, help) in [
        ("sample 10 %", "without a space: `10%`"),
        ("sample 10% seed -1", "from 0 to 2147483646"),
        (
            "opened.email then click.email last 30d within 1h",
            "`within` comes right after the last step",
        ),
        (
            "delivered.email then opened.email same mesage",
            "did you mean `message`?",
        ),
        (
            "delivered.email then nto opened.email within 1d",
            "did you mean `not`?",
        ),
        ("click.email at_least 2 week", "did you mean `weeks`?"),
        ("segment sample = click.email exists;", "reserved keyword"),
        ("opened.emial then click.email", "did you mean `email`?"),
    ] {
        let d = diagnose(text, false);
        assert!(
            d.iter()
                .any(|d| d.help.as_deref().is_some_and(|h| h.contains(help))),
            "{text}: {d:#?}"
        );
    }
    // `then not` errors point at `then not`; a bad percentage at the number.
    let d = only(
        "sent.email then delivered.email then not opened.email within 1d",
        false,
    );
    assert_eq!(d.span, 32..40);
    let d = only("sample 100.5%", false);
    assert_eq!((d.code, d.span.clone()), (Code::BadPercentage, 7..13));
}
