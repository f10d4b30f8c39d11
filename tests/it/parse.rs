//! One parse test per construct of the grammar (SPEC §3).

use seglang::syntax::ast::*;

fn expr(text: &str) -> Expr {
    let parsed = seglang::parse(text);
    assert!(
        parsed.diagnostics.is_empty(),
        "{text:?}: {:?}",
        parsed.diagnostics
    );
    parsed.script.expr.expect("a bare expression")
}

fn cond(text: &str) -> Condition {
    match expr(text).kind {
        ExprKind::Condition(c) => *c,
        other => panic!("not a condition: {other:?}"),
    }
}

fn clause(text: &str) -> ClauseKind {
    let mut c = cond(text);
    assert_eq!(c.clauses.len(), 1);
    c.clauses.remove(0).kind
}

#[test]
fn definitions_with_and_without_semicolons() {
    let parsed = seglang::parse("segment a = click.email exists segment b = a;\n# end");
    assert!(parsed.diagnostics.is_empty());
    let names: Vec<&str> = parsed
        .script
        .definitions
        .iter()
        .map(|d| d.name.name.as_str())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert!(matches!(
        parsed.script.definitions[1].expr.kind,
        ExprKind::Ref(_)
    ));
}

#[test]
fn condition_spans_cover_the_source() {
    let text = "  click.email at_least 3 last 30d  ";
    let c = cond(text);
    assert_eq!(&text[c.span.clone()], "click.email at_least 3 last 30d");
    assert_eq!(&text[c.event.span.clone()], "click");
    assert_eq!(&text[c.channel.span().clone()], "email");
    assert_eq!(&text[c.operator.span.clone()], "at_least 3");
}

#[test]
fn star_channel() {
    assert!(matches!(cond("click.* exists").channel, ChannelRef::Any(_)));
}

#[test]
fn every_operator() {
    for (text, kind) in [
        ("exists", OperatorKind::Exists),
        ("not_exists", OperatorKind::NotExists),
        ("not_happened", OperatorKind::NotHappened),
        ("at_least 2", OperatorKind::AtLeast),
        ("at_most 2", OperatorKind::AtMost),
        ("exactly 2", OperatorKind::Exactly),
        ("EXACTLY 2", OperatorKind::Exactly),
    ] {
        let c = cond(&format!("click.email {text}"));
        assert_eq!(c.operator.kind, kind, "{text}");
    }
}

#[test]
fn every_unit() {
    for (text, unit) in [
        ("", Unit::Times),
        ("times", Unit::Times),
        ("messages", Unit::Messages),
        ("campaigns", Unit::Campaigns),
        ("templates", Unit::Templates),
        ("days", Unit::Days),
    ] {
        let c = cond(&format!("click.email at_least 2 {text}"));
        let count = c.operator.count.expect("count");
        assert_eq!((count.n, count.unit), (Some(2), unit), "{text}");
    }
}

#[test]
fn scopes_by_ids_names_tags_and_attributes() {
    match clause("click.email at_least 1 in campaigns 1, \"Black Friday\", 3") {
        ClauseKind::Scope(Scope {
            kind: ObjectKind::Campaign,
            selector: Selector::Items(items),
        }) => {
            assert_eq!(items.len(), 3);
            assert!(matches!(&items[1], Item::Name(s) if s.value == "Black Friday"));
            assert!(matches!(items[2], Item::Id(Some(3), _)));
        }
        other => panic!("{other:?}"),
    }
    match clause("click.email at_least 1 in messages tagged \"a\", \"b\"") {
        ClauseKind::Scope(Scope {
            kind: ObjectKind::Template,
            selector: Selector::Tagged(t),
        }) => {
            assert_eq!(
                t.iter().map(|s| s.value.as_str()).collect::<Vec<_>>(),
                ["a", "b"]
            );
        }
        other => panic!("{other:?}"),
    }
    match clause("click.email at_least 1 in templates where (region = \"EU\" and tier != \"x\")") {
        ClauseKind::Scope(Scope {
            kind: ObjectKind::Template,
            selector: Selector::Where(tests),
        }) => {
            assert_eq!(tests.len(), 2);
            assert!(!tests[0].negated && tests[1].negated);
            assert_eq!(tests[1].key.name, "tier");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        clause("click.email at_least 1 in campaigns where region = \"EU\""),
        ClauseKind::Scope(Scope { selector: Selector::Where(t), .. }) if t.len() == 1
    ));
}

