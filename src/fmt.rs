//! `seg fmt`: the canonical layout of a script.
//!
//! The formatter works on the grammar's tokens, not on the AST, so that
//! nothing the author wrote is lost: every token is kept as written except
//! keywords, which are lower-cased, and every comment stays beside the token
//! it followed on its line (a trailing comment) or before the token it
//! preceded (a comment on a line of its own). Only the space between tokens
//! changes:
//!
//! - one definition per block, a blank line between definitions;
//! - one space between tokens, none inside parentheses or before `,` and `;`;
//! - a definition longer than [`WIDTH`] columns is broken after `=`, then
//!   before each `or` of its top-level chain, then before each `and`, then
//!   inside parentheses, each level indented four more columns.
//!
//! A script with syntax errors is not formatted (the caller reports them).
//! Formatting twice gives the same text, and the result parses to the same
//! AST (spans aside); the tests check both.

use crate::syntax::parse::Rule;
use pest::iterators::Pair;

/// The column a formatted line should stay within.
pub const WIDTH: usize = 88;
const INDENT: usize = 4;

/// The canonical layout of `text`, or `None` when it does not parse (the
/// caller reports the diagnostics of [`crate::parse`]).
pub fn format(text: &str) -> Option<String> {
    let mut tokens = Tokens::new(text);
    // Each definition is laid out and printed as soon as it is parsed (the
    // top level is a sequence broken between definitions), so its pairs and
    // layout are dropped before the next is parsed. The text is thrown away
    // if any part of the script has a syntax error.
    let mut out = Printer {
        text: String::with_capacity(text.len() + text.len() / 4),
        column: 0,
    };
    let mut definitions = 0;
    let parsed = crate::syntax::parse::parse_visiting_pairs(text, &mut |offset, item| {
        tokens.base = offset;
        let doc = match item.as_rule() {
            Rule::definition => {
                if definitions > 0 {
                    out.print(&Doc::Blank, 0, Mode::Break);
                }
                definitions += 1;
                definition(&mut tokens, item)
            }
            Rule::expr => group(vec![expr(&mut tokens, item)]),
            _ => return,
        };
        out.print(&doc, 0, Mode::Break);
    });
    if parsed.has_errors() {
        return None;
    }
    out.print(&tokens.rest(), 0, Mode::Break);
    let mut text = out.text;
    let trimmed = text.trim_end().len();
    text.truncate(trimmed);
    if !text.is_empty() {
        text.push('\n');
    }
    Some(text)
}

/// A layout: text, places to break, and groups that break together.
#[derive(Debug, Clone)]
enum Doc {
    Text(String),
    /// A space, or a new line when its group breaks.
    Line,
    /// Nothing, or a new line when its group breaks.
    SoftLine,
    /// Always a new line (after a comment); its groups break.
    HardLine,
    /// An empty line between definitions.
    Blank,
    Nest(usize, Box<Doc>),
    /// Flat when it fits on the line, else its lines break; with its flat
    /// width, computed once (`None`: it holds a hard line and never fits).
    Group(Vec<Doc>, Option<usize>),
    Concat(Vec<Doc>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Flat,
    Break,
}

#[derive(Default)]
struct Printer {
    text: String,
    column: usize,
}

impl Printer {
    fn print(&mut self, doc: &Doc, indent: usize, mode: Mode) {
        match doc {
            // No space at the start of a line (after a comment's new line).
            Doc::Text(t) if t == " " && self.text.ends_with(['\n', ' ']) => {}
            Doc::Text(t) => {
                self.text.push_str(t);
                self.column += t.chars().count();
            }
            Doc::Line | Doc::SoftLine if mode == Mode::Flat => {
                if matches!(doc, Doc::Line) {
                    self.text.push(' ');
                    self.column += 1;
                }
            }
            Doc::Line | Doc::SoftLine | Doc::HardLine => self.newline(indent),
            Doc::Blank => {
                let trimmed = self.text.trim_end().len();
                self.text.truncate(trimmed);
                self.text.push_str("\n\n");
                self.column = 0;
            }
            Doc::Nest(n, inner) => self.print(inner, indent + n, mode),
            Doc::Group(items, width) => {
                // One column kept for what may close the line (`;`, `)`).
                let room = WIDTH.saturating_sub(self.column + 1);
                let flat = width.is_some_and(|w| w <= room);
                let mode = if flat { Mode::Flat } else { Mode::Break };
                items.iter().for_each(|d| self.print(d, indent, mode));
            }
            Doc::Concat(items) => items.iter().for_each(|d| self.print(d, indent, mode)),
        }
    }

