//! `--emit sql`: snapshots per dialect, escaping of every user string, and the
//! command line. Executed results are compared in `tests/it/sql_diff.rs`.

use crate::common;

use common::{ev, seg_out, Data};
use datafusion::sql::sqlparser::ast::{self, visit_expressions_mut};
use datafusion::sql::sqlparser::dialect::{
    Dialect as ParserDialect, DuckDbDialect, GenericDialect, MySqlDialect, PostgreSqlDialect,
    SQLiteDialect,
};
use datafusion::sql::sqlparser::parser::Parser;
use proptest::prelude::*;
use seglang::sql::{segment_sql, Dialect, SqlOptions};

const AS_OF: &str = "2026-11-01T00:00:00Z";

fn sql(text: &str, dialect: Dialect) -> Result<String, String> {
    let compiled = seglang::compile(text, None).map_err(|d| format!("{d:?}"))?;
    let as_of = seglang::syntax::literal::parse_datetime(AS_OF).expect("as_of");
    let last = compiled.program.segments.len() - 1;
    segment_sql(&compiled.program, last, as_of, &SqlOptions::new(dialect)).map_err(|e| e.message)
}

fn all_dialects(text: &str) -> String {
    Dialect::ALL
        .iter()
        .map(|&d| format!("-- {d}\n{}\n", sql(text, d).expect("sql")))
        .collect()
}

#[test]
fn snapshot_tagged_window_in_every_dialect() {
    insta::assert_snapshot!(all_dialects(
        r#"click.email at_least 3 in campaigns tagged "Online store" last 30d"#
    ));
}

#[test]
fn snapshot_days_like_and_negation_in_every_dialect() {
    insta::assert_snapshot!(all_dialects(
        r#"opened.* at_least 2 days between 30d ago and 2026-10-30 and not link_click.email at_least 1 link like "https://shop/a\\_b%""#
    ));
}

#[test]
fn snapshot_references_after_and_attributes_in_every_dialect() {
    insta::assert_snapshot!(all_dialects(
        r#"segment eu = read.email at_least 1 in campaigns where (region = "EU" and goal != "sales");
           segment lapsed = opened.email not_happened in templates "Welcome", 7 last 14d after delivered;
           segment target = eu or lapsed;"#
    ));
}

fn parser_dialect(d: Dialect) -> Box<dyn ParserDialect> {
    match d {
        Dialect::DataFusion => Box::new(GenericDialect {}),
        Dialect::DuckDb => Box::new(DuckDbDialect {}),
        Dialect::Postgres => Box::new(PostgreSqlDialect {}),
        Dialect::Sqlite => Box::new(SQLiteDialect {}),
        Dialect::MySql => Box::new(MySqlDialect {}),
    }
}

