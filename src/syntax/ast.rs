//! The spanned abstract syntax tree: what the script says, before any checking.
//!
//! Values that failed to parse (a bad date, an integer out of range) are `None`:
//! the parser has already reported them, and the checker skips what depends on
//! them instead of reporting a second, confusing error.

use chrono::{DateTime, Utc};

use crate::diagnostic::Span;

/// A whole script: definitions, or one bare expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub definitions: Vec<Definition>,
    /// A bare expression: one anonymous segment.
    pub expr: Option<Expr>,
}

/// `segment name = expr;`
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    pub name: Ident,
    pub expr: Expr,
    pub span: Span,
}

/// A name as written, with its span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A boolean expression over conditions and segment references.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

/// `and` and `or` chains are n-ary, so long chains do not nest deeply.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Ref(Ident),
    Condition(Box<Condition>),
    /// `A then B …` (SPEC §10).
    Sequence(Box<Sequence>),
    /// `sample N% [seed S]` (SPEC §10).
    Sample(Sample),
}

/// `step then step … [within D] {window | same key}`, or
/// `step then not step within D …`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    pub steps: Vec<Step>,
    /// The `then` before each step but the first (`steps.len() - 1` of them).
    pub thens: Vec<Then>,
    pub within: Option<Duration>,
    /// The span of `within D`.
    pub within_span: Option<Span>,
    pub clauses: Vec<SeqClause>,
    pub span: Span,
}

/// `then` or `then not`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Then {
    pub span: Span,
    /// The span of `not`, when negated.
    pub not: Option<Span>,
}

/// One step of a sequence: an event in a channel, with scope and link.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub event: Ident,
    pub channel: ChannelRef,
    /// Only scopes and links.
    pub clauses: Vec<Clause>,
    pub span: Span,
}

/// A clause of a whole sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct SeqClause {
    pub kind: SeqClauseKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SeqClauseKind {
    /// Restricts the first step.
    Window(Window),
    /// `same message|campaign|template`.
    Same(Key),
}

/// What `same` keeps equal across the steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Message,
    Campaign,
    Template,
}

impl Key {
    /// The events column holding the key.
    pub fn column(self) -> &'static str {
        match self {
            Key::Message => "message_id",
            Key::Campaign => "campaign_id",
            Key::Template => "template_id",
        }
    }

    pub fn keyword(self) -> &'static str {
        match self {
            Key::Message => "message",
            Key::Campaign => "campaign",
            Key::Template => "template",
        }
    }
}

/// `sample N% [seed S]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The percentage in hundredths of a percent (`2.5%` is 250); `None`
    /// when malformed (already reported).
    pub basis_points: Option<u32>,
    pub percent_span: Span,
    /// `None` when out of range (already reported); 0 when not written.
    pub seed: Option<i64>,
    pub seed_span: Option<Span>,
    pub span: Span,
}

/// `event.channel operator clause…`
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub event: Ident,
    pub channel: ChannelRef,
    pub operator: Operator,
    pub clauses: Vec<Clause>,
    pub span: Span,
}

/// The channel after the dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelRef {
    Named(Ident),
    /// `*`: every channel where the event exists.
    Any(Span),
}

impl ChannelRef {
    pub fn span(&self) -> &Span {
        match self {
            ChannelRef::Named(ident) => &ident.span,
            ChannelRef::Any(span) => span,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub kind: OperatorKind,
    pub span: Span,
    /// The count of `at_least`, `at_most` and `exactly` (and what was
    /// written after `first_seen`/`last_seen`, which the checker rejects).
    pub count: Option<Count>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorKind {
    Exists,
    NotExists,
    NotHappened,
    AtLeast,
    AtMost,
    Exactly,
    FirstSeen,
    LastSeen,
}

impl OperatorKind {
    pub fn keyword(self) -> &'static str {
        match self {
            OperatorKind::Exists => "exists",
            OperatorKind::NotExists => "not_exists",
            OperatorKind::NotHappened => "not_happened",
            OperatorKind::AtLeast => "at_least",
            OperatorKind::AtMost => "at_most",
            OperatorKind::Exactly => "exactly",
            OperatorKind::FirstSeen => "first_seen",
            OperatorKind::LastSeen => "last_seen",
        }
    }
}

/// What `at_least N unit` counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    /// `None` when the integer was out of range (already reported).
    pub n: Option<u32>,
    /// Where the count is (for `first_seen 3 weeks`: the `3`; for
    /// `first_seen weeks`: the unit).
    pub n_span: Span,
    pub unit: Unit,
    pub unit_span: Option<Span>,
}

/// The unit of a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Times,
    Messages,
    Campaigns,
    Templates,
    Days,
    Weeks,
    Months,
}

impl Unit {
    pub fn keyword(self) -> &'static str {
        match self {
            Unit::Times => "times",
            Unit::Messages => "messages",
            Unit::Campaigns => "campaigns",
            Unit::Templates => "templates",
            Unit::Days => "days",
            Unit::Weeks => "weeks",
            Unit::Months => "months",
        }
    }
}

/// A clause restricting which events a condition counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub kind: ClauseKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClauseKind {
    Scope(Scope),
    Window(Window),
    Link(Link),
    After(Ident),
}

impl ClauseKind {
    /// The clause kind's name, for diagnostics.
    pub fn describe(&self) -> &'static str {
        match self {
            ClauseKind::Scope(_) => "scope (`in …`)",
            ClauseKind::Window(_) => "window",
            ClauseKind::Link(_) => "`link`",
            ClauseKind::After(_) => "`after`",
        }
    }
}

/// Campaigns or templates (`messages` is a synonym of templates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    Campaign,
    Template,
}

impl ObjectKind {
    /// The value in the `object` column of tags and attributes.
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Campaign => "campaign",
            ObjectKind::Template => "template",
        }
    }
}

/// `in campaigns …` / `in templates …`
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    pub kind: ObjectKind,
    pub selector: Selector,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Selector {
    /// Ids and names, in any mix.
    Items(Vec<Item>),
    Tagged(Vec<StrLit>),
    /// All tests must hold.
    Where(Vec<AttrTest>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// `None` when out of range (already reported).
    Id(Option<i64>, Span),
    Name(StrLit),
}

/// A string literal with its escapes resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrLit {
    pub value: String,
    pub span: Span,
}

/// `key = "value"` or `key != "value"`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrTest {
    pub key: Ident,
    pub negated: bool,
    pub value: StrLit,
}

/// A time window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Window {
    Last(Duration),
    Between(Instant, Instant),
    Since(Instant),
    Before(Instant),
}

/// A duration such as `30d`, in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duration {
    /// `None` when malformed (already reported).
    pub seconds: Option<i64>,
    pub span: Span,
}

/// A point in time: a date-time, or a duration before as_of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instant {
    /// `None` when malformed (already reported).
    At(Option<DateTime<Utc>>, Span),
    Ago(Duration, Span),
}

impl Instant {
    pub fn span(&self) -> &Span {
        match self {
            Instant::At(_, span) | Instant::Ago(_, span) => span,
        }
    }
}

/// `link "u"` or `link like "p"`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub like: bool,
    pub pattern: StrLit,
}