    /// A new line at `indent`; none when the line so far is empty (a
    /// comment's new line followed by a break).
    fn newline(&mut self, indent: usize) {
        let trimmed = self.text.trim_end_matches(' ').len();
        self.text.truncate(trimmed);
        if !self.text.is_empty() && !self.text.ends_with('\n') {
            self.text.push('\n');
        }
        self.text.extend(std::iter::repeat_n(' ', indent));
        self.column = indent;
    }
}

/// A group of `items`, with its flat width.
fn group(items: Vec<Doc>) -> Doc {
    let width = total_width(&items);
    Doc::Group(items, width)
}

fn total_width(items: &[Doc]) -> Option<usize> {
    items
        .iter()
        .try_fold(0usize, |sum, d| width(d).map(|w| sum.saturating_add(w)))
}

/// The width of `doc` on one line; `None` when it holds a hard line.
fn width(doc: &Doc) -> Option<usize> {
    match doc {
        Doc::Text(t) => Some(t.chars().count()),
        Doc::Line => Some(1),
        Doc::SoftLine => Some(0),
        Doc::HardLine | Doc::Blank => None,
        Doc::Nest(_, d) => width(d),
        Doc::Group(_, w) => *w,
        Doc::Concat(items) => total_width(items),
    }
}

/// The tokens of the script in order, with the comments between them.
struct Tokens<'a> {
    text: &'a str,
    /// Where the last token taken ended.
    at: usize,
    /// Where the chunk whose pairs are laid out starts in `text` (their
    /// spans are relative to it).
    base: usize,
}

impl<'a> Tokens<'a> {
    fn new(text: &'a str) -> Self {
        Tokens {
            text,
            at: 0,
            base: 0,
        }
    }

    /// A token: the comments before it (each on its own line), the token as
    /// written (a keyword lower-cased), and a comment that follows it on
    /// its line.
    fn take(&mut self, pair: &Pair<'_, Rule>) -> Doc {
        let (mut docs, text, trailing) = self.take_parts(pair);
        docs.push(text);
        docs.extend(trailing);
        Doc::Concat(docs)
    }

    /// [`Tokens::take`] in its three parts: the comments before, the token,
    /// the comment after.
    fn take_parts(&mut self, pair: &Pair<'_, Rule>) -> (Vec<Doc>, Doc, Vec<Doc>) {
        let span = pair.as_span();
        let leading = self.leading(self.base + span.start());
        let text = pair.as_str();
        let text = Doc::Text(if is_keyword(pair.as_rule()) {
            text.to_lowercase()
        } else {
            text.to_string()
        });
        self.at = self.base + span.end();
        (leading, text, self.trailing())
    }

    /// The comments between the last token and `until`, each followed by a
    /// new line.
    fn leading(&mut self, until: usize) -> Vec<Doc> {
        let gap = &self.text[self.at..until];
        self.at = until;
        let found = comments(gap);
        if found.is_empty() {
            return Vec::new();
        }
        // On a line of their own, as they were.
        let mut docs = vec![Doc::HardLine];
        for c in found {
            docs.push(Doc::Text(c.to_string()));
            docs.push(Doc::HardLine);
        }
        docs
    }

    /// A comment right after the last token on its line, with the new line
    /// it needs.
    fn trailing(&mut self) -> Vec<Doc> {
        let rest = &self.text[self.at..];
        let line = rest.split('\n').next().unwrap_or("");
        let Some(hash) = line.find('#') else {
            return Vec::new();
        };
        if !line[..hash].trim().is_empty() {
            return Vec::new();
        }
        let comment = line[hash..].trim_end();
        self.at += line.len();
        vec![Doc::Text(format!(" {comment}")), Doc::HardLine]
    }

    /// The comments after the last token, at the end of the script.
    fn rest(&mut self) -> Doc {
        Doc::Concat(self.leading(self.text.len()))
    }
}

/// The comments in the text between two tokens, in order.
fn comments(gap: &str) -> Vec<&str> {
    gap.lines()
        .filter_map(|l| l.find('#').map(|i| l[i..].trim_end()))
        .collect()
}

