//! AST -> checked [`Program`] + diagnostics: names, types (the catalog),
//! clauses, windows, references and cycles; with data at hand, selectors that
//! match nothing.

pub mod objects;
pub mod program;

use std::collections::HashMap;

use crate::catalog::{self, Channel, Event};
use crate::diagnostic::{did_you_mean, Code, Diagnostic, Span};
use crate::syntax::ast::{
    self, ClauseKind, ExprKind, Instant, ObjectKind, OperatorKind, Script, Unit,
};

pub use objects::{ObjectIndex, Objects};
pub use program::*;

/// The result of checking: the program when there are no errors, and every
/// diagnostic (errors and warnings) in source order.
#[derive(Debug, Clone)]
pub struct Checked {
    pub program: Option<Program>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Checks a parsed script. `objects` enables the data-aware warnings.
pub fn check(script: &Script, objects: Option<&ObjectIndex>) -> Checked {
    let mut checker = Checker {
        objects,
        diagnostics: Vec::new(),
        defs: HashMap::new(),
        edges: Vec::new(),
    };
    let program = checker.script(script);
    let mut diagnostics = checker.diagnostics;
    diagnostics.sort_by_key(|d| (d.span.start, d.span.end));
    let failed = diagnostics.iter().any(Diagnostic::is_error);
    Checked {
        program: if failed { None } else { program },
        diagnostics,
    }
}

struct Checker<'a> {
    objects: Option<&'a ObjectIndex>,
    diagnostics: Vec<Diagnostic>,
    /// Segment name -> index into the program's segments.
    defs: HashMap<String, usize>,
    /// Per segment: the segments it refers to, with the reference's span.
    edges: Vec<Vec<(usize, Span)>>,
}

