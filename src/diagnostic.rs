//! One diagnostic type for every stage, and its rendering at the edge:
//! ariadne for people, JSON for tools.

use std::fmt;
use std::ops::Range;

use serde::Serialize;

/// A byte range into a source text.
pub type Span = Range<usize>;

/// Whether a diagnostic stops compilation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

macro_rules! codes {
    ($($variant:ident = $code:literal, $title:literal;)*) => {
        /// A stable diagnostic code. Codes are never reused or renumbered.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code { $($variant),* }

        impl Code {
            /// Every code, in numeric order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The code as printed: `E001`, `W003`, …
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code),* }
            }

            /// A one-line title for the docs.
            pub fn title(self) -> &'static str {
                match self { $(Code::$variant => $title),* }
            }
        }
    };
}

codes! {
    Syntax = "E001", "syntax error";
    UnterminatedString = "E002", "unterminated string";
    BadEscape = "E003", "invalid escape in a string";
    IntegerOutOfRange = "E004", "integer out of range";
    BadDateTime = "E005", "invalid date or time";
    BadDurationUnit = "E006", "invalid duration unit";
    TooDeep = "E007", "expression nested too deeply";
    NotUtf8 = "E008", "source is not UTF-8";
    MixedScript = "E009", "definitions mixed with a bare expression";
    UnknownEvent = "E010", "unknown event";
    UnknownChannel = "E011", "unknown channel";
    EventNotInChannel = "E012", "event not available in channel";
    ClauseNotAllowed = "E013", "clause not allowed for the operator";
    DuplicateClause = "E014", "duplicate clause";
    LinkOnNonLinkEvent = "E015", "`link` on an event without links";
    AfterWithoutNotHappened = "E016", "`after` outside `not_happened`";
    AfterEventNotInChannel = "E017", "`after` event not available in the channel";
    EmptyWindow = "E018", "empty window";
    InvertedWindow = "E019", "inverted window";
    UndefinedSegment = "E020", "undefined segment";
    DuplicateSegment = "E021", "duplicate segment";
    ReferenceCycle = "E022", "reference cycle";
    InstantOutOfRange = "E023", "instant out of range";
    ThenNotWithoutWithin = "E024", "`then not` without `within`";
    ThenNotPlacement = "E025", "`then not` that is not the second of two steps";
    SeenWithoutWindow = "E026", "`first_seen`/`last_seen` without a window";
    SeenWithCount = "E027", "`first_seen`/`last_seen` with a count or unit";
    SeenWithAfter = "E028", "`first_seen`/`last_seen` with `after`";
    DuplicateSeqClause = "E029", "duplicate sequence clause";
    BadPercentage = "E030", "invalid percentage";
    SeedOutOfRange = "E031", "seed out of range";
    EmptyWithin = "E032", "`within` of zero";
    UnknownId = "W001", "unknown campaign or template id";
    UnknownName = "W002", "unknown campaign or template name";
    UnknownTag = "W003", "unknown tag";
    UnknownAttribute = "W004", "unknown attribute key";
    AlwaysTrue = "W005", "condition is always true";
    AlwaysEmpty = "W006", "condition is always empty";
}