/// Keywords are the grammar's `kw_…` rules (the words after `same` too),
/// found by name once, then looked up by the rule's number for each token.
fn is_keyword(rule: Rule) -> bool {
    static KEYWORDS: std::sync::LazyLock<Vec<bool>> = std::sync::LazyLock::new(|| {
        let mut table = vec![false; Rule::all_rules().len()];
        for &r in Rule::all_rules() {
            if let Some(slot) = table.get_mut(r as usize) {
                *slot = format!("{r:?}").starts_with("kw_");
            }
        }
        table
    });
    KEYWORDS.get(rule as usize).copied().unwrap_or(false)
}

/// The tokens of `pair` in order: its leaves (an `event.channel` and a
/// string are one token each).
fn leaves<'i>(pair: Pair<'i, Rule>, out: &mut Vec<Pair<'i, Rule>>) {
    let rule = pair.as_rule();
    let mut inner = pair.clone().into_inner().peekable();
    if matches!(rule, Rule::event_ref | Rule::string) || inner.peek().is_none() {
        out.push(pair);
        return;
    }
    for p in inner {
        leaves(p, out);
    }
}

/// `segment name = expr;`: broken after `=` when it does not fit. The
/// comments before the definition and after its `;` stand outside it.
fn definition(tokens: &mut Tokens<'_>, pair: Pair<'_, Rule>) -> Doc {
    let mut before = Vec::new();
    let mut items = Vec::new();
    let mut after = Vec::new();
    let mut semi = None;
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::expr => {
                let body = expr(tokens, p);
                items.push(Doc::Nest(
                    INDENT,
                    Box::new(Doc::Concat(vec![Doc::Line, body])),
                ));
            }
            Rule::semi => {
                let (leading, text, trailing) = tokens.take_parts(&p);
                items.extend(leading);
                semi = Some(text);
                after = trailing;
            }
            Rule::kw_segment => {
                let (leading, text, trailing) = tokens.take_parts(&p);
                before = leading;
                items.push(text);
                items.extend(trailing);
            }
            _ => {
                items.push(Doc::Text(" ".into()));
                items.push(tokens.take(&p));
            }
        }
    }
    // The `;` ends the definition even when the script left it out.
    items.push(semi.unwrap_or_else(|| Doc::Text(";".into())));
    before.push(group(items));
    before.extend(after);
    Doc::Concat(before)
}

/// An operand of an `or` chain: the `or` before it, and its `and` chain,
/// each operand with the `and` before it and its items.
type OrOperand = (Option<Doc>, Vec<(Option<Doc>, Vec<Doc>)>);

/// An expression: its `or` chain broken before each `or` when it does not
/// fit, each operand's `and` chain before each `and`.
fn expr(tokens: &mut Tokens<'_>, pair: Pair<'_, Rule>) -> Doc {
    // Operands between `or`s, each a list of operands between `and`s, each
    // a list of items (`not`s and a primary).
    let mut ors: Vec<OrOperand> = vec![(None, vec![(None, vec![])])];
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::kw_or => ors.push((Some(tokens.take(&p)), vec![(None, vec![])])),
            Rule::kw_and => {
                let and = tokens.take(&p);
                if let Some((_, ands)) = ors.last_mut() {
                    ands.push((Some(and), vec![]));
                }
            }
            _ => {
                let doc = primary(tokens, p);
                if let Some((_, items)) = ors.last_mut().and_then(|(_, a)| a.last_mut()) {
                    items.push(doc);
                }
            }
        }
    }
    let chain = |operands: Vec<(Option<Doc>, Doc)>| -> Doc {
        let mut items = Vec::new();
        for (i, (op, doc)) in operands.into_iter().enumerate() {
            if i > 0 {
                items.push(Doc::Line);
            }
            if let Some(op) = op {
                items.push(op);
                items.push(Doc::Text(" ".into()));
            }
            items.push(doc);
        }
        group(items)
    };
    let single = ors.len() == 1;
    let or_operands: Vec<(Option<Doc>, Doc)> = ors
        .into_iter()
        .map(|(op, ands)| {
            let and_operands: Vec<(Option<Doc>, Doc)> = ands
                .into_iter()
                .map(|(op, items)| (op, spaced(items)))
                .collect();
            let doc = match and_operands.len() {
                1 => and_operands
                    .into_iter()
                    .next()
                    .map(|(_, d)| d)
                    .unwrap_or(Doc::Concat(vec![])),
                _ => chain(and_operands),
            };
            (op, doc)
        })
        .collect();
    match (single, or_operands.len()) {
        (true, _) => or_operands
            .into_iter()
            .next()
            .map(|(_, d)| d)
            .unwrap_or(Doc::Concat(vec![])),
        _ => chain(or_operands),
    }
}

