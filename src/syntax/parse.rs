//! pest pairs -> AST, one function per grammar rule.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser as _;

use super::ast::*;
use super::literal;
use super::scan;
use crate::diagnostic::{did_you_mean, Code, Diagnostic, Span};

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/seg.pest"]
pub(crate) struct SegParser;

static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PrattParser::new()
        .op(Op::infix(Rule::kw_or, Assoc::Left))
        .op(Op::infix(Rule::kw_and, Assoc::Left))
        .op(Op::prefix(Rule::kw_not))
});

/// The result of parsing: the AST (possibly partial) and every problem found.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub script: Script,
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parses a script. Never panics: every problem becomes a diagnostic, and a
/// syntax error in one definition does not hide the errors of the others.
pub fn parse(text: &str) -> Parsed {
    parse_into(text, None)
}

/// [`parse`], handing the grammar's pair of each definition (or of the bare
/// expression) to `visit` as it is parsed, with where its chunk starts in
/// `text`: what `seg fmt` lays out, without parsing the text a second time
/// and without keeping every definition's pairs at once.
pub(crate) fn parse_visiting_pairs<'i>(
    text: &'i str,
    visit: &mut dyn FnMut(usize, Pair<'i, Rule>),
) -> Parsed {
    parse_into(text, Some(visit))
}

fn parse_into<'i>(
    text: &'i str,
    mut visit: Option<&mut dyn FnMut(usize, Pair<'i, Rule>)>,
) -> Parsed {
    let scanned = scan::scan(text);
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    let mut script = Script {
        definitions: Vec::new(),
        expr: None,
    };
    let deep_in = |range: &Span| scanned.too_deep.iter().find(|d| range.contains(&d.start));

    let Some(&first) = scanned.segment_starts.first() else {
        if is_trivia(text) {
            return Parsed {
                script,
                diagnostics,
            };
        }
        if let Some(deep) = deep_in(&(0..text.len())) {
            diagnostics.push(scan::too_deep(deep.clone()));
        } else {
            let mut b = Builder::new(0);
            if let Some(expr) = b.chunk(text, Rule::expr_only) {
                if let Some(visit) = visit.as_mut() {
                    visit(0, expr.clone());
                }
                script.expr = Some(b.expr(expr));
            }
            diagnostics.append(&mut b.diagnostics);
        }
        return Parsed {
            script,
            diagnostics,
        };
    };

    if !is_trivia(&text[..first]) {
        let span = trimmed_span(text, 0..first);
        diagnostics.push(
            Diagnostic::new(
                Code::MixedScript,
                span,
                "a script is either definitions or one bare expression, not both",
            )
            .with_label("this expression stands outside any definition")
            .with_help("give it a name: `segment name = …;`"),
        );
    }

    let mut bounds = scanned.segment_starts.clone();
    bounds.push(text.len());
    for pair in bounds.windows(2) {
        let range = pair[0]..pair[1];
        if let Some(deep) = deep_in(&range) {
            diagnostics.push(scan::too_deep(deep.clone()));
            continue;
        }
        let mut b = Builder::new(range.start);
        b.next_segment = range.end < text.len();
        if let Some(def) = b.chunk(&text[range.clone()], Rule::definition_only) {
            if let Some(visit) = visit.as_mut() {
                visit(range.start, def.clone());
            }
            script.definitions.push(b.definition(def));
        }
        diagnostics.append(&mut b.diagnostics);
    }
    Parsed {
        script,
        diagnostics,
    }
}

/// Whether the text holds only whitespace and comments.
fn is_trivia(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#')
    })
}

fn trimmed_span(text: &str, range: Span) -> Span {
    let slice = &text[range.clone()];
    let start = range.start + (slice.len() - slice.trim_start().len());
    let end = range.end - (slice.len() - slice.trim_end().len());
    start..end.max(start)
}

/// Builds AST nodes from the pairs of one chunk of the source.
struct Builder {
    /// Where the chunk starts in the whole source.
    offset: usize,
    /// Whether another definition follows this chunk.
    next_segment: bool,
    diagnostics: Vec<Diagnostic>,
}

impl Builder {
    fn new(offset: usize) -> Self {
        Builder {
            offset,
            next_segment: false,
            diagnostics: Vec::new(),
        }
    }