impl Code {
    /// Errors start with `E`, warnings with `W`.
    pub fn severity(self) -> Severity {
        if self.as_str().starts_with('W') {
            Severity::Warning
        } else {
            Severity::Error
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A secondary location that helps explain a diagnostic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

/// A problem found in a script: a code, a primary span, a message and maybe help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    pub span: Span,
    /// The text of the primary label (defaults to the message).
    pub label: Option<String>,
    pub secondary: Vec<Label>,
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic whose severity follows from its code.
    pub fn new(code: Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: code.severity(),
            message: message.into(),
            span,
            label: None,
            secondary: Vec::new(),
            help: None,
        }
    }

    /// Sets the text under the primary span.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Adds a secondary label.
    pub fn with_secondary(mut self, span: Span, message: impl Into<String>) -> Self {
        self.secondary.push(Label {
            span,
            message: message.into(),
        });
        self
    }

    /// Sets the help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Sets the help line if there is one.
    pub fn with_help_opt(mut self, help: Option<String>) -> Self {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    /// Whether this diagnostic is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Shifts every span by `offset` bytes (for text parsed out of a larger source).
    pub(crate) fn shifted(mut self, offset: usize) -> Self {
        self.span = self.span.start + offset..self.span.end + offset;
        for label in &mut self.secondary {
            label.span = label.span.start + offset..label.span.end + offset;
        }
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{kind}[{}]: {}", self.code, self.message)?;
        if let Some(help) = &self.help {
            write!(f, " (help: {help})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// A named source text, for rendering diagnostics.
#[derive(Debug, Clone)]
pub struct Source<'a> {
    pub name: &'a str,
    pub text: &'a str,
}

/// A 1-based line and column (column in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LineCol {
    pub line: usize,
    pub column: usize,
}

/// The line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> LineCol {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    LineCol { line, column }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// Clamps a span into the text and onto character boundaries.
pub fn clamp(text: &str, span: &Span) -> Span {
    let start = floor_char_boundary(text, span.start.min(text.len()));
    let end = floor_char_boundary(text, span.end.min(text.len())).max(start);
    start..end
}

/// Renders diagnostics for a person, with ariadne.
pub fn render(diagnostics: &[Diagnostic], source: &Source<'_>, color: bool) -> String {
    let mut sources = Sources::default();
    sources.push(source.name, source.text, 0..source.text.len());
    sources.render(diagnostics, color)
}

/// Several sources compiled as one text (a REPL's earlier inputs and the one
/// just typed; an editor's open files): the text is their parts in order,
/// joined by glue that belongs to none, and each span of a diagnostic over
/// that text is shown in the source it points into.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The sources, by name, with their whole text.
    files: Vec<(String, String)>,
    /// Where each part starts in the text, its length, and where it starts
    /// in its source (`files[source]`).
    parts: Vec<Part>,
    text: String,
}

#[derive(Debug, Clone)]
struct Part {
    at: usize,
    len: usize,
    source: usize,
    origin: usize,
}

impl Sources {
    /// Appends `range` of the source `name` (whose whole text is `text`).
    pub fn push(&mut self, name: &str, text: &str, range: Span) {
        let range = clamp(text, &range);
        let source = match self.files.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                self.files.push((name.to_string(), text.to_string()));
                self.files.len() - 1
            }
        };
        self.parts.push(Part {
            at: self.text.len(),
            len: range.len(),
            source,
            origin: range.start,
        });
        self.text.push_str(&text[range]);
    }

    /// Appends text that belongs to no source.
    pub fn glue(&mut self, text: &str) {
        self.text.push_str(text);
    }

    /// The whole text, to compile.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The source a span of the text points into, and the span in it (a
    /// span in glue points at the end of the part before it).
    pub fn locate(&self, span: &Span) -> Option<(&str, Span)> {
        let part = self.parts.iter().rev().find(|p| p.at <= span.start)?;
        let start = (span.start - part.at).min(part.len);
        let end = span.end.saturating_sub(part.at).clamp(start, part.len);
        let (name, text) = &self.files[part.source];
        Some((name, clamp(text, &(part.origin + start..part.origin + end))))
    }

    /// Renders diagnostics over the text, each label in its own source; a
    /// diagnostic that points into no source is one line.
    pub fn render(&self, diagnostics: &[Diagnostic], color: bool) -> String {
        use ariadne::{Color, Config, IndexType, Label as ALabel, Report, ReportKind};

        let mut out = Vec::new();
        for d in diagnostics {
            let (kind, colour) = match d.severity {
                Severity::Error => (ReportKind::Error, Color::Red),
                Severity::Warning => (ReportKind::Warning, Color::Yellow),
            };
            let Some((name, span)) = self.locate(&d.span) else {
                out.extend_from_slice(format!("{d}\n").as_bytes());
                continue;
            };
            let config = Config::default()
                .with_index_type(IndexType::Byte)
                .with_color(color);
            let mut report = Report::build(kind, (name.to_string(), span.clone()))
                .with_config(config)
                .with_code(d.code.as_str())
                .with_message(&d.message)
                .with_label(
                    ALabel::new((name.to_string(), span))
                        .with_message(d.label.as_deref().unwrap_or(&d.message))
                        .with_color(colour)
                        .with_order(0),
                );
            for (i, label) in d.secondary.iter().enumerate() {
                let Some((name, span)) = self.locate(&label.span) else {
                    continue;
                };
                report = report.with_label(
                    ALabel::new((name.to_string(), span))
                        .with_message(&label.message)
                        .with_color(Color::Blue)
                        .with_order(i as i32 + 1),
                );
            }
            if let Some(help) = &d.help {
                report = report.with_help(help);
            }
            let cache = ariadne::sources(self.files.iter().cloned());
            if report.finish().write(cache, &mut out).is_err() {
                // Rendering into a Vec cannot fail on I/O; fall back to one line anyway.
                out.extend_from_slice(format!("{d}\n").as_bytes());
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    file: &'a str,
    code: &'static str,
    severity: Severity,
    message: &'a str,
    start: usize,
    end: usize,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    label: Option<&'a str>,
    help: Option<&'a str>,
    related: Vec<JsonLabel<'a>>,
}

#[derive(Serialize)]
struct JsonLabel<'a> {
    message: &'a str,
    start: usize,
    end: usize,
    line: usize,
    column: usize,
}

/// The diagnostics of several sources as JSON values (one object each).
pub fn to_json_values(diagnostics: &[Diagnostic], source: &Source<'_>) -> Vec<serde_json::Value> {
    diagnostics
        .iter()
        .map(|d| {
            let span = clamp(source.text, &d.span);
            let start = line_col(source.text, span.start);
            let end = line_col(source.text, span.end);
            let json = JsonDiagnostic {
                file: source.name,
                code: d.code.as_str(),
                severity: d.severity,
                message: &d.message,
                start: span.start,
                end: span.end,
                line: start.line,
                column: start.column,
                end_line: end.line,
                end_column: end.column,
                label: d.label.as_deref(),
                help: d.help.as_deref(),
                related: d
                    .secondary
                    .iter()
                    .map(|l| {
                        let span = clamp(source.text, &l.span);
                        let at = line_col(source.text, span.start);
                        JsonLabel {
                            message: &l.message,
                            start: span.start,
                            end: span.end,
                            line: at.line,
                            column: at.column,
                        }
                    })
                    .collect(),
            };
            serde_json::to_value(json).unwrap_or(serde_json::Value::Null)
        })
        .collect()
}

/// The closest candidate to `name`, if any is close enough to suggest.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = name.to_lowercase();
    candidates
        .into_iter()
        .filter_map(|c| {
            let other = c.to_lowercase();
            let score = strsim::jaro_winkler(&lower, &other);
            let exact_case = c.eq_ignore_ascii_case(name);
            let edits = strsim::damerau_levenshtein(&lower, &other);
            let len = lower.chars().count().min(other.chars().count());
            // Short names are all one edit apart: demand more of them.
            let close = exact_case
                || (len >= 3 && (score >= 0.85 || edits <= 1))
                || (len >= 6 && edits <= 2);
            close.then_some((c, if exact_case { 2.0 } else { score }))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_attach_each_span_to_the_source_it_points_into() {
        let mut sources = Sources::default();
        sources.push("a", "segment é = x;", 0..14);
        sources.glue(";\n");
        sources.push("b", "y and z", 0..7);
        sources.glue("\n");
        assert_eq!(sources.text(), "segment é = x;\ny and z\n");
        assert_eq!(sources.locate(&(0..7)), Some(("a", 0..7)));
        // Inside `é` (two bytes): clamped onto a character boundary.
        assert_eq!(sources.locate(&(9..10)), Some(("a", 8..10)));
        assert_eq!(sources.locate(&(16..17)), Some(("b", 0..1)));
        // Past the end: at the end of the last part.
        assert_eq!(sources.locate(&(23..24)), Some(("b", 7..7)));
        let mut leading = Sources::default();
        leading.glue("segment q = ");
        leading.push("c", "x", 0..1);
        assert_eq!(leading.locate(&(0..7)), None);
        let d = Diagnostic::new(Code::Syntax, 0..7, "bad");
        assert_eq!(leading.render(&[d], false).lines().count(), 1);
    }

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {code}");
            assert_eq!(code.as_str().len(), 4);
        }
        assert_eq!(Code::Syntax.severity(), Severity::Error);
        assert_eq!(Code::UnknownTag.severity(), Severity::Warning);
    }

    #[test]
    fn line_col_counts_characters_not_bytes() {
        let text = "ab\nпривет x";
        let x = text.find('x').unwrap();
        assert_eq!(line_col(text, x), LineCol { line: 2, column: 8 });
        assert_eq!(line_col(text, 0), LineCol { line: 1, column: 1 });
        // Inside a multi-byte character: snaps back to its start.
        assert_eq!(line_col(text, 5), LineCol { line: 2, column: 2 });
    }

    #[test]
    fn did_you_mean_finds_near_misses_only() {
        let names = ["click", "link_click", "opened", "delivered"];
        assert_eq!(did_you_mean("clik", names), Some("click"));
        assert_eq!(did_you_mean("Click", names), Some("click"));
        assert_eq!(did_you_mean("deliverd", names), Some("delivered"));
        assert_eq!(did_you_mean("zzzz", names), None);
        assert_eq!(did_you_mean("g", ["b", "c"]), None);
        assert_eq!(
            did_you_mean("exist", ["exists", "not_exists"]),
            Some("exists")
        );
    }
}