/// Items joined by single spaces.
fn spaced(items: Vec<Doc>) -> Doc {
    let mut out = Vec::with_capacity(items.len() * 2);
    for (i, d) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(Doc::Text(" ".into()));
        }
        out.push(d);
    }
    Doc::Concat(out)
}

/// `not`, a parenthesised expression (broken inside when it does not fit),
/// or a condition, sequence, sample or reference on one line.
fn primary(tokens: &mut Tokens<'_>, pair: Pair<'_, Rule>) -> Doc {
    if pair.as_rule() == Rule::paren {
        let mut open = None;
        let mut inner = None;
        let mut close = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::lparen => open = Some(tokens.take(&p)),
                Rule::rparen => close = Some(tokens.take(&p)),
                _ => inner = Some(expr(tokens, p)),
            }
        }
        let mut items = Vec::new();
        items.extend(open);
        items.push(Doc::Nest(
            INDENT,
            Box::new(Doc::Concat(vec![
                Doc::SoftLine,
                inner.unwrap_or(Doc::Concat(vec![])),
            ])),
        ));
        items.push(Doc::SoftLine);
        items.extend(close);
        return group(items);
    }
    let mut found = Vec::new();
    leaves(pair, &mut found);
    let mut items = Vec::with_capacity(found.len() * 2);
    let mut previous: Option<Rule> = None;
    for p in &found {
        let rule = p.as_rule();
        let tight = matches!(previous, Some(Rule::lparen))
            || matches!(rule, Rule::comma | Rule::rparen | Rule::semi);
        if previous.is_some() && !tight {
            items.push(Doc::Text(" ".into()));
        }
        items.push(tokens.take(p));
        previous = Some(rule);
    }
    Doc::Concat(items)
}

#[cfg(test)]
mod tests {
    use super::{format, is_keyword, Rule};

    #[test]
    fn keywords_are_exactly_the_kw_rules() {
        for &rule in Rule::all_rules() {
            let named = format!("{rule:?}").starts_with("kw_");
            assert_eq!(is_keyword(rule), named, "{rule:?}");
        }
        assert!(is_keyword(Rule::kw_same) && !is_keyword(Rule::ident));
    }

    #[test]
    fn keywords_are_lower_case_and_spaces_single() {
        let out =
            format("SEGMENT  a=click.email   AT_LEAST 3 in campaigns 1 ,2,3 LAST 30d ;").unwrap();
        assert_eq!(
            out,
            "segment a = click.email at_least 3 in campaigns 1, 2, 3 last 30d;\n"
        );
    }

    #[test]
    fn definitions_are_blocks_and_comments_stay() {
        let text = "# leading\nsegment a = click.email exists; # after a\n\n\n# about b\nsegment b = a and not opened.email exists\n# the end\n";
        let out = format(text).unwrap();
        assert_eq!(
            out,
            "# leading\nsegment a = click.email exists; # after a\n\n# about b\nsegment b = a and not opened.email exists;\n# the end\n"
        );
        assert_eq!(format(&out).unwrap(), out);
    }

    #[test]
    fn long_chains_break_before_or_then_and() {
        let text = "segment long = click.email at_least 3 in campaigns tagged \"Online store\" last 30d or opened.email exists and delivered.email at_least 2 last 7d or (sent.sms exists and not click.sms exists);";
        let out = format(text).unwrap();
        assert_eq!(
            out,
            "segment long =\n    click.email at_least 3 in campaigns tagged \"Online store\" last 30d\n    or opened.email exists and delivered.email at_least 2 last 7d\n    or (sent.sms exists and not click.sms exists);\n"
        );
        assert!(out.lines().all(|l| l.chars().count() <= super::WIDTH));
        assert_eq!(format(&out).unwrap(), out);
    }

    #[test]
    fn a_script_with_syntax_errors_is_not_formatted() {
        assert_eq!(format("segment a = click.email at_least;"), None);
        assert_eq!(format("segment a = \"open"), None);
    }

    #[test]
    fn a_bare_expression_and_an_empty_script() {
        assert_eq!(
            format("(click.email  exists)").unwrap(),
            "(click.email exists)\n"
        );
        assert_eq!(format("").unwrap(), "");
        assert_eq!(format("# only\n").unwrap(), "# only\n");
    }
}