impl Checker<'_> {
    fn report(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }

    fn script(&mut self, script: &Script) -> Option<Program> {
        let mut kept: Vec<&ast::Definition> = Vec::new();
        for def in &script.definitions {
            if def.name.name.is_empty() {
                continue;
            }
            if let Some(&first) = self.defs.get(&def.name.name) {
                let first_span = kept[first].name.span.clone();
                self.report(
                    Diagnostic::new(
                        Code::DuplicateSegment,
                        def.name.span.clone(),
                        format!("segment `{}` is defined more than once", def.name.name),
                    )
                    .with_label("defined again here")
                    .with_secondary(first_span, "first defined here")
                    .with_help("rename one of the definitions, or remove one"),
                );
                continue;
            }
            self.defs.insert(def.name.name.clone(), kept.len());
            kept.push(def);
        }
        self.edges = vec![Vec::new(); kept.len().max(1)];

        let mut segments = Vec::new();
        let mut ok = true;
        if let Some(expr) = &script.expr {
            match self.expr(expr, 0) {
                Some(e) => segments.push(Segment {
                    name: String::new(),
                    expr: e,
                    span: expr.span.clone(),
                }),
                None => ok = false,
            }
        }
        for (i, def) in kept.iter().enumerate() {
            match self.expr(&def.expr, i) {
                Some(e) => segments.push(Segment {
                    name: def.name.name.clone(),
                    expr: e,
                    span: def.span.clone(),
                }),
                None => ok = false,
            }
        }
        if script.expr.is_none() {
            self.cycles(&kept);
        }
        ok.then_some(Program {
            segments,
            bare: script.expr.is_some() && script.definitions.is_empty(),
        })
    }

    /// Reports each reference cycle once, with every step labelled.
    fn cycles(&mut self, defs: &[&ast::Definition]) {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Active,
            Done,
        }
        let n = defs.len();
        let mut mark = vec![Mark::New; n];
        for root in 0..n {
            if mark[root] != Mark::New {
                continue;
            }
            // Iterative DFS: (node, next edge index); the path is the stack.
            let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
            mark[root] = Mark::Active;
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                if let Some((target, _)) = self.edges[node].get(*next).cloned() {
                    *next += 1;
                    match mark[target] {
                        Mark::New => {
                            mark[target] = Mark::Active;
                            stack.push((target, 0));
                        }
                        Mark::Active => {
                            let from = stack.iter().position(|(s, _)| *s == target).unwrap_or(0);
                            let path: Vec<usize> = stack[from..].iter().map(|(s, _)| *s).collect();
                            self.report_cycle(defs, &path);
                        }
                        Mark::Done => {}
                    }
                } else {
                    mark[node] = Mark::Done;
                    stack.pop();
                }
            }
        }
    }

    fn report_cycle(&mut self, defs: &[&ast::Definition], path: &[usize]) {
        let mut names: Vec<&str> = path.iter().map(|&i| defs[i].name.name.as_str()).collect();
        names.push(defs[path[0]].name.name.as_str());
        let step_span = |from: usize, to: usize| {
            self.edges[from]
                .iter()
                .find(|(t, _)| *t == to)
                .map(|(_, s)| s.clone())
        };
        let first_to = path.get(1).copied().unwrap_or(path[0]);
        let primary =
            step_span(path[0], first_to).unwrap_or_else(|| defs[path[0]].name.span.clone());
        let mut d = Diagnostic::new(
            Code::ReferenceCycle,
            primary,
            format!(
                "segments refer to each other in a cycle: {}",
                names.join(" → ")
            ),
        )
        .with_label(format!("`{}` refers to `{}`", names[0], names[1]))
        .with_help("a segment cannot depend on itself; break the cycle by inlining one condition");
        for k in 1..path.len() {
            let to = path.get(k + 1).copied().unwrap_or(path[0]);
            if let Some(span) = step_span(path[k], to) {
                d = d.with_secondary(span, format!("`{}` refers to `{}`", names[k], names[k + 1]));
            }
        }
        self.report(d);
    }

    fn expr(&mut self, expr: &ast::Expr, owner: usize) -> Option<SegExpr> {
        match &expr.kind {
            ExprKind::Or(items) | ExprKind::And(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for item in items {
                    match self.expr(item, owner) {
                        Some(e) => out.push(e),
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                Some(if matches!(expr.kind, ExprKind::Or(_)) {
                    SegExpr::Or(out)
                } else {
                    SegExpr::And(out)
                })
            }
            ExprKind::Not(inner) => Some(SegExpr::Not(Box::new(self.expr(inner, owner)?))),
            ExprKind::Ref(ident) => match self.defs.get(&ident.name) {
                Some(&i) => {
                    if let Some(edges) = self.edges.get_mut(owner) {
                        edges.push((i, ident.span.clone()));
                    }
                    Some(SegExpr::Ref(i))
                }
                None => {
                    self.undefined(ident);
                    None
                }
            },
            ExprKind::Condition(c) => self.condition(c).map(|c| SegExpr::Cond(Box::new(c))),
            ExprKind::Sequence(q) => self.sequence(q).map(|q| SegExpr::Seq(Box::new(q))),
            ExprKind::Sample(sample) => self.sample(sample).map(SegExpr::Sample),
        }
    }

    fn undefined(&mut self, ident: &ast::Ident) {
        let names: Vec<&str> = self.defs.keys().map(String::as_str).collect();
        let suggestion = did_you_mean(&ident.name, names.iter().copied());
        let event_like = did_you_mean(&ident.name, catalog::event_names());
        let help = match (suggestion, event_like) {
            (Some(s), _) => Some(format!("did you mean `{s}`?")),
            (None, Some(e)) => Some(format!(
                "a condition needs a channel and an operator, as in `{e}.email exists`"
            )),
            (None, None) if names.is_empty() => Some(
                "define it with `segment name = …;`, or write a condition such as `click.email exists`"
                    .to_string(),
            ),
            (None, None) => None,
        };
        self.report(
            Diagnostic::new(
                Code::UndefinedSegment,
                ident.span.clone(),
                format!("undefined segment `{}`", ident.name),
            )
            .with_label("no segment has this name")
            .with_help_opt(help),
        );
    }

    fn event(&mut self, ident: &ast::Ident) -> Option<Event> {
        if let Some(e) = Event::from_name(&ident.name) {
            return Some(e);
        }
        let help = match did_you_mean(&ident.name, catalog::event_names()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!(
                "events are: {}",
                catalog::event_names().collect::<Vec<_>>().join(", ")
            ),
        };
        self.report(
            Diagnostic::new(
                Code::UnknownEvent,
                ident.span.clone(),
                format!("unknown event `{}`", ident.name),
            )
            .with_label("not an event of the catalog")
            .with_help(help),
        );
        None
    }

    fn channel(&mut self, ident: &ast::Ident) -> Option<Channel> {
        if let Some(c) = Channel::from_name(&ident.name) {
            return Some(c);
        }
        let help = match did_you_mean(&ident.name, catalog::channel_names()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!(
                "channels are: {}, or `*` for every channel",
                catalog::channel_names().collect::<Vec<_>>().join(", ")
            ),
        };
        self.report(
            Diagnostic::new(
                Code::UnknownChannel,
                ident.span.clone(),
                format!("unknown channel `{}`", ident.name),
            )
            .with_label("not a channel of the catalog")
            .with_help(help),
        );
        None
    }

    /// The event and the channels of `event.channel` (every channel of the
    /// event for `*`), each `None` when it is wrong (reported).
    fn event_channels(
        &mut self,
        event_ident: &ast::Ident,
        channel: &ast::ChannelRef,
    ) -> (Option<Event>, Option<Vec<Channel>>) {
        let event = self.event(event_ident);
        let ref_span = event_ident.span.start..channel.span().end;
        let channels = match channel {
            ast::ChannelRef::Any(_) => event.map(|e| e.channels().collect()),
            ast::ChannelRef::Named(ident) => {
                let channel = self.channel(ident);
                match (event, channel) {
                    (Some(e), Some(ch)) if !e.exists_in(ch) => {
                        self.not_in_channel(e, ch, ref_span, Code::EventNotInChannel);
                        None
                    }
                    (_, ch) => ch.map(|ch| vec![ch]),
                }
            }
        };
        (event, channels)
    }

    /// A `link` clause, with an error when the event records no link.
    fn link(
        &mut self,
        event: Option<Event>,
        event_span: &Span,
        l: &ast::Link,
        span: &Span,
    ) -> LinkMatch {
        if let Some(e) = event.filter(|e| !e.has_link()) {
            self.report(
                Diagnostic::new(
                    Code::LinkOnNonLinkEvent,
                    span.clone(),
                    format!("`link` does not apply to `{e}`"),
                )
                .with_label("this event records no link")
                .with_secondary(event_span.clone(), format!("`{e}` has no link"))
                .with_help("`link` applies to `link_click` and `unique_link_click`; for example `link_click.email at_least 1 link \"https://…\"`"),
            );
        }
        if l.like {
            LinkMatch::Like(l.pattern.value.clone())
        } else {
            LinkMatch::Exact(l.pattern.value.clone())
        }
    }

    fn duplicate_clause(&mut self, code: Code, what: &str, span: &Span, first: Span, help: &str) {
        self.report(
            Diagnostic::new(code, span.clone(), what.to_string())
                .with_label("second clause of this kind")
                .with_secondary(first, "first one here")
                .with_help(help),
        );
    }

    fn condition(&mut self, c: &ast::Condition) -> Option<Cond> {
        let errors_before = self.error_count();
        let (event, channels) = self.event_channels(&c.event, &c.channel);

        let op = &c.operator;
        let count = op.count.as_ref();
        let compare = match op.kind {
            OperatorKind::Exists => Some(Compare::AtLeast(1)),
            OperatorKind::NotExists | OperatorKind::NotHappened => Some(Compare::Exactly(0)),
            OperatorKind::AtLeast => count.and_then(|c| c.n).map(Compare::AtLeast),
            OperatorKind::AtMost => count.and_then(|c| c.n).map(Compare::AtMost),
            OperatorKind::Exactly => count.and_then(|c| c.n).map(Compare::Exactly),
            OperatorKind::FirstSeen | OperatorKind::LastSeen => Some(Compare::AtLeast(1)),
        };
        let unit = count.map_or(Unit::Times, |c| c.unit);
        let seen_op = match op.kind {
            OperatorKind::FirstSeen => Some(Seen::First),
            OperatorKind::LastSeen => Some(Seen::Last),
            _ => None,
        };
        if let (Some(_), Some(count)) = (seen_op, count) {
            let span =
                count.n_span.start..count.unit_span.clone().unwrap_or(count.n_span.clone()).end;
            self.report(
                Diagnostic::new(
                    Code::SeenWithCount,
                    span,
                    format!("`{}` takes no count or unit", op.kind.keyword()),
                )
                .with_label("remove this")
                .with_secondary(
                    op.span.clone(),
                    "this operator finds one instant, the earliest or latest event",
                )
                .with_help(format!(
                    "write `{}.{} {} <window>`; to count events write `at_least N …`",
                    c.event.name,
                    channel_text(&c.channel),
                    op.kind.keyword()
                )),
            );
        }
        if seen_op.is_some()
            && !c
                .clauses
                .iter()
                .any(|k| matches!(k.kind, ClauseKind::Window(_)))
        {
            let op_span = op.span.start..op.span.start + op.kind.keyword().len();
            self.report(
                Diagnostic::new(
                    Code::SeenWithoutWindow,
                    op_span,
                    format!("`{}` needs a window", op.kind.keyword()),
                )
                .with_label(format!(
                    "the {} event must lie in a window",
                    if seen_op == Some(Seen::First) {
                        "first"
                    } else {
                        "last"
                    }
                ))
                .with_help(format!(
                    "add a window, such as `{} last 7d` or `{} before 30d ago`",
                    op.kind.keyword(),
                    op.kind.keyword()
                )),
            );
        }

        let mut scope = None;
        let mut window = None;
        let mut link = None;
        let mut after = None;
        let mut seen: [Option<Span>; 4] = [None, None, None, None];
        for clause in &c.clauses {
            if matches!(op.kind, OperatorKind::Exists | OperatorKind::NotExists) {
                self.clause_not_allowed(op, clause);
                continue;
            }
            let slot = match clause.kind {
                ClauseKind::Scope(_) => 0,
                ClauseKind::Window(_) => 1,
                ClauseKind::Link(_) => 2,
                ClauseKind::After(_) => 3,
            };
            if let Some(first) = seen[slot].clone() {
                self.duplicate_clause(
                    Code::DuplicateClause,
                    &format!("a condition takes at most one {}", clause.kind.describe()),
                    &clause.span,
                    first,
                    match clause.kind {
                        ClauseKind::Scope(_) => "list every object in one scope: `in campaigns \"A\", \"B\"`; to require both, write two conditions joined with `and`",
                        ClauseKind::Window(_) => "combine them into one window, such as `between A and B`",
                        _ => "remove one of them, or write two conditions joined with `and` / `or`",
                    },
                );
                continue;
            }
            seen[slot] = Some(clause.span.clone());
            match &clause.kind {
                ClauseKind::Scope(s) => scope = self.scope(s),
                ClauseKind::Window(w) => window = self.window(w),
                ClauseKind::Link(l) => {
                    link = Some(self.link(event, &c.event.span, l, &clause.span));
                }
                ClauseKind::After(ident) => {
                    after = self.after(c, ident, op, channels.as_deref(), &clause.span);
                }
            }
        }

        if let (Some(compare), Some(n_span), None) =
            (compare, count.map(|c| c.n_span.clone()), seen_op)
        {
            self.always(
                compare,
                unit,
                scope.as_ref(),
                window.as_ref(),
                op.span.start..n_span.end,
                c,
            );
        }

        if self.error_count() > errors_before {
            return None;
        }
        Some(Cond {
            event: event?,
            channels: channels?,
            compare: compare?,
            unit,
            scope,
            window,
            link,
            after,
            seen: seen_op,
            span: c.span.clone(),
        })
    }

    fn sequence(&mut self, q: &ast::Sequence) -> Option<Seq> {
        let errors_before = self.error_count();
        let steps: Vec<Option<Step>> = q.steps.iter().map(|s| self.step(s)).collect();
        let negated = q.thens.iter().any(|t| t.not.is_some());
        for (i, then) in q.thens.iter().enumerate() {
            let Some(not) = &then.not else { continue };
            if i + 1 != q.thens.len() || q.steps.len() != 2 {
                self.report(
                    Diagnostic::new(
                        Code::ThenNotPlacement,
                        then.span.start..not.end,
                        "`then not` takes exactly two steps",
                    )
                    .with_label("`then not` here")
                    .with_secondary(q.span.clone(), format!("this sequence has {} steps", q.steps.len()))
                    .with_help(
                        "write `A then not B within D`; for more steps, join a sequence and a negated one with `and`",
                    ),
                );
            } else if q.within.is_none() && q.within_span.is_none() {
                self.report(
                    Diagnostic::new(
                        Code::ThenNotWithoutWithin,
                        then.span.start..not.end,
                        "`then not` needs `within`",
                    )
                    .with_label("how long after the first step must the second not happen?")
                    .with_help(format!(
                        "add `within D` after the last step, as in `… then not {}.{} within 1d`",
                        q.steps.last().map_or("opened", |s| s.event.name.as_str()),
                        q.steps.last().map_or("email", |s| channel_text(&s.channel)),
                    )),
                );
            }
        }
        let within = match &q.within {
            Some(d) => match d.seconds {
                Some(0) => {
                    self.report(
                        Diagnostic::new(
                            Code::EmptyWithin,
                            q.within_span.clone().unwrap_or(d.span.clone()),
                            "`within` needs a positive duration",
                        )
                        .with_label("no two events with strictly increasing times are 0s apart")
                        .with_help("write a positive duration such as `within 1h`"),
                    );
                    None
                }
                other => other,
            },
            None => None,
        };
        let mut window = None;
        let mut same = None;
        let mut seen: [Option<Span>; 2] = [None, None];
        for clause in &q.clauses {
            let (slot, what, help) = match clause.kind {
                ast::SeqClauseKind::Window(_) => (
                    0,
                    "a sequence takes at most one window",
                    "combine them into one window, such as `between A and B`; the window restricts the first step",
                ),
                ast::SeqClauseKind::Same(_) => (
                    1,
                    "a sequence takes at most one `same`",
                    "keep one key: `same message`, `same campaign` or `same template`",
                ),
            };
            if let Some(first) = seen[slot].clone() {
                self.duplicate_clause(Code::DuplicateSeqClause, what, &clause.span, first, help);
                continue;
            }
            seen[slot] = Some(clause.span.clone());
            match &clause.kind {
                ast::SeqClauseKind::Window(w) => window = self.window(w),
                ast::SeqClauseKind::Same(k) => same = Some(*k),
            }
        }
        if self.error_count() > errors_before {
            return None;
        }
        Some(Seq {
            steps: steps.into_iter().collect::<Option<Vec<_>>>()?,
            negated,
            within,
            window,
            same,
            span: q.span.clone(),
        })
    }

    fn step(&mut self, s: &ast::Step) -> Option<Step> {
        let errors_before = self.error_count();
        let (event, channels) = self.event_channels(&s.event, &s.channel);
        let mut scope = None;
        let mut link = None;
        let mut seen: [Option<Span>; 2] = [None, None];
        for clause in &s.clauses {
            let slot = match clause.kind {
                ClauseKind::Scope(_) => 0,
                _ => 1,
            };
            if let Some(first) = seen[slot].clone() {
                self.duplicate_clause(
                    Code::DuplicateClause,
                    &format!("a step takes at most one {}", clause.kind.describe()),
                    &clause.span,
                    first,
                    match clause.kind {
                        ClauseKind::Scope(_) => {
                            "list every object in one scope: `in campaigns \"A\", \"B\"`"
                        }
                        _ => "keep one link; `link like \"…%\"` matches several URLs",
                    },
                );
                continue;
            }
            seen[slot] = Some(clause.span.clone());
            match &clause.kind {
                ClauseKind::Scope(sc) => scope = self.scope(sc),
                ClauseKind::Link(l) => {
                    link = Some(self.link(event, &s.event.span, l, &clause.span))
                }
                _ => {}
            }
        }
        if self.error_count() > errors_before {
            return None;
        }
        Some(Step {
            event: event?,
            channels: channels?,
            scope,
            link,
        })
    }

    fn sample(&mut self, sample: &ast::Sample) -> Option<Sample> {
        let basis_points = sample.basis_points?;
        let seed = sample.seed?;
        if basis_points == crate::sample::BUCKETS as u32 {
            self.report(
                Diagnostic::new(
                    Code::AlwaysTrue,
                    sample.percent_span.clone(),
                    "`sample 100%` holds for every profile",
                )
                .with_label("the whole universe")
                .with_help("drop the sample, or choose a smaller percentage"),
            );
        }
        Some(Sample { basis_points, seed })
    }

    fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    fn not_in_channel(&mut self, event: Event, channel: Channel, span: Span, code: Code) {
        let where_: Vec<&str> = event.channels().map(Channel::name).collect();
        self.report(
            Diagnostic::new(
                code,
                span,
                format!("`{event}` is not available in `{channel}`"),
            )
            .with_label(format!("`{channel}` records no `{event}` events"))
            .with_help(format!("`{event}` is available in: {}", where_.join(", "))),
        );
    }

    fn clause_not_allowed(&mut self, op: &ast::Operator, clause: &ast::Clause) {
        let help = match op.kind {
            OperatorKind::Exists => "`exists` means \"ever\"; to count events with clauses write `at_least 1 …`",
            _ => "`not_exists` means \"never\"; to require no event within a scope or window write `not_happened …`",
        };
        self.report(
            Diagnostic::new(
                Code::ClauseNotAllowed,
                clause.span.clone(),
                format!("`{}` takes no clauses", op.kind.keyword()),
            )
            .with_label(format!("a {} is not allowed here", clause.kind.describe()))
            .with_secondary(
                op.span.clone(),
                format!("`{}` takes no clauses", op.kind.keyword()),
            )
            .with_help(help),
        );
    }

    fn after(
        &mut self,
        c: &ast::Condition,
        ident: &ast::Ident,
        op: &ast::Operator,
        channels: Option<&[Channel]>,
        clause_span: &Span,
    ) -> Option<After> {
        if matches!(op.kind, OperatorKind::FirstSeen | OperatorKind::LastSeen) {
            self.report(
                Diagnostic::new(
                    Code::SeenWithAfter,
                    clause_span.clone(),
                    format!("`{}` takes no `after`", op.kind.keyword()),
                )
                .with_label("`after` is not allowed here")
                .with_secondary(op.span.clone(), "this operator")
                .with_help(format!(
                    "for \"{} after {}\", write a sequence: `{}.{} then {}.{} …`",
                    c.event.name,
                    ident.name,
                    ident.name,
                    channel_text(&c.channel),
                    c.event.name,
                    channel_text(&c.channel),
                )),
            );
            return None;
        }
        if op.kind != OperatorKind::NotHappened {
            self.report(
                Diagnostic::new(
                    Code::AfterWithoutNotHappened,
                    clause_span.clone(),
                    format!(
                        "`after` applies only to `not_happened`, not to `{}`",
                        op.kind.keyword()
                    ),
                )
                .with_label("`after` is not allowed here")
                .with_secondary(op.span.clone(), "this operator")
                .with_help(format!(
                    "for \"{} did not happen after {}\", write `{}.{} not_happened … after {}`",
                    c.event.name,
                    ident.name,
                    c.event.name,
                    channel_text(&c.channel),
                    ident.name
                )),
            );
        }
        let after_event = self.event(ident)?;
        let channels = channels?;
        let kept: Vec<Channel> = channels
            .iter()
            .copied()
            .filter(|ch| after_event.exists_in(*ch))
            .collect();
        if kept.is_empty() {
            match &c.channel {
                ast::ChannelRef::Named(_) => self.not_in_channel(
                    after_event,
                    channels[0],
                    ident.span.clone(),
                    Code::AfterEventNotInChannel,
                ),
                ast::ChannelRef::Any(_) => {
                    let where_: Vec<&str> = after_event.channels().map(Channel::name).collect();
                    self.report(
                        Diagnostic::new(
                            Code::AfterEventNotInChannel,
                            ident.span.clone(),
                            format!(
                                "`{after_event}` exists in none of the channels of `{}.*`",
                                c.event.name
                            ),
                        )
                        .with_label("no channel of the condition records this event")
                        .with_help(format!(
                            "`{after_event}` is available in: {}",
                            where_.join(", ")
                        )),
                    );
                }
            }
            return None;
        }
        Some(After {
            event: after_event,
            channels: kept,
        })
    }

    fn scope(&mut self, scope: &ast::Scope) -> Option<Scope> {
        let kind = scope.kind;
        let objects = self.objects.map(|o| o.of(kind));
        let plural = match kind {
            ObjectKind::Campaign => "campaigns",
            ObjectKind::Template => "templates",
        };
        let selector = match &scope.selector {
            ast::Selector::Items(items) => {
                let mut ids = Vec::new();
                let mut names = Vec::new();
                for item in items {
                    match item {
                        ast::Item::Id(Some(id), span) => {
                            if let Some(known) = objects.and_then(|o| o.ids.as_ref()) {
                                if !known.contains(id) {
                                    self.report(
                                        Diagnostic::new(
                                            Code::UnknownId,
                                            span.clone(),
                                            format!("no {} has id {id}", kind.name()),
                                        )
                                        .with_label(format!("not in {plural}.parquet"))
                                        .with_help(format!(
                                            "an id selects itself all the same: events with {}_id = {id} still count",
                                            kind.name()
                                        )),
                                    );
                                }
                            }
                            ids.push(*id);
                        }
                        ast::Item::Id(None, _) => {}
                        ast::Item::Name(s) => {
                            if let Some(o) = objects.filter(|o| o.ids.is_some()) {
                                self.unknown(
                                    Code::UnknownName,
                                    s,
                                    o.names.keys(),
                                    &format!("no {} is named", kind.name()),
                                    "it selects nothing",
                                );
                            }
                            names.push(s.value.clone());
                        }
                    }
                }
                Selector::Items { ids, names }
            }
            ast::Selector::Tagged(tags) => {
                if let Some(o) = objects.filter(|_| self.objects.is_some_and(|x| x.has_tags)) {
                    for t in tags {
                        self.unknown(
                            Code::UnknownTag,
                            t,
                            o.tags.keys(),
                            &format!("no {} is tagged", kind.name()),
                            "it selects nothing",
                        );
                    }
                }
                Selector::Tagged(tags.iter().map(|t| t.value.clone()).collect())
            }
            ast::Selector::Where(tests) => {
                if let Some(o) = objects.filter(|_| self.objects.is_some_and(|x| x.has_attributes))
                {
                    for t in tests {
                        let key = ast::StrLit {
                            value: t.key.name.clone(),
                            span: t.key.span.clone(),
                        };
                        self.unknown(
                            Code::UnknownAttribute,
                            &key,
                            o.attributes.keys(),
                            &format!("no {} has the attribute", kind.name()),
                            "the test selects nothing",
                        );
                    }
                }
                Selector::Where(
                    tests
                        .iter()
                        .map(|t| (t.key.name.clone(), t.negated, t.value.value.clone()))
                        .collect(),
                )
            }
        };
        Some(Scope { kind, selector })
    }

    /// Warns when `lit` is not among `known`, with a did-you-mean.
    fn unknown<'k>(
        &mut self,
        code: Code,
        lit: &ast::StrLit,
        known: impl Iterator<Item = &'k String> + Clone,
        what: &str,
        consequence: &str,
    ) {
        if known.clone().any(|k| *k == lit.value) {
            return;
        }
        let suggestion = did_you_mean(&lit.value, known.map(String::as_str));
        self.report(
            Diagnostic::new(code, lit.span.clone(), format!("{what} {:?}", lit.value))
                .with_label(format!("not found in the data; {consequence}"))
                .with_help_opt(suggestion.map(|s| format!("did you mean {s:?}?"))),
        );
    }

    fn window(&mut self, w: &ast::Window) -> Option<Window> {
        let at = |i: &Instant| -> Option<At> {
            match i {
                Instant::At(t, _) => t.map(At::Time),
                Instant::Ago(d, _) => d.seconds.map(At::Ago),
            }
        };
        match w {
            ast::Window::Last(d) => {
                let seconds = d.seconds?;
                if seconds == 0 {
                    self.report(
                        Diagnostic::new(
                            Code::EmptyWindow,
                            d.span.clone(),
                            "`last` needs a positive duration",
                        )
                        .with_label("this window holds no instant")
                        .with_help("write a positive duration such as `last 30d`"),
                    );
                    return None;
                }
                Some(Window {
                    start: Some(Bound {
                        at: At::Ago(seconds),
                        inclusive: false,
                    }),
                    end: None,
                })
            }
            ast::Window::Between(a, b) => {
                let (sa, sb) = (at(a)?, at(b)?);
                let order = match (sa, sb) {
                    (At::Time(x), At::Time(y)) => Some(x.cmp(&y)),
                    (At::Ago(x), At::Ago(y)) => Some(y.cmp(&x)),
                    _ => None,
                };
                let span = a.span().start..b.span().end;
                match order {
                    Some(std::cmp::Ordering::Equal) => {
                        self.report(
                            Diagnostic::new(
                                Code::EmptyWindow,
                                span,
                                "the window is empty: both ends are the same instant",
                            )
                            .with_label("`between A and A` holds no instant (A <= ts < A)")
                            .with_help("make the end later than the start"),
                        );
                        None
                    }
                    Some(std::cmp::Ordering::Greater) => {
                        self.report(
                            Diagnostic::new(
                                Code::InvertedWindow,
                                span,
                                "the window ends before it starts",
                            )
                            .with_label("the start is later than the end")
                            .with_secondary(a.span().clone(), "start")
                            .with_secondary(b.span().clone(), "end")
                            .with_help(format!(
                                "swap the ends: `between {} and {}`",
                                instant_text(b),
                                instant_text(a)
                            )),
                        );
                        None
                    }
                    _ => Some(Window {
                        start: Some(Bound {
                            at: sa,
                            inclusive: true,
                        }),
                        end: Some(Bound {
                            at: sb,
                            inclusive: false,
                        }),
                    }),
                }
            }
            ast::Window::Since(a) => Some(Window {
                start: Some(Bound {
                    at: at(a)?,
                    inclusive: true,
                }),
                end: None,
            }),
            ast::Window::Before(b) => Some(Window {
                start: None,
                end: Some(Bound {
                    at: at(b)?,
                    inclusive: false,
                }),
            }),
        }
    }

    /// Warnings for conditions that hold for every profile or for none.
    fn always(
        &mut self,
        compare: Compare,
        unit: Unit,
        scope: Option<&Scope>,
        window: Option<&Window>,
        span: Span,
        c: &ast::Condition,
    ) {
        if compare == Compare::AtLeast(0) {
            self.report(
                Diagnostic::new(Code::AlwaysTrue, span, "`at_least 0` holds for every profile")
                    .with_label("every count is at least 0")
                    .with_help(format!(
                        "to require an event write `at_least 1`; to select everyone, drop the condition `{}`",
                        c.event.name
                    )),
            );
            return;
        }
        let needed = match compare {
            Compare::AtLeast(n) | Compare::Exactly(n) => u64::from(n),
            Compare::AtMost(_) => return,
        };
        // The most the count can reach, when the script alone tells.
        let max = match (unit, scope) {
            (Unit::Days, _) => window
                .and_then(window_seconds)
                .map(|s| (s as u64).div_ceil(86_400) + 1),
            (Unit::Weeks, _) => window
                .and_then(window_seconds)
                .map(|s| (s as u64).div_ceil(604_800) + 1),
            (Unit::Months, _) => window
                .and_then(window_seconds)
                .map(|s| (s as u64).div_ceil(28 * 86_400) + 1),
            (
                Unit::Campaigns,
                Some(Scope {
                    kind: ObjectKind::Campaign,
                    selector: Selector::Items { ids, names },
                }),
            )
            | (
                Unit::Templates,
                Some(Scope {
                    kind: ObjectKind::Template,
                    selector: Selector::Items { ids, names },
                }),
            ) if names.is_empty() => {
                let mut distinct = ids.clone();
                distinct.sort_unstable();
                distinct.dedup();
                Some(distinct.len() as u64)
            }
            _ => None,
        };
        if let Some(max) = max.filter(|&m| needed > m) {
            self.report(
                Diagnostic::new(
                    Code::AlwaysEmpty,
                    span,
                    format!(
                        "no profile can reach {needed} {}: at most {max} are possible",
                        unit.keyword()
                    ),
                )
                .with_label("this count can never be reached")
                .with_help(match unit {
                    Unit::Days | Unit::Weeks | Unit::Months => {
                        "widen the window or lower the count"
                    }
                    _ => "list more objects or lower the count",
                }),
            );
        }
    }
}

/// The length of a window in seconds, when it does not depend on as_of's date.
fn window_seconds(w: &Window) -> Option<i64> {
    match (&w.start, &w.end) {
        (Some(s), None) => match s.at {
            At::Ago(seconds) => Some(seconds),
            At::Time(_) => None,
        },
        (Some(s), Some(e)) => match (s.at, e.at) {
            (At::Time(a), At::Time(b)) => Some((b - a).num_seconds()),
            (At::Ago(a), At::Ago(b)) => Some(a - b),
            _ => None,
        },
        _ => None,
    }
}

fn channel_text(c: &ast::ChannelRef) -> &str {
    match c {
        ast::ChannelRef::Named(ch) => ch.name.as_str(),
        ast::ChannelRef::Any(_) => "*",
    }
}

fn instant_text(i: &Instant) -> String {
    match i {
        Instant::At(Some(t), _) => {
            if t.time() == chrono::NaiveTime::MIN {
                t.format("%Y-%m-%d").to_string()
            } else {
                t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            }
        }
        Instant::Ago(d, _) => match d.seconds {
            Some(s) => format!("{} ago", crate::format_duration(s)),
            None => "…".to_string(),
        },
        Instant::At(None, _) => "…".to_string(),
    }
}
