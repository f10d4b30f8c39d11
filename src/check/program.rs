//! The checked program: what the planner consumes. Every name is resolved,
//! every literal is valid, and each condition knows exactly which events it
//! counts.

use chrono::{DateTime, Utc};

use crate::catalog::{Channel, Event};
use crate::diagnostic::Span;
use crate::syntax::ast::{Key, ObjectKind, Unit};

/// A checked script: its segments in definition order.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    pub segments: Vec<Segment>,
    /// True when the script was one bare expression (one unnamed segment).
    pub bare: bool,
}

impl Program {
    /// The segment with this name.
    pub fn segment(&self, name: &str) -> Option<&Segment> {
        self.segments.iter().find(|s| s.name == name)
    }

    /// The index of the segment with this name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.segments.iter().position(|s| s.name == name)
    }

    /// The names of the segments, in definition order.
    pub fn names(&self) -> Vec<&str> {
        self.segments.iter().map(|s| s.name.as_str()).collect()
    }

    /// Which segments a run means: all of them (`all`), the named one, or
    /// the only one.
    pub fn choose(&self, segment: Option<&str>, all: bool) -> Result<Vec<usize>, Unchosen> {
        if self.segments.is_empty() {
            return Err(Unchosen::NoSegment);
        }
        if all {
            return Ok((0..self.segments.len()).collect());
        }
        match segment {
            Some(name) => self.index_of(name).map(|i| vec![i]).ok_or_else(|| {
                let hint = crate::diagnostic::did_you_mean(name, self.names())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                Unchosen::Unknown(format!(
                    "no segment `{name}`{hint}; the script defines: {}",
                    self.names().join(", ")
                ))
            }),
            None if self.segments.len() == 1 => Ok(vec![0]),
            None => Err(Unchosen::Several(
                self.names().into_iter().map(String::from).collect(),
            )),
        }
    }
}

/// Why [`Program::choose`] found nothing to run. The caller says how to
/// choose ([`Unchosen::Several`]), in its own terms (a flag, an argument).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unchosen {
    NoSegment,
    /// No segment has the name; the text says so, with a suggestion.
    Unknown(String),
    /// Several segments and no name: their names.
    Several(Vec<String>),
}

impl Unchosen {
    /// The message, with `how` saying how to choose one segment or all.
    pub fn message(&self, how: &str) -> String {
        match self {
            Unchosen::NoSegment => "the script defines no segment: nothing to run".to_string(),
            Unchosen::Unknown(text) => text.clone(),
            Unchosen::Several(names) => format!(
                "the script defines {} segments; {how}: {}",
                names.len(),
                names.join(", ")
            ),
        }
    }
}

/// One segment: a name (empty for a bare expression) and its expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub name: String,
    pub expr: SegExpr,
    pub span: Span,
}

impl Segment {
    /// The name results show: the definition's, or `segment` for a bare
    /// expression.
    pub fn label(&self) -> &str {
        match self.name.as_str() {
            "" => "segment",
            name => name,
        }
    }
}

/// A checked boolean expression.
#[derive(Debug, Clone, PartialEq)]
pub enum SegExpr {
    Or(Vec<SegExpr>),
    And(Vec<SegExpr>),
    Not(Box<SegExpr>),
    /// A reference to another segment, by index into [`Program::segments`].
    Ref(usize),
    Cond(Box<Cond>),
    Seq(Box<Seq>),
    Sample(Sample),
}

/// A sequence of steps (SPEC §10).
#[derive(Debug, Clone, PartialEq)]
pub struct Seq {
    /// Two or more; exactly two when `negated`.
    pub steps: Vec<Step>,
    /// `A then not B within D`: no B within D after A.
    pub negated: bool,
    /// `within D`, in seconds: from the first step to the last.
    pub within: Option<i64>,
    /// Restricts the first step only.
    pub window: Option<Window>,
    /// `same message|campaign|template`.
    pub same: Option<Key>,
    pub span: Span,
}

/// One step of a sequence: which events match it.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub event: Event,
    pub channels: Vec<Channel>,
    pub scope: Option<Scope>,
    pub link: Option<LinkMatch>,
}

/// `sample N% seed S`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Hundredths of a percent, 1 to 10 000.
    pub basis_points: u32,
    pub seed: i64,
}

/// `first_seen` / `last_seen`: the earliest or latest event, ignoring the
/// window, must lie in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Seen {
    First,
    Last,
}

/// How the count of a condition is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    AtLeast(u32),
    AtMost(u32),
    Exactly(u32),
}

impl Compare {
    /// Whether a count satisfies the comparison.
    pub fn holds(self, n: u64) -> bool {
        match self {
            Compare::AtLeast(k) => n >= u64::from(k),
            Compare::AtMost(k) => n <= u64::from(k),
            Compare::Exactly(k) => n == u64::from(k),
        }
    }
}

/// A condition with everything resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Cond {
    pub event: Event,
    /// The channels whose events count (one, or all of the event's for `*`).
    pub channels: Vec<Channel>,
    pub compare: Compare,
    pub unit: Unit,
    pub scope: Option<Scope>,
    pub window: Option<Window>,
    pub link: Option<LinkMatch>,
    /// `after E`: the profile must also have an E event in these channels
    /// (within the same scope and window).
    pub after: Option<After>,
    /// `first_seen`/`last_seen` (then `compare` and `unit` mean nothing).
    pub seen: Option<Seen>,
    pub span: Span,
}

/// `after E` resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct After {
    pub event: Event,
    pub channels: Vec<Channel>,
}

/// A scope resolved to what selects objects (the ids come from the data).
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    pub kind: ObjectKind,
    pub selector: Selector,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Selector {
    Items {
        ids: Vec<i64>,
        names: Vec<String>,
    },
    Tagged(Vec<String>),
    /// `(key, negated, value)`; all must hold.
    Where(Vec<(String, bool, String)>),
}

/// A time window: `start <= ts` (or `<`) and `ts < end` (or `<=`).
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub start: Option<Bound>,
    pub end: Option<Bound>,
}

/// One end of a window.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    pub at: At,
    pub inclusive: bool,
}

/// An instant, absolute or relative to as_of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    Time(DateTime<Utc>),
    /// Seconds before as_of.
    Ago(i64),
}

impl At {
    /// The instant for a given as_of, or `None` when out of range.
    pub fn resolve(self, as_of: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            At::Time(t) => Some(t),
            At::Ago(seconds) => as_of.checked_sub_signed(chrono::TimeDelta::try_seconds(seconds)?),
        }
    }
}

/// `link "u"` or `link like "p"`.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkMatch {
    Exact(String),
    Like(String),
}