/// The SQL parsed back by the dialect's own rules: its string literals, and
/// its text with every string literal replaced by `'?'` (its structure).
fn parse_back(sql: &str, d: Dialect) -> (Vec<String>, String) {
    let mut statements = Parser::parse_sql(parser_dialect(d).as_ref(), sql)
        .unwrap_or_else(|e| panic!("{d} SQL does not parse: {e}\n{sql}"));
    assert_eq!(statements.len(), 1, "{d}: one statement expected\n{sql}");
    let mut literals = Vec::new();
    let _ = visit_expressions_mut(&mut statements[0], |e| {
        if let ast::Expr::Value(v) = e {
            if let ast::Value::SingleQuotedString(s) = &mut v.value {
                literals.push(std::mem::replace(s, "?".to_string()));
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    (literals, statements[0].to_string())
}

/// A Seg string literal.
fn quoted(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn nasty_string() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        3 => prop::sample::select(vec!['\'', '\\', '"', '%', '_', ';', '-', '/', '*', '\n', '`', '$', '?', '[']),
        2 => any::<char>().prop_filter("no NUL", |c| *c != '\0'),
        2 => prop::char::range('a', 'z'),
    ];
    prop::collection::vec(c, 0..16).prop_map(|v| v.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// No string of a segment changes the structure of the query: parsed back
    /// by each dialect's rules, the SQL with a nasty string is the SQL with a
    /// benign one, and the string comes back as one literal, intact.
    #[test]
    fn user_strings_are_literals_in_every_dialect(s in nasty_string()) {
        let template = |x: &str| format!(
            "segment a = click.email at_least 1 in campaigns {q}, 3 last 7d;\n\
             segment b = opened.* at_least 1 in templates tagged {q};\n\
             segment c = read.email at_least 1 in campaigns where k = {q};\n\
             segment d = link_click.email at_least 1 link {q};\n\
             segment target = a or b or c or d;",
            q = quoted(x)
        );
        for d in Dialect::ALL {
            let nasty = sql(&template(&s), d).expect("sql");
            let benign = sql(&template("benign"), d).expect("sql");
            let (literals, shape) = parse_back(&nasty, d);
            let (_, benign_shape) = parse_back(&benign, d);
            prop_assert_eq!(&shape, &benign_shape, "{} structure changed by {:?}:\n{}", d, s, nasty);
            let copies = literals.iter().filter(|l| **l == s).count();
            prop_assert!(copies >= 4, "{}: {:?} is not intact in\n{}", d, s, nasty);
        }
    }

    /// LIKE patterns too: every dialect gets one literal, and the structure
    /// does not change.
    #[test]
    fn like_patterns_are_literals_in_every_dialect(s in nasty_string()) {
        let text = |x: &str| format!("link_click.email at_least 1 link like {}", quoted(x));
        for d in Dialect::ALL {
            let nasty = sql(&text(&s), d).expect("sql");
            let (_, shape) = parse_back(&nasty, d);
            let (_, benign) = parse_back(&sql(&text("b%"), d).expect("sql"), d);
            prop_assert_eq!(shape, benign, "{} structure changed by {:?}", d, s);
        }
    }
}

#[test]
fn quotes_after_a_backslash_cannot_end_a_literal() {
    // sqlparser's own printer would write `'\' OR 1=1 --'` here.
    let s = sql(
        r#"click.email at_least 1 in campaigns "\\' OR 1=1 --""#,
        Dialect::Postgres,
    )
    .unwrap();
    assert!(s.contains(r"= '\'' OR 1=1 --'"), "{s}");
    let m = sql(
        r#"click.email at_least 1 in campaigns "\\' OR 1=1 --""#,
        Dialect::MySql,
    )
    .unwrap();
    assert!(m.contains(r"= '\\'' OR 1=1 --'"), "{m}");
}

#[test]
fn a_nul_character_is_an_error_not_sql() {
    for d in Dialect::ALL {
        let err = sql(r#"click.email at_least 1 in campaigns "a\u{0}b""#, d).unwrap_err();
        assert!(err.contains("NUL"), "{d}: {err}");
    }
}

#[test]
fn sqlite_matches_like_case_sensitively_with_glob() {
    let s = sql(
        r#"link_click.email at_least 1 link like "A*b?[c]_%\\%""#,
        Dialect::Sqlite,
    )
    .unwrap();
    assert!(s.contains("glob('A[*]b[?][[]c]?*%', events.link)"), "{s}");
    assert!(!s.contains(" LIKE "), "{s}");
}

#[test]
fn mysql_doubles_backslashes_and_keeps_its_default_escape() {
    let s = sql(r#"link_click.email at_least 1 link like "a\\_b" and link_click.email at_least 1 link "c\\d""#, Dialect::MySql).unwrap();
    assert!(s.contains(r"LIKE 'a\\_b'"), "{s}");
    assert!(s.contains(r"'c\\d'"), "{s}");
    assert!(!s.contains("ESCAPE"), "{s}");
    let pg = sql(
        r#"link_click.email at_least 1 link like "a\\_b""#,
        Dialect::Postgres,
    )
    .unwrap();
    assert!(pg.contains(r"LIKE 'a\_b' ESCAPE '\'"), "{pg}");
}

#[test]
fn tables_absent_from_the_data_are_not_referenced() {
    let d = Data::new(&[ev("click.email", 1, "2026-10-30").camp(1)]).campaigns(&[(1, "A")]);
    let script = r#"click.email at_least 1 in campaigns tagged "x" or click.email at_least 1 in campaigns "A" or not opened.email exists"#;
    let file = d.path().join("s.seg");
    std::fs::write(&file, script).unwrap();
    let (code, out, err) = seg_out(&[
        "compile",
        file.to_str().unwrap(),
        "--emit",
        "sql",
        "--dialect",
        "duckdb",
        "--as-of",
        AS_OF,
        "--data",
        d.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("tags"), "no tags table in the data:\n{out}");
    assert!(
        !out.contains("profiles"),
        "no profiles table in the data:\n{out}"
    );
    assert!(out.contains("FROM campaigns"), "{out}");
    // Without profiles, the universe is every profile with an event up to as_of.
    assert!(out.contains("GROUP BY events.profile_id"), "{out}");
    assert!(out.trim_end().ends_with(';'), "{out}");
    // Zoned `ts` in the data: zoned literals.
    assert!(out.contains("TIMESTAMP WITH TIME ZONE"), "{out}");
}

#[test]
fn cli_emits_sql_and_rejects_bad_dialects() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.seg");
    std::fs::write(
        &file,
        "segment a = click.email exists;\nsegment b = not a;\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();

    let (code, out, err) = seg_out(&[
        "compile",
        f,
        "--emit",
        "sql",
        "--segment",
        "b",
        "--dialect",
        "sqlite",
        "--as-of",
        AS_OF,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("SELECT"), "{out}");
    assert!(out.contains("'2026-11-01 00:00:00'"), "{out}");

    // Several segments and no --segment: exit 2, listing the names.
    let (code, _, err) = seg_out(&["compile", f, "--emit", "sql"]);
    assert_eq!(code, 2);
    assert!(err.contains("a, b"), "{err}");

    let (code, _, err) = seg_out(&[
        "compile",
        f,
        "--emit",
        "sql",
        "--segment",
        "b",
        "--dialect",
        "oracle",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("possible values"), "{err}");

    let (code, _, err) = seg_out(&["compile", f, "--emit", "ast", "--dialect", "mysql"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--dialect only applies to --emit sql"),
        "{err}"
    );

    // A script with errors: exit 1 and the diagnostic.
    std::fs::write(&file, "clik.email exists").unwrap();
    let (code, out, err) = seg_out(&["compile", f, "--emit", "sql"]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains("E010"), "{err}");
}
