//! A light pre-scan of the raw text, before pest sees it.
//!
//! It finds where each `segment` definition starts (outside strings and
//! comments), so that a syntax error in one definition does not hide the errors
//! of the others, and it bounds nesting depth so that neither pest nor any later
//! stage can overflow the stack on hostile input.

use crate::diagnostic::{Code, Diagnostic, Span};

/// The deepest nesting of parentheses and `not`s accepted in an expression.
pub const MAX_DEPTH: usize = 100;

/// What the pre-scan found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Byte offsets of every `segment` keyword.
    pub segment_starts: Vec<usize>,
    /// Spans where nesting first exceeds [`MAX_DEPTH`].
    pub too_deep: Vec<Span>,
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Scans `text` for definition starts and excessive nesting.
pub fn scan(text: &str) -> Scan {
    let bytes = text.as_bytes();
    let mut out = Scan::default();
    // Per open parenthesis: the run of `not`s that was pending when it opened.
    let mut stack: Vec<usize> = Vec::new();
    let mut pending_sum = 0usize;
    let mut run = 0usize;
    let mut reported_in_this_definition = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    if bytes[i] == b'\\' && i + 1 < bytes.len() && bytes[i + 1] != b'\n' {
                        i += 1;
                    }
                    i += 1;
                }
                if i < bytes.len() && bytes[i] == b'"' {
                    i += 1;
                }
                run = 0;
                continue;
            }
            b'(' => {
                stack.push(run);
                pending_sum += run;
                run = 0;
                let depth = stack.len() + pending_sum;
                if depth > MAX_DEPTH && !reported_in_this_definition {
                    out.too_deep.push(i..i + 1);
                    reported_in_this_definition = true;
                }
            }
            b')' => {
                if let Some(r) = stack.pop() {
                    pending_sum -= r;
                }
                run = 0;
            }
            _ if is_word(b) => {
                let start = i;
                while i < bytes.len() && is_word(bytes[i]) {
                    i += 1;
                }
                let word = &text[start..i];
                let at_boundary = start == 0 || !matches!(bytes[start - 1], b'.');
                if word.eq_ignore_ascii_case("segment") && at_boundary {
                    out.segment_starts.push(start);
                    stack.clear();
                    pending_sum = 0;
                    run = 0;
                    reported_in_this_definition = false;
                } else if word.eq_ignore_ascii_case("not") {
                    run += 1;
                    if stack.len() + pending_sum + run > MAX_DEPTH && !reported_in_this_definition {
                        out.too_deep.push(start..i);
                        reported_in_this_definition = true;
                    }
                } else {
                    run = 0;
                }
                continue;
            }
            _ if b.is_ascii_whitespace() => {}
            _ => run = 0,
        }
        i += 1;
    }
    out
}

/// The diagnostic for nesting beyond [`MAX_DEPTH`].
pub fn too_deep(span: Span) -> Diagnostic {
    Diagnostic::new(
        Code::TooDeep,
        span,
        format!("expression nested too deeply (more than {MAX_DEPTH} levels)"),
    )
    .with_label("nesting exceeds the limit here")
    .with_help("split the expression into named segments and refer to them by name")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_segment_keywords_outside_strings_and_comments() {
        let text = "segment a = x # segment\nSEGMENT b = y in campaigns \"segment\"";
        let scan = scan(text);
        assert_eq!(scan.segment_starts, vec![0, 24]);
    }

    #[test]
    fn deep_parentheses_are_reported_once() {
        let text = format!("{}x{}", "(".repeat(500), ")".repeat(500));
        let scan = scan(&text);
        assert_eq!(scan.too_deep, vec![MAX_DEPTH..MAX_DEPTH + 1]);
    }

    #[test]
    fn long_not_chains_count_as_depth() {
        let text = "not ".repeat(MAX_DEPTH + 1) + "x";
        assert_eq!(scan(&text).too_deep.len(), 1);
        let ok = "not ".repeat(MAX_DEPTH) + "x";
        assert!(scan(&ok).too_deep.is_empty());
    }

    #[test]
    fn long_flat_chains_are_not_deep() {
        let text = vec!["not a"; 1000].join(" and ");
        assert!(scan(&text).too_deep.is_empty());
    }
}