    /// The pair's span in the whole source, without the trailing whitespace
    /// that non-atomic rules swallow while looking for optional parts.
    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let start = pair.as_span().start() + self.offset;
        start..start + pair.as_str().trim_end().len()
    }

    fn error(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// Parses one chunk with `rule`, returning the pair inside SOI … EOI.
    fn chunk<'i>(&mut self, text: &'i str, rule: Rule) -> Option<Pair<'i, Rule>> {
        match SegParser::parse(rule, text) {
            Ok(mut pairs) => pairs
                .next()
                .and_then(|top| top.into_inner().find(|p| p.as_rule() != Rule::EOI)),
            Err(error) => {
                let d = syntax_error(text, &error, self.next_segment).shifted(self.offset);
                self.error(d);
                None
            }
        }
    }

    fn definition(&mut self, pair: Pair<'_, Rule>) -> Definition {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let name = self.ident(inner.find(|p| p.as_rule() == Rule::ident));
        let expr = match inner.find(|p| p.as_rule() == Rule::expr) {
            Some(e) => self.expr(e),
            None => Expr {
                kind: ExprKind::Or(Vec::new()),
                span: span.clone(),
            },
        };
        Definition { name, expr, span }
    }

    fn ident(&self, pair: Option<Pair<'_, Rule>>) -> Ident {
        match pair {
            Some(p) => Ident {
                name: p.as_str().to_string(),
                span: self.span(&p),
            },
            None => Ident {
                name: String::new(),
                span: self.offset..self.offset,
            },
        }
    }

    fn expr(&mut self, pair: Pair<'_, Rule>) -> Expr {
        let pairs = pair.into_inner();
        self.pratt(pairs)
    }

    fn pratt(&mut self, pairs: Pairs<'_, Rule>) -> Expr {
        // The closures below all need `self`; a RefCell-free way is to collect
        // the primaries' results through a local builder and merge diagnostics.
        let offset = self.offset;
        let cell = std::cell::RefCell::new(std::mem::take(&mut self.diagnostics));
        let expr = PRATT
            .map_primary(|p| {
                let mut b = Builder::new(offset);
                let e = b.primary(p);
                cell.borrow_mut().append(&mut b.diagnostics);
                e
            })
            .map_prefix(|op, rhs| {
                let start = op.as_span().start() + offset;
                let span = start..rhs.span.end;
                Expr {
                    kind: ExprKind::Not(Box::new(rhs)),
                    span,
                }
            })
            .map_infix(|lhs, op, rhs| {
                let span = lhs.span.start..rhs.span.end;
                let is_or = op.as_rule() == Rule::kw_or;
                let kind = match (lhs.kind, is_or) {
                    (ExprKind::Or(mut items), true) => {
                        items.push(rhs);
                        ExprKind::Or(items)
                    }
                    (ExprKind::And(mut items), false) => {
                        items.push(rhs);
                        ExprKind::And(items)
                    }
                    (kind, true) => ExprKind::Or(vec![
                        Expr {
                            kind,
                            span: lhs.span,
                        },
                        rhs,
                    ]),
                    (kind, false) => ExprKind::And(vec![
                        Expr {
                            kind,
                            span: lhs.span,
                        },
                        rhs,
                    ]),
                };
                Expr { kind, span }
            })
            .parse(pairs);
        self.diagnostics = cell.into_inner();
        expr
    }

    fn primary(&mut self, pair: Pair<'_, Rule>) -> Expr {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::paren => match pair.into_inner().find(|p| p.as_rule() == Rule::expr) {
                // A parenthesised expression keeps its inner shape; flattening
                // `(a or b) or c` into one `or` is harmless.
                Some(inner) => {
                    let mut e = self.expr(inner);
                    e.span = span;
                    e
                }
                None => Expr {
                    kind: ExprKind::Or(Vec::new()),
                    span,
                },
            },
            Rule::reference => Expr {
                kind: ExprKind::Ref(self.ident(pair.into_inner().next())),
                span,
            },
            Rule::sequence => Expr {
                kind: ExprKind::Sequence(Box::new(self.sequence(pair))),
                span,
            },
            Rule::sample => Expr {
                kind: ExprKind::Sample(self.sample(pair)),
                span,
            },
            _ => Expr {
                kind: ExprKind::Condition(Box::new(self.condition(pair))),
                span,
            },
        }
    }

    fn condition(&mut self, pair: Pair<'_, Rule>) -> Condition {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let (event, channel) = match inner.next() {
            Some(event_ref) => self.event_ref(event_ref),
            None => (self.ident(None), ChannelRef::Any(span.clone())),
        };
        let operator = match inner.next() {
            Some(op) => self.operator(op),
            None => Operator {
                kind: OperatorKind::Exists,
                span: span.clone(),
                count: None,
            },
        };
        let clauses = inner.map(|c| self.clause(c)).collect();
        Condition {
            event,
            channel,
            operator,
            clauses,
            span,
        }
    }

    fn sequence(&mut self, pair: Pair<'_, Rule>) -> Sequence {
        let span = self.span(&pair);
        let mut steps = Vec::new();
        let mut thens = Vec::new();
        let mut within = None;
        let mut within_span = None;
        let mut clauses = Vec::new();
        for p in pair.into_inner() {
            let s = self.span(&p);
            match p.as_rule() {
                Rule::step => steps.push(self.step(p)),
                Rule::then => thens.push(Then {
                    span: s.start..s.start + "then".len(),
                    not: p
                        .into_inner()
                        .find(|k| k.as_rule() == Rule::kw_not)
                        .map(|k| self.span(&k)),
                }),
                Rule::within => {
                    within = p
                        .into_inner()
                        .find(|d| d.as_rule() == Rule::duration)
                        .map(|d| self.duration(d));
                    within_span = Some(s);
                }
                Rule::window => clauses.push(SeqClause {
                    kind: SeqClauseKind::Window(self.window(p)),
                    span: s,
                }),
                Rule::same => {
                    let key = match p
                        .into_inner()
                        .find(|k| k.as_rule() == Rule::same_key)
                        .and_then(|k| k.into_inner().next())
                        .map(|k| k.as_rule())
                    {
                        Some(Rule::kw_campaign) => Key::Campaign,
                        Some(Rule::kw_template) => Key::Template,
                        _ => Key::Message,
                    };
                    clauses.push(SeqClause {
                        kind: SeqClauseKind::Same(key),
                        span: s,
                    });
                }
                _ => {}
            }
        }
        Sequence {
            steps,
            thens,
            within,
            within_span,
            clauses,
            span,
        }
    }

    fn step(&mut self, pair: Pair<'_, Rule>) -> Step {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let (event, channel) = match inner.next() {
            Some(event_ref) => self.event_ref(event_ref),
            None => (self.ident(None), ChannelRef::Any(span.clone())),
        };
        let clauses = inner.map(|c| self.clause(c)).collect();
        Step {
            event,
            channel,
            clauses,
            span,
        }
    }

    fn sample(&mut self, pair: Pair<'_, Rule>) -> Sample {
        let span = self.span(&pair);
        let mut basis_points = None;
        let mut percent_span = span.clone();
        let mut seed = Some(0);
        let mut seed_span = None;
        for p in pair.into_inner() {
            let s = self.span(&p);
            match p.as_rule() {
                Rule::percent => {
                    basis_points = self.percent(p.as_str(), s.clone());
                    percent_span = s;
                }
                Rule::integer => {
                    seed = self.seed(p.as_str(), s.clone());
                    seed_span = Some(s);
                }
                _ => {}
            }
        }
        Sample {
            basis_points,
            percent_span,
            seed,
            seed_span,
            span,
        }
    }

    /// `N%` with at most two decimals, above 0 and at most 100, in
    /// hundredths of a percent.
    fn percent(&mut self, text: &str, span: Span) -> Option<u32> {
        let number = text.trim_end_matches('%');
        let (whole, decimals) = number.split_once('.').unwrap_or((number, ""));
        let problem = if decimals.len() > 2 {
            Some(format!(
                "a percentage takes at most two decimals, `{text}` has {}",
                decimals.len()
            ))
        } else {
            let whole = whole.trim_start_matches('0');
            let bp = if whole.len() > 3 {
                None
            } else {
                let w: u32 = whole.parse().unwrap_or(0);
                let d: u32 = format!("{decimals:0<2}").parse().unwrap_or(0);
                Some(w * 100 + d)
            };
            match bp {
                Some(0) => Some("a sample of 0% is empty".to_string()),
                Some(bp) if bp <= 10_000 => return Some(bp),
                _ => Some(format!("`{text}` is more than 100%")),
            }
        };
        if let Some(message) = problem {
            self.error(
                Diagnostic::new(Code::BadPercentage, span, message)
                    .with_label("not a percentage from 0.01% to 100%")
                    .with_help(
                        "write a percentage above 0 and at most 100 with at most two decimals, such as `10%` or `2.5%`",
                    ),
            );
        }
        None
    }

    /// A sample's seed: `0 … 2^31-2`.
    fn seed(&mut self, digits: &str, span: Span) -> Option<i64> {
        match digits.parse::<i64>() {
            Ok(n) if n < crate::sample::P => Some(n),
            _ => {
                self.error(
                    Diagnostic::new(
                        Code::SeedOutOfRange,
                        span,
                        format!("a seed must be at most {}", crate::sample::P - 1),
                    )
                    .with_label("this seed is too large")
                    .with_help(format!(
                        "choose a seed from 0 to {}; equal seeds give equal samples",
                        crate::sample::P - 1
                    )),
                );
                None
            }
        }
    }

    fn event_ref(&mut self, pair: Pair<'_, Rule>) -> (Ident, ChannelRef) {
        let mut inner = pair.into_inner();
        let event = self.ident(inner.next());
        let channel = match inner.next() {
            Some(p) if p.as_rule() == Rule::star => ChannelRef::Any(self.span(&p)),
            other => ChannelRef::Named(self.ident(other)),
        };
        (event, channel)
    }

    fn operator(&mut self, pair: Pair<'_, Rule>) -> Operator {
        let span = self.span(&pair);
        let Some(inner) = pair.into_inner().next() else {
            return Operator {
                kind: OperatorKind::Exists,
                span,
                count: None,
            };
        };
        let kind = match inner.as_rule() {
            Rule::kw_exists => OperatorKind::Exists,
            Rule::kw_not_exists => OperatorKind::NotExists,
            Rule::kw_not_happened => OperatorKind::NotHappened,
            Rule::seen => return self.seen(inner, span),
            _ => return self.counting(inner, span),
        };
        Operator {
            kind,
            span,
            count: None,
        }
    }

    /// `first_seen`/`last_seen`, with whatever count or unit follows (which
    /// the checker rejects).
    fn seen(&mut self, pair: Pair<'_, Rule>, span: Span) -> Operator {
        let mut inner = pair.into_inner();
        let kind = match inner.next().map(|p| p.as_rule()) {
            Some(Rule::kw_last_seen) => OperatorKind::LastSeen,
            _ => OperatorKind::FirstSeen,
        };
        let mut count = None;
        for p in inner {
            let s = self.span(&p);
            match p.as_rule() {
                Rule::integer => {
                    count = Some(Count {
                        n: p.as_str().parse().ok(),
                        n_span: s,
                        unit: Unit::Times,
                        unit_span: None,
                    })
                }
                _ => {
                    let unit = unit_of(p);
                    let c = count.get_or_insert(Count {
                        n: None,
                        n_span: s.clone(),
                        unit,
                        unit_span: None,
                    });
                    c.unit = unit;
                    c.unit_span = Some(s);
                }
            }
        }
        Operator { kind, span, count }
    }

    fn counting(&mut self, pair: Pair<'_, Rule>, span: Span) -> Operator {
        let mut inner = pair.into_inner();
        let kind = match inner.next().map(|p| p.as_rule()) {
            Some(Rule::kw_at_most) => OperatorKind::AtMost,
            Some(Rule::kw_exactly) => OperatorKind::Exactly,
            _ => OperatorKind::AtLeast,
        };
        let (n, n_span) = match inner.next() {
            Some(p) => {
                let s = self.span(&p);
                (self.small_int(p.as_str(), s.clone(), "a count"), s)
            }
            None => (None, span.clone()),
        };
        let (unit, unit_span) = match inner.next() {
            Some(u) => {
                let s = self.span(&u);
                (unit_of(u), Some(s))
            }
            None => (Unit::Times, None),
        };
        Operator {
            kind,
            span,
            count: Some(Count {
                n,
                n_span,
                unit,
                unit_span,
            }),
        }
    }

    /// A count or duration value: `0 … 2^31-1`.
    fn small_int(&mut self, digits: &str, span: Span, what: &str) -> Option<u32> {
        match digits.parse::<u32>() {
            Ok(n) if n <= i32::MAX as u32 => Some(n),
            _ => {
                self.error(
                    Diagnostic::new(
                        Code::IntegerOutOfRange,
                        span,
                        format!("{what} must be at most {}", i32::MAX),
                    )
                    .with_label("this number is too large"),
                );
                None
            }
        }
    }

    fn clause(&mut self, pair: Pair<'_, Rule>) -> Clause {
        let span = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::scope => ClauseKind::Scope(self.scope(pair)),
            Rule::window => ClauseKind::Window(self.window(pair)),
            Rule::link => {
                let mut like = false;
                let mut pattern = None;
                for p in pair.into_inner() {
                    match p.as_rule() {
                        Rule::kw_like => like = true,
                        Rule::string => pattern = Some(self.string(p)),
                        _ => {}
                    }
                }
                ClauseKind::Link(Link {
                    like,
                    pattern: pattern.unwrap_or_else(|| StrLit {
                        value: String::new(),
                        span: span.clone(),
                    }),
                })
            }
            _ => ClauseKind::After(self.ident(pair.into_inner().nth(1))),
        };
        Clause { kind, span }
    }

    fn scope(&mut self, pair: Pair<'_, Rule>) -> Scope {
        let mut inner = pair.into_inner();
        let _kw_in = inner.next();
        let kind = match inner
            .next()
            .and_then(|k| k.into_inner().next())
            .map(|k| k.as_rule())
        {
            Some(Rule::kw_campaigns) => ObjectKind::Campaign,
            _ => ObjectKind::Template,
        };
        let selector = match inner.next() {
            Some(sel) => match sel.as_rule() {
                Rule::tagged => Selector::Tagged(
                    sel.into_inner()
                        .filter(|p| p.as_rule() == Rule::string)
                        .map(|p| self.string(p))
                        .collect(),
                ),
                Rule::where_sel => Selector::Where(
                    sel.into_inner()
                        .filter(|p| p.as_rule() == Rule::attr_test)
                        .map(|p| self.attr_test(p))
                        .collect(),
                ),
                _ => Selector::Items(
                    sel.into_inner()
                        .filter(|p| p.as_rule() != Rule::comma)
                        .map(|p| self.item(p))
                        .collect(),
                ),
            },
            None => Selector::Items(Vec::new()),
        };
        Scope { kind, selector }
    }

    fn item(&mut self, pair: Pair<'_, Rule>) -> Item {
        if pair.as_rule() == Rule::string {
            return Item::Name(self.string(pair));
        }
        let span = self.span(&pair);
        match pair.as_str().parse::<i64>() {
            Ok(id) => Item::Id(Some(id), span),
            Err(_) => {
                self.error(
                    Diagnostic::new(
                        Code::IntegerOutOfRange,
                        span.clone(),
                        format!("an id must be at most {}", i64::MAX),
                    )
                    .with_label("this id is too large"),
                );
                Item::Id(None, span)
            }
        }
    }

    fn attr_test(&mut self, pair: Pair<'_, Rule>) -> AttrTest {
        let mut inner = pair.into_inner();
        let key = self.ident(inner.next());
        let negated = inner.next().is_some_and(|op| op.as_str() == "!=");
        let value = match inner.next() {
            Some(s) => self.string(s),
            None => StrLit {
                value: String::new(),
                span: key.span.clone(),
            },
        };
        AttrTest {
            key,
            negated,
            value,
        }
    }

    fn window(&mut self, pair: Pair<'_, Rule>) -> Window {
        let span = self.span(&pair);
        let Some(w) = pair.into_inner().next() else {
            return Window::Since(Instant::At(None, span));
        };
        let rule = w.as_rule();
        let mut parts = w
            .into_inner()
            .filter(|p| matches!(p.as_rule(), Rule::duration | Rule::instant));
        let mut next_instant = |b: &mut Builder| match parts.next() {
            Some(p) if p.as_rule() == Rule::duration => Err(b.duration(p)),
            Some(p) => Ok(b.instant(p)),
            None => Ok(Instant::At(None, span.clone())),
        };
        match rule {
            Rule::last => match next_instant(self) {
                Err(d) => Window::Last(d),
                Ok(i) => Window::Last(Duration {
                    seconds: None,
                    span: i.span().clone(),
                }),
            },
            Rule::between => {
                let a = next_instant(self).unwrap_or_else(|d| Instant::At(None, d.span));
                let b = next_instant(self).unwrap_or_else(|d| Instant::At(None, d.span));
                Window::Between(a, b)
            }
            Rule::since => {
                Window::Since(next_instant(self).unwrap_or_else(|d| Instant::At(None, d.span)))
            }
            _ => Window::Before(next_instant(self).unwrap_or_else(|d| Instant::At(None, d.span))),
        }
    }

    fn instant(&mut self, pair: Pair<'_, Rule>) -> Instant {
        let span = self.span(&pair);
        match pair.into_inner().next() {
            Some(p) if p.as_rule() == Rule::datetime => {
                let s = self.span(&p);
                Instant::At(self.datetime(p.as_str(), s.clone()), s)
            }
            Some(p) => {
                let d = match p.into_inner().next() {
                    Some(d) => self.duration(d),
                    None => Duration {
                        seconds: None,
                        span: span.clone(),
                    },
                };
                Instant::Ago(d, span)
            }
            None => Instant::At(None, span),
        }
    }

    fn datetime(&mut self, text: &str, span: Span) -> Option<DateTime<Utc>> {
        let parsed = literal::parse_datetime(text);
        if parsed.is_none() {
            self.error(
                Diagnostic::new(Code::BadDateTime, span, format!("invalid date-time `{text}`"))
                    .with_label("not a valid date or RFC 3339 date-time")
                    .with_help(
                        "write a date `2026-01-31` or a date-time `2026-01-31T10:00:00Z` / `2026-01-31T10:00:00+03:00`",
                    ),
            );
        }
        parsed
    }

    fn duration(&mut self, pair: Pair<'_, Rule>) -> Duration {
        let span = self.span(&pair);
        let text = pair.as_str();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let multiplier = match unit {
            "s" => Some(1),
            "m" => Some(60),
            "h" => Some(3600),
            "d" => Some(86_400),
            "w" => Some(604_800),
            _ => None,
        };
        let unit_span = span.start + split..span.end;
        let n = self.small_int(digits, span.start..unit_span.start, "a duration");
        let seconds = match multiplier {
            Some(m) => n.map(|n| i64::from(n) * m),
            None => {
                let suggestion = literal::unit_hint(unit)
                    .or_else(|| did_you_mean(unit, ["s", "m", "h", "d", "w"]));
                self.error(
                    Diagnostic::new(
                        Code::BadDurationUnit,
                        unit_span,
                        format!("unknown duration unit `{unit}`"),
                    )
                    .with_label("expected s, m, h, d or w")
                    .with_help(match suggestion {
                        Some(s) => format!("write `{digits}{s}`; units are s (seconds), m (minutes), h (hours), d (days), w (weeks)"),
                        None => "units are s (seconds), m (minutes), h (hours), d (days), w (weeks)".to_string(),
                    }),
                );
                None
            }
        };
        Duration { seconds, span }
    }

    fn string(&mut self, pair: Pair<'_, Rule>) -> StrLit {
        let span = self.span(&pair);
        let mut raw = "";
        let mut raw_start = span.start + 1;
        let mut closed = true;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::string_inner => {
                    raw = p.as_str();
                    raw_start = self.span(&p).start;
                }
                Rule::unterminated => closed = false,
                _ => {}
            }
        }
        if !closed {
            self.error(
                Diagnostic::new(
                    Code::UnterminatedString,
                    span.start..span.start + 1,
                    "unterminated string",
                )
                .with_label("this string is never closed")
                .with_help("close the string with `\"` on the same line"),
            );
        }
        let (value, errors) = literal::unescape(raw);
        for (range, message) in errors {
            self.error(
                Diagnostic::new(
                    Code::BadEscape,
                    raw_start + range.start..raw_start + range.end,
                    message,
                )
                .with_label("invalid escape")
                .with_help(r#"valid escapes are \" \\ \n \t and \u{XXXX} (1 to 6 hex digits)"#),
            );
        }
        StrLit { value, span }
    }
}

