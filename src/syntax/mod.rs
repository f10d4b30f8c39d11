//! Text -> spanned AST. The grammar in `grammar/seg.pest` is the source of
//! truth; this module turns its pairs into [`ast`] nodes and its failures into
//! diagnostics.

pub mod ast;
pub mod literal;
pub(crate) mod parse;
mod scan;

pub use parse::{parse, Parsed};
pub use scan::MAX_DEPTH;

/// Whether `text` ends in the middle of something (an open bracket or string,
/// an unfinished definition): the REPL keeps reading lines while it does.
pub fn is_incomplete(text: &str) -> bool {
    let parsed = parse(text);
    parsed.diagnostics.iter().any(|d| {
        d.code == crate::diagnostic::Code::UnterminatedString
            || (d.code == crate::diagnostic::Code::Syntax && d.span.start >= text.trim_end().len())
    })
}