#[test]
fn every_window() {
    assert!(matches!(
        clause("click.email at_least 1 last 2w"),
        ClauseKind::Window(Window::Last(Duration {
            seconds: Some(1_209_600),
            ..
        }))
    ));
    for (d, s) in [
        ("90s", 90),
        ("15m", 900),
        ("12h", 43_200),
        ("30d", 2_592_000),
    ] {
        assert!(matches!(
            clause(&format!("click.email at_least 1 last {d}")),
            ClauseKind::Window(Window::Last(Duration { seconds: Some(x), .. })) if x == s
        ));
    }
    match clause("click.email at_least 1 between 2026-01-01 and 2026-01-31T10:00:00.5+03:00") {
        ClauseKind::Window(Window::Between(Instant::At(Some(a), _), Instant::At(Some(b), _))) => {
            assert_eq!(a.to_rfc3339(), "2026-01-01T00:00:00+00:00");
            assert_eq!(b.to_rfc3339(), "2026-01-31T07:00:00.500+00:00");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        clause("click.email at_least 1 between 90d ago and 30d ago"),
        ClauseKind::Window(Window::Between(Instant::Ago(..), Instant::Ago(..)))
    ));
    assert!(matches!(
        clause("click.email at_least 1 since 7d ago"),
        ClauseKind::Window(Window::Since(Instant::Ago(..)))
    ));
    assert!(matches!(
        clause("click.email at_least 1 before 2026-01-01"),
        ClauseKind::Window(Window::Before(Instant::At(Some(_), _)))
    ));
}

#[test]
fn link_exact_and_like() {
    assert!(matches!(
        clause("link_click.email at_least 1 link \"https://x\""),
        ClauseKind::Link(Link { like: false, .. })
    ));
    assert!(matches!(
        clause("link_click.email at_least 1 link like \"%x%\""),
        ClauseKind::Link(Link { like: true, .. })
    ));
}

#[test]
fn after_clause_and_clauses_in_any_order() {
    let c = cond("opened.email not_happened after delivered last 7d in campaigns 1");
    assert_eq!(c.clauses.len(), 3);
    assert!(matches!(&c.clauses[0].kind, ClauseKind::After(i) if i.name == "delivered"));
}

#[test]
fn strings_resolve_escapes() {
    match clause(r#"click.email at_least 1 in campaigns "a\"b\\c\n\t\u{e9}""#) {
        ClauseKind::Scope(Scope {
            selector: Selector::Items(items),
            ..
        }) => {
            assert!(matches!(&items[0], Item::Name(s) if s.value == "a\"b\\c\n\té"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn precedence_not_over_and_over_or() {
    let e = expr("a or not b and c");
    let ExprKind::Or(items) = e.kind else {
        panic!()
    };
    assert_eq!(items.len(), 2);
    let ExprKind::And(and) = &items[1].kind else {
        panic!()
    };
    assert!(matches!(and[0].kind, ExprKind::Not(_)));
    // `and` chains are flat.
    let ExprKind::And(items) = expr("a and b and c and d").kind else {
        panic!()
    };
    assert_eq!(items.len(), 4);
    let ExprKind::And(items) = expr("(a or b) and c").kind else {
        panic!()
    };
    assert!(matches!(items[0].kind, ExprKind::Or(_)));
}

#[test]
fn between_and_belongs_to_the_window() {
    let e =
        expr("click.email at_least 1 between 2026-01-01 and 2026-02-01 and opened.email exists");
    let ExprKind::And(items) = e.kind else {
        panic!("{:?}", e.kind)
    };
    assert_eq!(items.len(), 2);
}

#[test]
fn comments_and_whitespace_are_insignificant() {
    let c = cond("click.email # the channel\n  at_least\n3 # count\n last 30d");
    assert_eq!(c.clauses.len(), 1);
}

#[test]
fn the_dot_is_part_of_the_token() {
    assert!(seglang::parse("click . email exists").has_errors());
    assert!(seglang::parse("click. email exists").has_errors());
}

#[test]
fn every_reserved_keyword_is_rejected_as_a_segment_name_in_any_case() {
    for kw in seglang::syntax::literal::KEYWORDS {
        for spelled in [kw.to_string(), kw.to_uppercase()] {
            let parsed = seglang::parse(&format!("segment {spelled} = click.email exists;"));
            assert!(parsed.has_errors(), "`{spelled}` was accepted as a name");
        }
        // ...while a name that merely starts with a keyword is fine.
        assert!(!seglang::parse(&format!("segment {kw}_x = click.email exists;")).has_errors());
    }
}
