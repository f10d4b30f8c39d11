//! Seg: a query language for audience segments by channel activity.
//!
//! Text goes through one stage per module (see `docs/ARCHITECTURE.md`):
//!
//! | stage | function | produces |
//! |---|---|---|
//! | parse | [`parse`] | [`syntax::ast::Script`] + diagnostics |
//! | check | [`check()`] | [`check::Program`] + diagnostics |
//! | plan | [`plan::segment_plan`] | DataFusion `LogicalPlan` |
//! | run | [`Engine::run`] | profile ids |
//! | SQL | [`sql::segment_sql`] | one SELECT for DuckDB, PostgreSQL, SQLite, MySQL or DataFusion |
//!
//! ```
//! let compiled = seglang::compile("click.email at_least 3 last 30d", None).unwrap();
//! assert_eq!(compiled.program.segments.len(), 1);
//!
//! let errors = seglang::compile("clik.email exists", None).unwrap_err();
//! assert_eq!(errors[0].code.as_str(), "E010");
//! assert_eq!(errors[0].help.as_deref(), Some("did you mean `click`?"));
//! ```
//!
//! Running a segment over a data directory (SPEC §5 layout):
//!
//! ```
//! use std::path::Path;
//!
//! let engine = seglang::Engine::open(Path::new("examples/data")).expect("valid data");
//! // With the data's objects, unknown campaign names and tags become warnings.
//! let compiled = seglang::compile(
//!     r#"click.* at_least 1 in campaigns tagged "Online store" last 30d"#,
//!     Some(engine.objects()),
//! )
//! .expect("compiles");
//! let as_of = seglang::syntax::literal::parse_datetime("2026-11-01").unwrap();
//!
//! // The logical plan, as DataFusion will run it…
//! let plan = engine.optimized_plan(&compiled.program, 0, as_of).unwrap();
//! assert!(plan.display_indent().to_string().contains("TableScan: events"));
//!
//! // …and the profile ids, ascending.
//! let rt = tokio::runtime::Runtime::new().unwrap();
//! let ids = rt.block_on(engine.run(&compiled.program, 0, as_of)).unwrap();
//! assert!(ids.windows(2).all(|w| w[0] < w[1]));
//! ```

pub mod catalog;
pub mod check;
pub mod data;
pub mod diagnostic;
pub mod engine;
pub mod fmt;
pub mod gen;
pub mod lsp;
pub mod plan;
mod prefetch;
pub mod repl;
pub mod sample;
pub mod sql;
pub mod syntax;

pub use check::{check, Checked, ObjectIndex, Program};
pub use data::DataError;
pub use diagnostic::{Code, Diagnostic, Severity};
pub use engine::Engine;
pub use syntax::{parse, Parsed};

/// A script that parsed and checked without errors, with its warnings.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub program: Program,
    pub warnings: Vec<Diagnostic>,
}

/// Parses and checks `text`. `objects` (from a data directory) enables the
/// data-aware warnings. On error, returns every diagnostic (errors and
/// warnings) in source order.
pub fn compile(text: &str, objects: Option<&ObjectIndex>) -> Result<Compiled, Vec<Diagnostic>> {
    compile_parsed(&parse(text), objects)
}

/// [`compile`] of a script already parsed (the language server keeps each
/// document's syntax tree for its requests).
pub fn compile_parsed(
    parsed: &Parsed,
    objects: Option<&ObjectIndex>,
) -> Result<Compiled, Vec<Diagnostic>> {
    let checked = check(&parsed.script, objects);
    let mut diagnostics = parsed.diagnostics.clone();
    diagnostics.extend(checked.diagnostics);
    diagnostics.sort_by_key(|d| (d.span.start, d.span.end));
    match checked.program {
        Some(program) if !diagnostics.iter().any(Diagnostic::is_error) => Ok(Compiled {
            program,
            warnings: diagnostics,
        }),
        _ => Err(diagnostics),
    }
}

/// Formats seconds as the largest exact Seg duration: `30d`, `2w`, `90s`.
pub fn format_duration(seconds: i64) -> String {
    for (unit, size) in [("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)] {
        if seconds != 0 && seconds % size == 0 {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}