/// The unit a `unit` pair names.
fn unit_of(pair: Pair<'_, Rule>) -> Unit {
    match pair.into_inner().next().map(|k| k.as_rule()) {
        Some(Rule::kw_messages) => Unit::Messages,
        Some(Rule::kw_campaigns) => Unit::Campaigns,
        Some(Rule::kw_templates) => Unit::Templates,
        Some(Rule::kw_days) => Unit::Days,
        Some(Rule::kw_weeks) => Unit::Weeks,
        Some(Rule::kw_months) => Unit::Months,
        _ => Unit::Times,
    }
}

/// Turns a pest error into an E001 diagnostic with a readable "expected" list.
fn syntax_error(text: &str, error: &pest::error::Error<Rule>, next_segment: bool) -> Diagnostic {
    use pest::error::{ErrorVariant, InputLocation};
    let pos = match error.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let (mut found, mut found_span) = found_at(text, pos);
    let trimmed_end = text.trim_end().len();
    if found_span.start >= trimmed_end {
        // Point just after the last token, not at the start of what follows.
        found_span = trimmed_end..trimmed_end;
        found = if next_segment {
            "the next `segment`".to_string()
        } else {
            "end of input".to_string()
        };
    }
    let mut expected: Vec<&'static str> = Vec::new();
    let mut keyword_candidates: Vec<&'static str> = Vec::new();
    if let ErrorVariant::ParsingError { positives, .. } = &error.variant {
        for rule in positives {
            if let Some(kw) = keyword_of(*rule) {
                keyword_candidates.push(kw);
            }
            keyword_candidates.extend(keywords_inside(*rule));
            let d = describe(*rule);
            if !expected.contains(&d) {
                expected.push(d);
            }
        }
    }
    let message = if expected.is_empty() {
        format!("unexpected {found}")
    } else {
        format!("expected {}, found {found}", join_or(&expected))
    };
    let word = &text[found_span.clone()];
    let at_end = found_span.start >= trimmed_end;
    let rest = text[found_span.end..].trim_start();
    let help = if at_end && expected.contains(&"`)`") {
        Some("a `(` is not closed: add `)`".to_string())
    } else if expected.contains(&describe(Rule::percent)) && rest.starts_with('%') {
        Some(format!("write the percentage without a space: `{word}%`"))
    } else if word == "-"
        && text[..pos]
            .trim_end()
            .to_ascii_lowercase()
            .ends_with("seed")
    {
        Some("a seed is an integer from 0 to 2147483646".to_string())
    } else if word.eq_ignore_ascii_case("within") && expected.contains(&describe(Rule::same)) {
        Some("`within` comes right after the last step, before windows and `same`: `… then click.email within 1h last 30d`".to_string())
    } else if word.starts_with('.')
        || (text[..pos].ends_with(' ') && text[pos..].starts_with('.'))
        || text[..pos].ends_with(". ")
    {
        Some("write `event.channel` as one token, without spaces around the dot".to_string())
    } else if let Some(kw) = did_you_mean(word, keyword_candidates.iter().copied()) {
        Some(format!("did you mean `{kw}`?"))
    } else if word.eq_ignore_ascii_case("segment") || (next_segment && word.is_empty()) {
        Some("end the previous definition with `;` and start a new one".to_string())
    } else if keyword_of_word(word) && expected.contains(&"a segment name") {
        Some(format!(
            "`{word}` is a reserved keyword; choose another name"
        ))
    } else {
        None
    };
    Diagnostic::new(Code::Syntax, found_span, message)
        .with_label(if expected.is_empty() {
            "unexpected here".to_string()
        } else {
            format!("expected {}", join_or(&expected))
        })
        .with_help_opt(help)
}

fn keyword_of_word(word: &str) -> bool {
    literal::KEYWORDS
        .iter()
        .any(|k| k.eq_ignore_ascii_case(word))
}

/// What the parser found at `pos`, and its span: a word, a quoted string, one
/// character, or the end of input.
fn found_at(text: &str, pos: usize) -> (String, Span) {
    let rest = &text[pos.min(text.len())..];
    let Some(c) = rest.chars().next() else {
        return ("end of input".to_string(), pos..pos);
    };
    let len = if c.is_ascii_alphanumeric() || c == '_' {
        rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len())
    } else if c == '"' {
        rest[1..]
            .find(['"', '\n'])
            .map_or(rest.len(), |i| i + 2)
            .min(rest.len())
    } else {
        c.len_utf8()
    };
    let token = &rest[..len];
    let shown = if c.is_control() || c.is_whitespace() {
        format!("{c:?}")
    } else if token.chars().count() > 40 {
        format!("`{}…`", token.chars().take(40).collect::<String>())
    } else {
        format!("`{token}`")
    };
    (shown, pos..pos + len)
}

fn join_or(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The keywords (of the grammar's `kw_…` rules) that `rule` can start
/// with, for did-you-mean: those it consumes whole when parsed alone. A
/// rule that takes any name (an identifier consumes as well as a keyword)
/// has none.
fn keywords_inside(rule: Rule) -> Vec<&'static str> {
    let consumes = |word: &str| match SegParser::parse(rule, word) {
        Ok(pairs) => pairs
            .last()
            .is_some_and(|p| p.as_span().end() >= word.len()),
        Err(e) => match e.location {
            pest::error::InputLocation::Pos(p) => p >= word.len(),
            pest::error::InputLocation::Span((start, _)) => start >= word.len(),
        },
    };
    if consumes("zq_not_a_keyword") {
        return Vec::new();
    }
    literal::KEYWORD_RULES
        .iter()
        .map(|(_, word, _)| *word)
        .filter(|word| consumes(word))
        .collect()
}

/// The keyword of a `kw_…` rule.
fn keyword_of(rule: Rule) -> Option<&'static str> {
    let name = format!("{rule:?}");
    literal::KEYWORD_RULES
        .iter()
        .find(|(r, _, _)| *r == name)
        .map(|(_, word, _)| *word)
}

/// How a rule reads in "expected …" messages (pest's renamed_rules).
fn describe(rule: Rule) -> &'static str {
    let name = format!("{rule:?}");
    if let Some((_, _, quoted)) = literal::KEYWORD_RULES.iter().find(|(r, _, _)| *r == name) {
        return quoted;
    }
    match rule {
        Rule::then => "`then`",
        Rule::within => "`within`",
        Rule::same => "`same`",
        Rule::sample => "`sample`",
        Rule::same_key => "`message`, `campaign` or `template`",
        Rule::percent => "a percentage such as `10%`",
        Rule::seen => "`first_seen` or `last_seen`",
        Rule::step | Rule::sequence => "a condition such as `click.email exists`",
        Rule::ident | Rule::reference => "a segment name",
        Rule::name => "a name",
        Rule::star => "`*`",
        Rule::event_ref | Rule::condition => "a condition such as `click.email exists`",
        Rule::integer => "an integer",
        Rule::duration => "a duration such as `30d`",
        Rule::datetime => "a date such as `2026-01-31`",
        Rule::string | Rule::string_inner => "a string",
        Rule::close_quote => "`\"`",
        Rule::operator | Rule::counting => {
            "an operator (`exists`, `not_exists`, `not_happened`, `at_least`, `at_most`, `exactly`, `first_seen`, `last_seen`)"
        }
        Rule::unit => "a unit",
        Rule::scope_kind => "`campaigns`, `templates` or `messages`",
        Rule::tagged | Rule::where_sel | Rule::item_list => "a selector",
        Rule::attr_test => "an attribute test such as `region = \"EU\"`",
        Rule::attr_op => "`=` or `!=`",
        Rule::instant | Rule::ago => "a date or `… ago`",
        Rule::paren | Rule::lparen => "`(`",
        Rule::rparen => "`)`",
        Rule::eq => "`=`",
        Rule::semi => "`;`",
        Rule::comma => "`,`",
        Rule::EOI => "end of input",
        Rule::scope | Rule::window | Rule::link | Rule::after => "a clause",
        Rule::last | Rule::between | Rule::since | Rule::before => "a window",
        _ => "an expression",
    }
}
