//! Checked program -> DataFusion `LogicalPlan`, one scan of events per segment.
//!
//! The shape (see `docs/semantics.md`):
//!
//! ```text
//! Sort(profile_id)
//!   Projection(profile_id)
//!     Filter(<the segment's boolean formula over the counts>)
//!       [Left join with the universe, only when the formula holds for silent profiles]
//!         Aggregate(group by profile_id;
//!                   c0 = count(1) FILTER (WHERE <condition 0>), c1 = …)
//!           Filter(ts <= as_of AND event IN (…) AND (<condition 0> OR <condition 1> …))
//!             TableScan(events)
//! ```
//!
//! When the formula holds for silent profiles and the profile ids are a dense
//! range, Seg's own plan (not the SQL) has no join: the profiles are a second
//! input of the aggregate, as rows whose event columns are NULL, so every
//! profile has a group, and the counts count only event rows
//! (`count(__event)`, which is 1 on events and NULL on profiles).
//!
//! The plan holds for any data: the engine's optimizer rules
//! (`engine::time_rules`) fit it to what the footers say of `ts`, and the
//! SQL backend writes it for other engines. Where the two differ, the
//! planner asks the [`Form`] of its [`PlanEnv`].
//!
//! Every condition of the segment, including those reached through references,
//! becomes one conditional aggregate over the same scan. Scope selectors are
//! resolved against the small dimension tables into id lists first.

mod form;
mod period;
pub(crate) mod sequence;
mod window;

pub use form::{Executed, Form, SqlTables};

pub(crate) use period::{date_day, day_key, month_key, week_key};
pub(crate) use window::unit_nanos;

/// With profile rows in the aggregate's input: 1 on event rows, NULL on
/// profile rows.
const EVENT_ROW: &str = "__event";

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::TableReference;
use datafusion::common::{Column, JoinType, ScalarValue};
use datafusion::functions::core::expr_fn::coalesce;
use datafusion::functions_aggregate::expr_fn::{count, count_distinct, max, min, sum};
use datafusion::logical_expr::utils::split_conjunction_owned;
use datafusion::logical_expr::{
    binary_expr, cast, lit, not, when, Expr, ExprFunctionExt, LogicalPlan, LogicalPlanBuilder,
    Operator, TableSource,
};

use crate::catalog::{Channel, Event};
use crate::check::{
    At, Bound, Cond, LinkMatch, ObjectIndex, Program, Sample, Scope, Seen, SegExpr, Selector, Seq,
    Window,
};
use crate::data::DataError;
use crate::syntax::ast::{ObjectKind, Unit};

/// How deep a segment may nest once its references are inlined.
const MAX_INLINED_DEPTH: usize = 2_000;

/// What a plan is built against: the tables and the evaluation instant.
#[derive(Clone)]
pub struct PlanEnv<'a> {
    pub events: Arc<dyn TableSource>,
    /// `profiles`, when the data has it: the universe.
    pub profiles: Option<Arc<dyn TableSource>>,
    /// When the universe is exactly the ids `lo..=hi` (see
    /// `DataDir::profiles_range`): a range test replaces the join with it.
    pub profiles_range: Option<(i64, i64)>,
    pub objects: &'a ObjectIndex,
    /// The type of `events.ts`, so window bounds compare exactly in its unit.
    pub ts_type: DataType,
    pub as_of: DateTime<Utc>,
    /// How the plan spells what engines do differently: [`Executed`] for
    /// the plan Seg runs; `crate::sql`'s form for a plan written as SQL.
    pub form: &'a dyn Form,
    /// The most one-byte counters (profiles × counts) the engine counts in
    /// arrays indexed by profile id (`engine::dense_count`); 0 for none.
    pub dense_counters: usize,
}

/// A dimension-table lookup of a selector, joined to events in SQL plans.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Lookup {
    Names(ObjectKind, Vec<String>),
    Tags(ObjectKind, Vec<String>),
    /// `(kind, key, negated, value)`.
    Attribute(ObjectKind, String, bool, String),
}

/// A segment's formula with references inlined: atoms index distinct
/// conditions, sequences distinct sequences.
#[derive(Debug, Clone, PartialEq)]
enum Formula {
    Or(Vec<Formula>),
    And(Vec<Formula>),
    Not(Box<Formula>),
    Atom(usize),
    Seq(usize),
    Sample(Sample),
}

impl Formula {
    /// The formula's value for a profile without events: `None` when it
    /// depends on the profile (a sample).
    fn silent(&self, atoms: &[Cond]) -> Option<bool> {
        match self {
            Formula::Or(items) => {
                let values: Vec<Option<bool>> = items.iter().map(|f| f.silent(atoms)).collect();
                if values.contains(&Some(true)) {
                    Some(true)
                } else if values.iter().all(|v| *v == Some(false)) {
                    Some(false)
                } else {
                    None
                }
            }
            Formula::And(items) => {
                let values: Vec<Option<bool>> = items.iter().map(|f| f.silent(atoms)).collect();
                if values.contains(&Some(false)) {
                    Some(false)
                } else if values.iter().all(|v| *v == Some(true)) {
                    Some(true)
                } else {
                    None
                }
            }
            Formula::Not(inner) => inner.silent(atoms).map(|v| !v),
            Formula::Atom(i) => {
                let a = &atoms[*i];
                Some(a.after.is_none() && a.seen.is_none() && a.compare.holds(0))
            }
            Formula::Seq(_) => Some(false),
            Formula::Sample(_) => None,
        }
    }

    /// Whether some profile without events may belong.
    fn may_hold_silent(&self, atoms: &[Cond]) -> bool {
        self.silent(atoms) != Some(false)
    }
}

/// Collects the distinct conditions of a segment and its inlined formula.
struct Inliner<'p> {
    program: &'p Program,
    atoms: Vec<Cond>,
    seqs: Vec<Seq>,
    /// Per segment: its inlined formula and depth, once computed.
    memo: Vec<Option<(Formula, usize)>>,
}

impl<'p> Inliner<'p> {
    fn new(program: &'p Program) -> Self {
        Inliner {
            program,
            atoms: Vec::new(),
            seqs: Vec::new(),
            memo: vec![None; program.segments.len()],
        }
    }

    /// Inlines segment `root`, computing referenced segments first (in
    /// dependency order, without recursion across references).
    fn segment(&mut self, root: usize) -> Result<Formula, DataError> {
        let mut order = Vec::new();
        let mut stack = vec![(root, false)];
        let mut seen = vec![false; self.program.segments.len()];
        while let Some((s, expanded)) = stack.pop() {
            if expanded {
                order.push(s);
                continue;
            }
            if seen[s] || self.memo[s].is_some() {
                continue;
            }
            seen[s] = true;
            stack.push((s, true));
            let mut refs = Vec::new();
            collect_refs(&self.program.segments[s].expr, &mut refs);
            stack.extend(refs.into_iter().map(|r| (r, false)));
        }
        for s in order {
            let expr = &self.program.segments[s].expr;
            let done = self.expr(expr)?;
            self.memo[s] = Some(done);
        }
        match &self.memo[root] {
            Some((f, _)) => Ok(f.clone()),
            None => Err(DataError::new("internal error: segment was not inlined")),
        }
    }

    fn expr(&mut self, e: &SegExpr) -> Result<(Formula, usize), DataError> {
        let (f, depth) = match e {
            SegExpr::Or(items) | SegExpr::And(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut depth = 0;
                for item in items {
                    let (f, d) = self.expr(item)?;
                    depth = depth.max(d);
                    out.push(f);
                }
                let f = if matches!(e, SegExpr::Or(_)) {
                    Formula::Or(out)
                } else {
                    Formula::And(out)
                };
                (f, depth + 1)
            }
            SegExpr::Not(inner) => {
                let (f, d) = self.expr(inner)?;
                (Formula::Not(Box::new(f)), d + 1)
            }
            SegExpr::Ref(r) => match &self.memo[*r] {
                Some((f, d)) => (f.clone(), *d),
                None => {
                    return Err(DataError::new(
                        "internal error: reference inlined out of order",
                    ))
                }
            },
            SegExpr::Cond(c) => {
                let key = Cond {
                    span: 0..0,
                    ..(**c).clone()
                };
                (Formula::Atom(interned(&mut self.atoms, key)), 1)
            }
            SegExpr::Seq(q) => {
                let key = Seq {
                    span: 0..0,
                    ..(**q).clone()
                };
                (Formula::Seq(interned(&mut self.seqs, key)), 1)
            }
            SegExpr::Sample(sample) => (Formula::Sample(*sample), 1),
        };
        if depth > MAX_INLINED_DEPTH {
            return Err(DataError::new(format!(
                "the segment nests more than {MAX_INLINED_DEPTH} levels deep through its references"
            )));
        }
        Ok((f, depth))
    }
}

/// The index of `key` in `items`, added when absent: identical conditions
/// (and sequences) share one aggregate.
fn interned<T: PartialEq>(items: &mut Vec<T>, key: T) -> usize {
    match items.iter().position(|a| *a == key) {
        Some(i) => i,
        None => {
            items.push(key);
            items.len() - 1
        }
    }
}

fn collect_refs(e: &SegExpr, out: &mut Vec<usize>) {
    match e {
        SegExpr::Or(items) | SegExpr::And(items) => items.iter().for_each(|i| collect_refs(i, out)),
        SegExpr::Not(inner) => collect_refs(inner, out),
        SegExpr::Ref(r) => out.push(*r),
        SegExpr::Cond(_) | SegExpr::Seq(_) | SegExpr::Sample(_) => {}
    }
}

/// Builds the logical plan that returns the ids of segment `segment`, sorted.
pub fn segment_plan(
    program: &Program,
    segment: usize,
    env: &PlanEnv<'_>,
) -> Result<LogicalPlan, DataError> {
    if segment >= program.segments.len() {
        return Err(DataError::new(format!("no segment number {segment}")));
    }
    let mut inliner = Inliner::new(program);
    let formula = inliner.segment(segment)?;
    Lowering::new(env, &inliner.atoms, &inliner.seqs).plan(&[formula], false)
}

/// One plan for several segments, still with one scan of events: it returns
/// `profile_id` and a boolean column `m{i}` per segment (in the order given),
/// for every profile that belongs to at least one of them.
pub fn segments_plan(
    program: &Program,
    segments: &[usize],
    env: &PlanEnv<'_>,
) -> Result<LogicalPlan, DataError> {
    let mut inliner = Inliner::new(program);
    let mut formulas = Vec::with_capacity(segments.len());
    for &s in segments {
        if s >= program.segments.len() {
            return Err(DataError::new(format!("no segment number {s}")));
        }
        formulas.push(inliner.segment(s)?);
    }
    Lowering::new(env, &inliner.atoms, &inliner.seqs).plan(&formulas, true)
}

/// Segment `segment` in the portable form as the parts of one SELECT, for
/// a SQL writer to assemble without a plan (`crate::sql`): `None` for a
/// segment of samples alone, which reads no events. The parts are the plan's
/// own ([`Lowering::plan`] takes the same steps); a sequence's test in the
/// formula is still a subquery with a plan (`sequence::sql`).
pub fn segment_select(
    program: &Program,
    segment: usize,
    env: &PlanEnv<'_>,
) -> Result<Option<SqlSelect>, DataError> {
    if segment >= program.segments.len() {
        return Err(DataError::new(format!("no segment number {segment}")));
    }
    let mut inliner = Inliner::new(program);
    let formula = inliner.segment(segment)?;
    Lowering::new(env, &inliner.atoms, &inliner.seqs).select(&formula)
}

struct Lowering<'a, 'e> {
    env: &'a PlanEnv<'e>,
    atoms: &'a [Cond],
    seqs: &'a [Seq],
    /// SQL plans: the distinct dimension lookups, joined as `s0`, `s1`, …
    lookups: Vec<Lookup>,
}

impl<'a, 'e> Lowering<'a, 'e> {
    fn new(env: &'a PlanEnv<'e>, atoms: &'a [Cond], seqs: &'a [Seq]) -> Self {
        let mut lookups = BTreeSet::new();
        if env.form.portable().is_some() {
            let step_scopes = seqs
                .iter()
                .flat_map(|q| &q.steps)
                .filter_map(|s| s.scope.as_ref());
            for scope in atoms
                .iter()
                .filter_map(|a| a.scope.as_ref())
                .chain(step_scopes)
            {
                lookups.extend(scope_lookups(scope.kind, &scope.selector));
            }
        }
        Lowering {
            env,
            atoms,
            seqs,
            lookups: lookups.into_iter().collect(),
        }
    }

    /// The plan of one or more formulas over one scan; with `membership`,
    /// one boolean column per formula. The steps, in order: what each
    /// aggregate computes over which rows ([`Lowering::measures`]), how the
    /// universe enters ([`Lowering::universe_shape`]), the filter before the
    /// aggregate ([`Lowering::prefilter`]), the aggregates
    /// ([`Lowering::aggregates`]), the counts ([`Lowering::counts`]), and
    /// the formulas over them ([`Lowering::output`]).
    fn plan(&self, formulas: &[Formula], membership: bool) -> Result<LogicalPlan, DataError> {
        let until_as_of = self.ts().lt_eq(window::at_most(self.env, self.env.as_of)?);
        if self.atoms.is_empty() && self.seqs.is_empty() {
            return self.without_events(formulas, membership, until_as_of);
        }
        let (universe, prefilter, aggregates) = self.aggregated(formulas, &until_as_of)?;
        let counted = self.counts(prefilter, &aggregates, &universe)?;
        self.output(
            formulas,
            membership,
            counted,
            &aggregates.columns,
            &universe,
            until_as_of,
        )
    }

    /// The parts of [`segment_select`]: steps 1 to 4 of [`Lowering::plan`],
    /// then the filter, the lookups and the formula that steps 5 and 6 put in
    /// the plan.
    fn select(&self, formula: &Formula) -> Result<Option<SqlSelect>, DataError> {
        let no_events = self.atoms.is_empty() && self.seqs.is_empty();
        if self.env.form.portable().is_none() || no_events {
            return Ok(None);
        }
        let until_as_of = self.ts().lt_eq(window::at_most(self.env, self.env.as_of)?);
        let (universe, prefilter, aggregates) =
            self.aggregated(std::slice::from_ref(formula), &until_as_of)?;
        if aggregates.lone_distinct.is_some() || universe.with_profiles.is_some() {
            return Ok(None);
        }
        let filter = self.event_filter(prefilter, &aggregates, &universe);
        let joined = universe.silent;
        let id = match joined {
            true => column_of("universe", "profile_id"),
            false => column_of("counts", "profile_id"),
        };
        let predicate = self.formula(formula, joined, &aggregates.columns, &Expr::Column(id))?;
        let universe = match (joined, self.env.profiles.is_some()) {
            (true, profiles) => SqlUniverse::Joined {
                until_as_of: (!profiles).then_some(until_as_of),
            },
            (false, true) if universe.range.is_none() => SqlUniverse::Exists,
            (false, _) => SqlUniverse::Counted,
        };
        Ok(Some(SqlSelect {
            lookups: self.sql_lookups().into_iter().map(|(l, _)| l).collect(),
            filter,
            aggregates: aggregates.exprs,
            predicate,
            universe,
        }))
    }

    /// Steps 1 to 4, which the plan and the SELECT's parts share: the
    /// universe's shape, the filter before the aggregate and the aggregates.
    fn aggregated(
        &self,
        formulas: &[Formula],
        until_as_of: &Expr,
    ) -> Result<(UniverseShape, Prefilter, Aggregates), DataError> {
        let measures = self.measures()?;
        let universe = self.universe_shape(formulas);
        let prefilter = self.prefilter(&measures, &universe, until_as_of.clone())?;
        let established = [&prefilter.kept[..], &prefilter.common[..]].concat();
        let aggregates = self.aggregates(measures, &established, &universe)?;
        Ok((universe, prefilter, aggregates))
    }

    /// Step 1: per aggregate, its name, what it computes and the rows it
    /// reads.
    fn measures(&self) -> Result<Vec<(String, Measure<'a>, Expr)>, DataError> {
        let mut out = Vec::new();
        for (i, atom) in self.atoms.iter().enumerate() {
            if let Some(seen) = atom.seen {
                // The extremum ignores the window; the formula tests it.
                let pred = self.rows(
                    atom.event,
                    &atom.channels,
                    atom.scope.as_ref(),
                    None,
                    atom.link.as_ref(),
                )?;
                match self.seen_window(atom) {
                    // Run, the extremum is in the window when some row is and
                    // none is beyond it on the extremum's side: counts of rows
                    // by comparisons of `ts` with the window's bounds, which
                    // the time rules decide for whole files and row groups
                    // without reading `ts`.
                    Some(w) => {
                        let (start, end) = self.window_sides(w, self.ts())?;
                        let inside = [start.clone(), end.clone()].into_iter().flatten();
                        let inside = inside.fold(pred.clone(), Expr::and);
                        out.push((format!("c{i}"), Measure::Rows, inside));
                        let beyond = match seen {
                            Seen::First => start,
                            Seen::Last => end,
                        };
                        if let Some(bound) = beyond {
                            out.push((format!("x{i}"), Measure::Rows, pred.and(not(bound))));
                        }
                    }
                    _ => out.push((format!("c{i}"), Measure::Seen(seen), pred)),
                }
                continue;
            }
            let pred = self.condition_predicate(atom, atom.event, &atom.channels, true)?;
            out.push((format!("c{i}"), Measure::Count(atom), pred));
            if let Some(after) = &atom.after {
                let pred = self.condition_predicate(atom, after.event, &after.channels, false)?;
                out.push((format!("a{i}"), Measure::Rows, pred));
            }
        }
        for (i, q) in self.seqs.iter().enumerate() {
            let steps = self.step_predicates(q)?;
            let (pred, measure) = match self.env.form.portable() {
                // SQL tests the sequence in the formula (`sequence::sql`); the
                // count only brings the profile into the counts.
                Some(_) => (
                    steps.iter().cloned().reduce(Expr::or).unwrap_or(lit(false)),
                    Measure::Rows,
                ),
                // What every step tests (the channel, the window's start,
                // the key) as conjuncts of their own: the filter establishes
                // them, and the steps' bits test only the rest (`aggregates`).
                None => {
                    let shared = common_conjuncts(&steps);
                    let rest = steps
                        .iter()
                        .map(|step| without(step.clone(), &shared))
                        .reduce(Expr::or)
                        .unwrap_or(lit(false));
                    let pred = shared.into_iter().chain([rest]).reduce(Expr::and);
                    (pred.unwrap_or(lit(false)), Measure::Seq(q, steps))
                }
            };
            out.push((format!("q{i}"), measure, pred));
        }
        Ok(out)
    }

    /// Step 2: whether profiles without events may belong, and so how the
    /// universe enters the plan.
    fn universe_shape(&self, formulas: &[Formula]) -> UniverseShape {
        let silent = formulas.iter().any(|f| f.may_hold_silent(self.atoms));
        // Silent profiles over a dense universe: the profiles join the
        // aggregate's input (see the module documentation).
        let with_profiles = match (&self.env.profiles, self.env.profiles_range) {
            (Some(profiles), Some(_)) if silent && self.env.form.portable().is_none() => {
                Some(Arc::clone(profiles))
            }
            _ => None,
        };
        let range = self
            .env
            .profiles_range
            .filter(|_| !silent || with_profiles.is_some());
        UniverseShape {
            silent,
            with_profiles,
            range,
        }
    }

    /// Step 3: the filter before the aggregate. Rows no aggregate reads are
    /// dropped before grouping; the hoisted IN lists and time bound let the
    /// Parquet scan prune.
    fn prefilter(
        &self,
        measures: &[(String, Measure<'_>, Expr)],
        universe: &UniverseShape,
        until_as_of: Expr,
    ) -> Result<Prefilter, DataError> {
        let mut prefilter: Vec<Expr> = vec![until_as_of];
        if self.env.form.portable().is_some() {
            // Another engine's GROUP BY would return a NULL id as a row.
            prefilter.push(col("profile_id").is_not_null());
        }
        if let Some((lo, hi)) = universe.range {
            // The universe is a range: orphans drop out in the scan itself.
            prefilter.push(col("profile_id").between(lit(lo), lit(hi)));
        }
        prefilter.extend(self.hoisted()?);
        let preds: Vec<Expr> = measures.iter().map(|(_, _, pred)| pred.clone()).collect();
        // What every condition tests: the filter establishes it for every
        // row it passes, whether DataFusion's simplifier factors the OR
        // below ((a AND b) OR (a AND c) becomes a AND (b OR c), which then
        // prunes the scan) or the dense counters drop the OR.
        let common = common_conjuncts(&preds);
        let any_of = preds.into_iter().reduce(Expr::or);
        let mut kept: Vec<Expr> = Vec::new();
        for conjunct in prefilter.into_iter().flat_map(split_conjunction_owned) {
            if !kept.contains(&conjunct) {
                kept.push(conjunct);
            }
        }
        Ok(Prefilter {
            kept,
            common,
            any_of,
        })
    }

    /// Step 4: the aggregates. Each tests only what the filter has not
    /// already established for every row it passes (nothing, for a lone
    /// condition). Conditions that differ only in their comparison
    /// (`at_least 1` and `at_least 3` of the same rows) share one aggregate:
    /// `columns` maps each condition's name to the aggregate that counts
    /// for it.
    fn aggregates(
        &self,
        measures: Vec<(String, Measure<'_>, Expr)>,
        established: &[Expr],
        universe: &UniverseShape,
    ) -> Result<Aggregates, DataError> {
        let mut exprs: Vec<Expr> = Vec::with_capacity(measures.len());
        let mut distinct: HashMap<Expr, String> = HashMap::new();
        let mut columns: HashMap<String, String> = HashMap::new();
        // A lone distinct count over every filtered row: grouped twice.
        let lone = measures.len() == 1;
        let mut lone_distinct = None;
        // The bytes per profile of the dense counters (`engine::dense_count`),
        // when they can compute every aggregate: one per count, the head of
        // a list of rows per sequence.
        let mut dense_bytes = Some(0);
        // Each aggregate's shape, while all are counts: its column, what it
        // counts the distinct values of, and the rows it counts.
        let mut shapes: Option<Vec<CountShape>> = Some(Vec::new());
        for (name, measure, pred) in measures {
            // What a count counts the distinct values of (`Some(None)` for
            // rows); `None` for a measure that is not a count.
            let shape = match &measure {
                Measure::Count(a) => Some(self.distinct_of(a)),
                Measure::Rows => Some(None),
                Measure::Seen(_) | Measure::Seq(..) => None,
            };
            let bytes = match &measure {
                Measure::Count(_) if matches!(shape, Some(Some(_))) => None,
                Measure::Count(_) | Measure::Rows => Some(1),
                Measure::Seq(..) => Some(sequence::HEAD_BYTES),
                // The value, and a bit of presence.
                Measure::Seen(_) => Some(9),
            };
            let (pred, measure) = match (self.env.form.portable(), measure) {
                // SQL keeps each condition whole (the differential tests
                // compare it with the plan that Seg runs).
                (Some(_), measure) => (Some(pred), measure),
                // A sequence's bits test only what the filter has not
                // established.
                (None, Measure::Seq(q, steps)) => (
                    None,
                    Measure::Seq(
                        q,
                        steps.into_iter().map(|s| without(s, established)).collect(),
                    ),
                ),
                (None, measure) => (remaining(pred, established), measure),
            };
            if let (true, None, Some(Some(of))) = (lone, &pred, &shape) {
                lone_distinct = Some(of.clone());
            }
            let counted = pred.clone();
            let aggregate = self.measure(measure, pred, universe.with_profiles.is_some())?;
            let mut new = false;
            let column = distinct.entry(aggregate).or_insert_with_key(|aggregate| {
                exprs.push(aggregate.clone().alias(name.as_str()));
                dense_bytes = dense_bytes.zip(bytes).map(|(a, b)| a + b);
                new = true;
                name.clone()
            });
            if new {
                shapes = shapes.zip(shape).map(|(mut shapes, distinct_of)| {
                    shapes.push(CountShape {
                        column: column.clone(),
                        distinct_of,
                        pred: counted,
                    });
                    shapes
                });
            }
            columns.insert(name, column.clone());
        }
        let twice = match (&lone_distinct, self.env.form.portable(), shapes) {
            (None, None, Some(shapes)) if universe.with_profiles.is_none() => {
                self.grouped_twice(shapes)?
            }
            _ => None,
        };
        Ok(Aggregates {
            exprs,
            columns,
            lone_distinct,
            twice,
            dense_bytes,
        })
    }

    /// The counts of `shapes` as two groupings, when some count distinct
    /// values and all of those count the same thing (days, campaigns …):
    /// first by profile and that value (NULL for a row no distinct count
    /// takes), each count the rows of its condition in the group; then by
    /// profile, a distinct count the groups with a value where its rows
    /// were, another count the sum of its rows. A distinct count beside
    /// other conditions was otherwise DataFusion's `count(DISTINCT …)`,
    /// which keeps a set of values per profile: `days last 90d and … in
    /// campaigns tagged …` took 1.8× DuckDB's time on 20 M events.
    fn grouped_twice(&self, shapes: Vec<CountShape>) -> Result<Option<GroupedTwice>, DataError> {
        let mut values = shapes.iter().filter_map(|s| s.distinct_of.as_ref());
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.any(|other| other != value) {
            return Ok(None);
        }
        // The rows whose value is counted: those of some distinct count.
        let taken: Option<Vec<Expr>> = shapes
            .iter()
            .filter(|s| s.distinct_of.is_some())
            .map(|s| s.pred.clone())
            .collect();
        let d = match taken.and_then(|preds| preds.into_iter().reduce(Expr::or)) {
            Some(taken) => when(taken, value.clone()).end()?,
            None => value.clone(),
        };
        let mut first = Vec::with_capacity(shapes.len());
        let mut second = Vec::with_capacity(shapes.len());
        for shape in shapes {
            let rows = col(shape.column.as_str());
            first.push(
                self.count_if(shape.pred, false)?
                    .alias(shape.column.as_str()),
            );
            second.push(
                match shape.distinct_of {
                    Some(_) => {
                        self.count_if(Some(col("d").is_not_null().and(rows.gt(lit(0)))), false)?
                    }
                    None => sum(rows),
                }
                .alias(shape.column.as_str()),
            );
        }
        Ok(Some(GroupedTwice { d, first, second }))
    }

    /// The filter of the events before the aggregate: the prefilter's
    /// conjuncts, then the rows any aggregate reads.
    fn event_filter(
        &self,
        prefilter: Prefilter,
        aggregates: &Aggregates,
        universe: &UniverseShape,
    ) -> Expr {
        let Prefilter {
            mut kept,
            common,
            any_of,
        } = prefilter;
        // Counted in arrays by profile id, a row no condition counts costs
        // little (the counts test their conditions anyway, each distinct test
        // once a batch), while the OR of twenty or forty conditions, tested
        // row by row, was a fifth of the run: only what every condition
        // tests filters the rows. (The profiles with rows no condition counts
        // only get a group of zero counts, which the formula treats as it
        // treats no group.)
        let dense = universe
            .range
            .zip(aggregates.dense_bytes)
            .is_some_and(|(r, bytes)| counters_fit(r, bytes, self.env.dense_counters));
        let rows = match dense {
            true => common,
            false => any_of.into_iter().collect(),
        };
        for conjunct in rows.into_iter().flat_map(split_conjunction_owned) {
            if !kept.contains(&conjunct) {
                kept.push(conjunct);
            }
        }
        kept.into_iter().reduce(Expr::and).unwrap_or(lit(true))
    }

    /// Step 5: the scan, the filter and the aggregate by profile, aliased
    /// `counts`.
    fn counts(
        &self,
        prefilter: Prefilter,
        aggregates: &Aggregates,
        universe: &UniverseShape,
    ) -> Result<LogicalPlan, DataError> {
        let filter = self.event_filter(prefilter, aggregates, universe);
        let mut counted = self
            .with_lookups(LogicalPlanBuilder::scan(
                "events",
                Arc::clone(&self.env.events),
                None,
            )?)?
            .filter(filter)?;
        if let Some(profiles) = &universe.with_profiles {
            counted = self.with_profile_rows(counted, profiles)?;
        }
        if let (None, Some(twice)) = (&aggregates.lone_distinct, &aggregates.twice) {
            return Ok(counted
                .aggregate(
                    vec![col("profile_id"), twice.d.clone().alias("d")],
                    twice.first.clone(),
                )?
                .aggregate(vec![col("profile_id")], twice.second.clone())?
                .alias("counts")?
                .build()?);
        }
        Ok(match &aggregates.lone_distinct {
            // `count(DISTINCT x)` per profile as two plain groupings, by
            // (profile, x) and then by profile: DataFusion's distinct count
            // keeps a set per profile, which took a third of a `days`
            // segment's time.
            Some(x) => counted
                .aggregate(
                    vec![col("profile_id"), x.clone().alias("d")],
                    Vec::<Expr>::new(),
                )?
                .aggregate(vec![col("profile_id")], vec![count(col("d")).alias("c0")])?,
            None => counted.aggregate(vec![col("profile_id")], aggregates.exprs.clone())?,
        }
        .alias("counts")?
        .build()?)
    }

    /// Step 6: the formulas over the counts, the universe where profiles
    /// without events may belong (or where orphans must go), sorted ids.
    fn output(
        &self,
        formulas: &[Formula],
        membership: bool,
        counted: LogicalPlan,
        columns: &HashMap<String, String>,
        universe: &UniverseShape,
        until_as_of: Expr,
    ) -> Result<LogicalPlan, DataError> {
        // The universe is joined: its profiles without events have no counts.
        let joined = universe.silent && universe.with_profiles.is_none();
        let id = if joined {
            "universe.profile_id"
        } else {
            "counts.profile_id"
        };
        let members = formulas
            .iter()
            .map(|f| self.formula(f, joined, columns, &col(id)))
            .collect::<Result<Vec<_>, _>>()?;
        let predicate = members
            .iter()
            .cloned()
            .reduce(Expr::or)
            .unwrap_or(lit(false));
        let mut output = vec![col(id).alias("profile_id")];
        if membership {
            output.extend(
                members
                    .into_iter()
                    .enumerate()
                    .map(|(i, m)| m.alias(format!("m{i}"))),
            );
        }
        let plan = if joined {
            // Silent profiles (no counted events) belong to the segment: start
            // from the universe and look their counts up.
            LogicalPlanBuilder::from(self.universe(until_as_of)?)
                .alias("universe")?
                .join(
                    counted,
                    JoinType::Left,
                    (
                        vec![column_of("universe", "profile_id")],
                        vec![column_of("counts", "profile_id")],
                    ),
                    None,
                )?
                .filter(predicate)?
                .project(output)?
        } else {
            let mut b = LogicalPlanBuilder::from(counted).filter(predicate)?;
            if let (Some(profiles), None) = (&self.env.profiles, universe.range) {
                // Orphan events (profiles outside the universe) never count.
                let universe = LogicalPlanBuilder::scan("profiles", Arc::clone(profiles), None)?
                    .project(vec![col("profile_id")])?
                    .alias("universe")?
                    .build()?;
                b = b.join(
                    universe,
                    JoinType::LeftSemi,
                    (
                        vec![column_of("counts", "profile_id")],
                        vec![column_of("universe", "profile_id")],
                    ),
                    None,
                )?;
            }
            b.project(output)?
        };
        Ok(plan
            .sort(vec![col("profile_id").sort(true, false)])?
            .build()?)
    }

    /// The filtered events, with a column `__event` of 1, followed by one row
    /// per profile whose other columns (and `__event`) are NULL: the input of
    /// the aggregate when silent profiles belong to the segment and the ids
    /// are a dense range (the events were cut to that range, so every group
    /// is a profile).
    fn with_profile_rows(
        &self,
        events: LogicalPlanBuilder,
        profiles: &Arc<dyn TableSource>,
    ) -> Result<LogicalPlanBuilder, DataError> {
        let schema = self.env.events.schema();
        let mut from_events = Vec::with_capacity(schema.fields().len() + 1);
        let mut from_profiles = Vec::with_capacity(schema.fields().len() + 1);
        for field in schema.fields() {
            let name = field.name();
            from_events.push(Expr::Column(column_of("events", name)).alias(name));
            from_profiles.push(if name == "profile_id" {
                cast(col("profile_id"), field.data_type().clone()).alias(name)
            } else {
                lit(ScalarValue::try_from(field.data_type())?).alias(name)
            });
        }
        from_events.push(lit(1i32).alias(EVENT_ROW));
        from_profiles.push(lit(ScalarValue::Int32(None)).alias(EVENT_ROW));
        let profiles = LogicalPlanBuilder::scan("profiles", Arc::clone(profiles), None)?
            .project(from_profiles)?
            .build()?;
        Ok(events
            .project(from_events)?
            .union(profiles)?
            .alias("events")?)
    }

    /// The universe: the profiles table, or every profile with an event up
    /// to as_of (`until_as_of`: `ts <= as_of`).
    fn universe(&self, until_as_of: Expr) -> Result<LogicalPlan, DataError> {
        let b = match &self.env.profiles {
            Some(profiles) => LogicalPlanBuilder::scan("profiles", Arc::clone(profiles), None)?,
            None => {
                let events =
                    LogicalPlanBuilder::scan("events", Arc::clone(&self.env.events), None)?;
                events.filter(until_as_of)?
            }
        };
        Ok(b.filter(col("profile_id").is_not_null())?
            .aggregate(vec![col("profile_id")], Vec::<Expr>::new())?
            .build()?)
    }

    /// Conjuncts implied by every condition, hoisted out of the OR for pruning.
    fn hoisted(&self) -> Result<Vec<Expr>, DataError> {
        let mut events = BTreeSet::new();
        let mut channels = BTreeSet::new();
        let mut earliest: Option<Expr> = None;
        let mut all_windowed = !self.atoms.is_empty() || !self.seqs.is_empty();
        let mut lower: Option<i128> = None;
        let mut starts: Vec<&Bound> = Vec::new();
        for q in self.seqs {
            for step in &q.steps {
                events.insert(step.event);
                channels.extend(step.channels.iter().copied());
            }
            // Later steps are bounded by the first step's window start too
            // (`step_predicates`).
            match q.window.as_ref().and_then(|w| w.start.as_ref()) {
                Some(start) => starts.push(start),
                None => all_windowed = false,
            }
        }
        for atom in self.atoms {
            events.insert(atom.event);
            channels.extend(atom.channels.iter().copied());
            if let Some(after) = &atom.after {
                events.insert(after.event);
                channels.extend(after.channels.iter().copied());
            }
            if atom.seen.is_some() {
                // The extremum is over every time.
                all_windowed = false;
            }
            match atom.window.as_ref().and_then(|w| w.start.as_ref()) {
                Some(start) => starts.push(start),
                None => all_windowed = false,
            }
        }
        for start in starts {
            let nanos = window::nanos(window::resolve(self.env, start.at)?);
            lower = Some(lower.map_or(nanos, |l: i128| l.min(nanos)));
        }
        if let (true, Some(l)) = (all_windowed, lower) {
            earliest = Some(self.ts().gt_eq(window::literal_ceil(self.env, l)?));
        }
        let mut out = vec![in_strings("event", events.iter().map(|e| e.name()))];
        if channels.len() < crate::catalog::CHANNELS.len() {
            out.push(in_strings("channel", channels.iter().map(|c| c.name())));
        }
        out.extend(earliest);
        Ok(out)
    }

    /// The rows a condition counts (`link` applies only to the condition's own
    /// event, not to `after`).
    fn condition_predicate(
        &self,
        atom: &Cond,
        event: Event,
        channels: &[Channel],
        with_link: bool,
    ) -> Result<Expr, DataError> {
        self.rows(
            event,
            channels,
            atom.scope.as_ref(),
            atom.window.as_ref(),
            atom.link.as_ref().filter(|_| with_link),
        )
    }

    /// The rows of an event in channels, restricted by a scope, a window and
    /// a link.
    fn rows(
        &self,
        event: Event,
        channels: &[Channel],
        scope: Option<&Scope>,
        window: Option<&Window>,
        link: Option<&LinkMatch>,
    ) -> Result<Expr, DataError> {
        let mut parts = vec![col("event").eq(lit(event.name()))];
        // Kept even for `*`: data may hold pairs outside the catalog.
        parts.push(in_strings("channel", channels.iter().map(|c| c.name())));
        if let Some(scope) = scope {
            let column = match scope.kind {
                ObjectKind::Campaign => "campaign_id",
                ObjectKind::Template => "template_id",
            };
            parts.push(match self.env.form.portable() {
                Some(tables) => self.scope_sql(tables, column, scope.kind, &scope.selector),
                None => in_ids(column, self.env.objects.select(scope.kind, &scope.selector)),
            });
        }
        if let Some(w) = window {
            parts.extend(self.window(w)?);
        }
        match link {
            Some(LinkMatch::Exact(u)) => parts.push(col("link").eq(lit(u.as_str()))),
            Some(LinkMatch::Like(p)) => parts.push(self.env.form.like(col("link"), p)),
            None => {}
        }
        Ok(parts.into_iter().reduce(Expr::and).unwrap_or(lit(true)))
    }

    /// The rows of each step of a sequence: the first with the window (and,
    /// for `then not`, only when its span has passed at as_of); with
    /// `same`, only rows with the key.
    ///
    /// The window restricts the first step, but it bounds the later ones
    /// too: each is strictly later than the first, so never before the
    /// window's start, and with `within D` never after its end plus `D`.
    /// Those bounds change no answer; they let the scan prune by time the
    /// rows no step can use.
    fn step_predicates(&self, q: &Seq) -> Result<Vec<Expr>, DataError> {
        let later = q
            .window
            .as_ref()
            .map(|w| self.later_steps_window(w, q.within));
        let mut out = Vec::with_capacity(q.steps.len());
        for (j, step) in q.steps.iter().enumerate() {
            let window = if j == 0 {
                q.window.as_ref()
            } else {
                later.as_ref()
            };
            let mut p = self.rows(
                step.event,
                &step.channels,
                step.scope.as_ref(),
                window,
                step.link.as_ref(),
            )?;
            if let (0, true, Some(within)) = (j, q.negated, q.within) {
                let decided = window::resolve(self.env, crate::check::At::Ago(within))?;
                p = p.and(self.ts().lt_eq(window::at_most(self.env, decided)?));
            }
            if let Some(key) = q.same {
                p = p.and(col(key.column()).is_not_null());
            }
            out.push(p);
        }
        Ok(out)
    }

    /// The times a sequence's later steps can have given the first step's
    /// window `w`: from its start on, and, with `within D`, up to its end
    /// plus `D` where the events' `ts` can hold that instant.
    fn later_steps_window(&self, w: &Window, within: Option<i64>) -> Window {
        let end = w.end.as_ref().zip(within).and_then(|(end, d)| {
            let t = window::resolve(self.env, end.at)
                .ok()?
                .checked_add_signed(TimeDelta::try_seconds(d)?)?;
            window::at_most(self.env, t).ok()?;
            Some(Bound {
                at: At::Time(t),
                inclusive: true,
            })
        });
        Window {
            start: w.start.clone(),
            end,
        }
    }

    /// The aggregate of a measure over the rows where `pred` holds.
    fn measure(
        &self,
        measure: Measure<'_>,
        pred: Option<Expr>,
        profile_rows: bool,
    ) -> Result<Expr, DataError> {
        Ok(match measure {
            Measure::Count(atom) => self.count(atom, pred, profile_rows)?,
            Measure::Rows => self.count_if(pred, profile_rows)?,
            Measure::Seen(seen) => {
                let extremum = |e: Expr| match seen {
                    Seen::First => min(e),
                    Seen::Last => max(e),
                };
                match pred {
                    None => extremum(self.ts()),
                    Some(pred) => self.env.form.extremum_where(seen, pred)?,
                }
            }
            Measure::Seq(q, steps) => {
                let spec = sequence::SequenceSpec {
                    steps: q.steps.len() as u32,
                    within: q.within.map(|w| window::seconds_in_unit(self.env, w)),
                    negated: q.negated,
                };
                let mask = steps
                    .into_iter()
                    .enumerate()
                    .map(|(j, p)| when(p, lit(1i32 << j)).otherwise(lit(0i32)))
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter()
                    .reduce(|a, b| binary_expr(a, Operator::BitwiseOr, b))
                    .unwrap_or(lit(0i32));
                let key = match q.same {
                    Some(key) => col(key.column()),
                    None => lit(0i64),
                };
                // No FILTER (`pred` unused): a row of no step has an empty
                // mask, which the aggregate skips, so the steps are not
                // tested twice.
                sequence::SequenceUdaf::udaf(spec).call(vec![
                    cast(col("ts"), DataType::Int64),
                    mask,
                    key,
                ])
            }
        })
    }

    /// A plan whose formulas read no events (samples only): the universe,
    /// filtered.
    fn without_events(
        &self,
        formulas: &[Formula],
        membership: bool,
        until_as_of: Expr,
    ) -> Result<LogicalPlan, DataError> {
        let id = col("universe.profile_id");
        let columns = HashMap::new();
        let members = formulas
            .iter()
            .map(|f| self.formula(f, false, &columns, &id))
            .collect::<Result<Vec<_>, _>>()?;
        let predicate = members
            .iter()
            .cloned()
            .reduce(Expr::or)
            .unwrap_or(lit(false));
        let mut output = vec![id.alias("profile_id")];
        if membership {
            output.extend(
                members
                    .into_iter()
                    .enumerate()
                    .map(|(i, m)| m.alias(format!("m{i}"))),
            );
        }
        Ok(LogicalPlanBuilder::from(self.universe(until_as_of)?)
            .alias("universe")?
            .filter(predicate)?
            .project(output)?
            .sort(vec![col("profile_id").sort(true, false)])?
            .build()?)
    }

    fn window(&self, w: &Window) -> Result<Vec<Expr>, DataError> {
        self.window_on(w, self.ts())
    }

    /// The window of a `first_seen`/`last_seen` condition that the run
    /// form counts rows in and beyond (see `measures`); `None` where the
    /// extremum is taken (the SQL).
    fn seen_window<'w>(&self, atom: &'w Cond) -> Option<&'w Window> {
        match self.env.form.portable() {
            None if atom.seen.is_some() => atom.window.as_ref(),
            _ => None,
        }
    }

    /// The bounds of a window on `ts`, a timestamp of the events' unit.
    fn window_on(&self, w: &Window, ts: Expr) -> Result<Vec<Expr>, DataError> {
        let (start, end) = self.window_sides(w, ts)?;
        Ok(start.into_iter().chain(end).collect())
    }

    /// The bound of a window on `ts` at its start and at its end, where it
    /// has them.
    fn window_sides(
        &self,
        w: &Window,
        ts: Expr,
    ) -> Result<(Option<Expr>, Option<Expr>), DataError> {
        // A date against a `… ago` can only be ordered once as_of is known.
        if let (Some(start), Some(end)) = (&w.start, &w.end) {
            let (a, b) = (
                window::resolve(self.env, start.at)?,
                window::resolve(self.env, end.at)?,
            );
            if a >= b {
                return Err(DataError::new(format!(
                    "error[{}]: the window from {} to {} is {} at as_of {}",
                    if a == b { "E018" } else { "E019" },
                    a.to_rfc3339(),
                    b.to_rfc3339(),
                    if a == b {
                        "empty"
                    } else {
                        "inverted (it ends before it starts)"
                    },
                    self.env.as_of.to_rfc3339()
                )));
            }
        }
        let start = match &w.start {
            Some(start) => {
                let at = window::resolve(self.env, start.at)?;
                Some(if start.inclusive {
                    ts.clone().gt_eq(window::at_least(self.env, at)?)
                } else {
                    ts.clone().gt(window::at_most(self.env, at)?)
                })
            }
            None => None,
        };
        let end = match &w.end {
            Some(end) => {
                let at = window::resolve(self.env, end.at)?;
                Some(if end.inclusive {
                    ts.lt_eq(window::at_most(self.env, at)?)
                } else {
                    ts.lt(window::at_least(self.env, at)?)
                })
            }
            None => None,
        };
        Ok((start, end))
    }

    /// The count of a condition, by its unit, over the rows where `pred`
    /// holds (all rows without it).
    fn count(
        &self,
        atom: &Cond,
        pred: Option<Expr>,
        profile_rows: bool,
    ) -> Result<Expr, DataError> {
        let Some(distinct_of) = self.distinct_of(atom) else {
            return self.count_if(pred, profile_rows);
        };
        Ok(count_distinct(match pred {
            Some(pred) => when(pred, distinct_of).end()?,
            None => distinct_of,
        }))
    }

    /// What a condition counts the distinct values of (none for `times`).
    fn distinct_of(&self, atom: &Cond) -> Option<Expr> {
        Some(match atom.unit {
            Unit::Times => return None,
            Unit::Messages => col("message_id"),
            Unit::Campaigns => col("campaign_id"),
            Unit::Templates => col("template_id"),
            unit @ (Unit::Days | Unit::Weeks | Unit::Months) => {
                self.env.form.period(unit, &self.env.ts_type)
            }
        })
    }

    /// `ts`, as the events' time is compared and dated.
    fn ts(&self) -> Expr {
        self.env.form.ts()
    }

    /// The number of rows where `pred` holds (all rows without it); with
    /// `profile_rows`, of the event rows only (see the module documentation).
    fn count_if(&self, pred: Option<Expr>, profile_rows: bool) -> Result<Expr, DataError> {
        if profile_rows {
            let n = count(col(EVENT_ROW));
            return Ok(match pred {
                Some(pred) => n.filter(pred).build()?,
                None => n,
            });
        }
        match pred {
            None => Ok(count(lit(1))),
            Some(pred) => self.env.form.count_where(pred),
        }
    }

    /// SQL plans: events left-joined with each dimension lookup (`s{k}.id`
    /// is not NULL when the event's object is selected). The lookups are
    /// DISTINCT, so the joins never duplicate an event.
    fn with_lookups(&self, mut b: LogicalPlanBuilder) -> Result<LogicalPlanBuilder, DataError> {
        for (lookup, table) in self.sql_lookups() {
            let right = LogicalPlanBuilder::scan(lookup.table, Arc::clone(table), None)?
                .filter(lookup.filter)?
                .project(vec![col(lookup.id).alias("id")])?
                .distinct()?
                .alias(lookup.alias.as_str())?
                .build()?;
            b = b.join(
                right,
                JoinType::Left,
                (
                    vec![column_of("events", lookup.joined_on)],
                    vec![column_of(lookup.alias, "id")],
                ),
                None,
            )?;
        }
        Ok(b)
    }

    /// SQL plans: the dimension lookups whose tables exist, aliased `s{k}`.
    fn sql_lookups(&self) -> Vec<(SqlLookup, &'e Arc<dyn TableSource>)> {
        let Some(tables) = self.env.form.portable() else {
            return Vec::new();
        };
        self.lookups
            .iter()
            .enumerate()
            .filter_map(|(k, lookup)| lookup_parts(tables, lookup, format!("s{k}")))
            .collect()
    }

    /// SQL plans: a scope as ids and lookups (a lookup whose table is absent
    /// selects nothing).
    fn scope_sql(
        &self,
        tables: &SqlTables,
        column: &str,
        kind: ObjectKind,
        selector: &Selector,
    ) -> Expr {
        let selected = |lookup: Lookup| -> Expr {
            let present = match &lookup {
                Lookup::Names(ObjectKind::Campaign, _) => tables.campaigns.is_some(),
                Lookup::Names(ObjectKind::Template, _) => tables.templates.is_some(),
                Lookup::Tags(..) => tables.tags.is_some(),
                Lookup::Attribute(..) => tables.attributes.is_some(),
            };
            match self.lookups.iter().position(|l| *l == lookup) {
                Some(k) if present => Expr::Column(column_of(format!("s{k}"), "id")).is_not_null(),
                _ => lit(false),
            }
        };
        let mut parts = Vec::new();
        if let Selector::Items { ids, .. } = selector {
            if !ids.is_empty() {
                parts.push(in_ids(column, ids.iter().copied().collect()));
            }
        }
        let lookups = scope_lookups(kind, selector);
        let looked_up = lookups.into_iter().map(selected);
        match selector {
            Selector::Where(_) => parts.push(looked_up.reduce(Expr::and).unwrap_or(lit(false))),
            _ => parts.extend(looked_up),
        }
        parts.into_iter().reduce(Expr::or).unwrap_or(lit(false))
    }

    /// The segment's formula over the counts (NULL counts, for profiles without
    /// counted events, read as zero).
    /// A formula over the counts; `columns` names the aggregate of each
    /// condition (`c{i}`, and `a{i}` for its `after`).
    fn formula(
        &self,
        f: &Formula,
        nullable: bool,
        columns: &HashMap<String, String>,
        id: &Expr,
    ) -> Result<Expr, DataError> {
        Ok(match f {
            Formula::Or(items) => items
                .iter()
                .map(|i| self.formula(i, nullable, columns, id))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .reduce(Expr::or)
                .unwrap_or(lit(false)),
            Formula::And(items) => items
                .iter()
                .map(|i| self.formula(i, nullable, columns, id))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .reduce(Expr::and)
                .unwrap_or(lit(true)),
            Formula::Not(inner) => not(self.formula(inner, nullable, columns, id)?),
            Formula::Sample(sample) => sample_test(id.clone(), *sample),
            Formula::Seq(i) => {
                let name = format!("q{i}");
                let name = columns.get(&name).cloned().unwrap_or(name);
                let c = Expr::Column(column_of("counts", name));
                match self.env.form.portable() {
                    Some(_) => {
                        let matched = sequence::sql(self, &self.seqs[*i])?;
                        datafusion::logical_expr::expr_fn::in_subquery(
                            id.clone(),
                            Arc::new(matched),
                        )
                    }
                    None => coalesce(vec![c, lit(0i64)]).gt_eq(lit(1i64)),
                }
            }
            Formula::Atom(i)
                if self.atoms[*i].seen.is_some() && self.seen_window(&self.atoms[*i]).is_none() =>
            {
                let name = format!("c{i}");
                let name = columns.get(&name).cloned().unwrap_or(name);
                let extremum = Expr::Column(column_of("counts", name));
                // The checker requires a window; no events: NULL, false.
                let window = self.atoms[*i].window.as_ref();
                let test = match window {
                    Some(w) => self.window_on(w, extremum.clone())?,
                    None => vec![],
                };
                let test = test.into_iter().fold(extremum.is_not_null(), Expr::and);
                coalesce(vec![test, lit(false)])
            }
            Formula::Atom(i) => {
                let counted = |name: String| {
                    let name = columns.get(&name).cloned().unwrap_or(name);
                    let c = Expr::Column(column_of("counts", name));
                    if nullable {
                        coalesce(vec![c, lit(0i64)])
                    } else {
                        c
                    }
                };
                let n = counted(format!("c{i}"));
                let atom = &self.atoms[*i];
                if let (Some(seen), Some(w)) = (atom.seen, self.seen_window(atom)) {
                    // Run: rows in the window, none beyond it (`measures`).
                    let beyond = match seen {
                        Seen::First => w.start.is_some(),
                        Seen::Last => w.end.is_some(),
                    };
                    let inside = n.gt_eq(lit(1i64));
                    return Ok(match beyond {
                        true => inside.and(counted(format!("x{i}")).eq(lit(0i64))),
                        false => inside,
                    });
                }
                let test = match atom.compare {
                    crate::check::Compare::AtLeast(k) => n.gt_eq(lit(i64::from(k))),
                    crate::check::Compare::AtMost(k) => n.lt_eq(lit(i64::from(k))),
                    crate::check::Compare::Exactly(k) => n.eq(lit(i64::from(k))),
                };
                match atom.after {
                    Some(_) => test.and(counted(format!("a{i}")).gt_eq(lit(1i64))),
                    None => test,
                }
            }
        })
    }
}

impl Lookup {
    fn kind(&self) -> ObjectKind {
        match self {
            Lookup::Names(k, _) | Lookup::Tags(k, _) | Lookup::Attribute(k, ..) => *k,
        }
    }
}

/// The dimension lookups a selector needs in a SQL plan.
fn scope_lookups(kind: ObjectKind, selector: &Selector) -> Vec<Lookup> {
    match selector {
        Selector::Items { names, .. } if names.is_empty() => vec![],
        Selector::Items { names, .. } => vec![Lookup::Names(kind, names.clone())],
        Selector::Tagged(tags) => vec![Lookup::Tags(kind, tags.clone())],
        Selector::Where(tests) => tests
            .iter()
            .map(|(key, negated, value)| {
                Lookup::Attribute(kind, key.clone(), *negated, value.clone())
            })
            .collect(),
    }
}

/// What a lookup, aliased `alias`, selects from which table, or `None` when
/// its table is absent.
fn lookup_parts<'t>(
    tables: &'t SqlTables,
    lookup: &Lookup,
    alias: String,
) -> Option<(SqlLookup, &'t Arc<dyn TableSource>)> {
    let object = match lookup.kind() {
        ObjectKind::Campaign => "campaign",
        ObjectKind::Template => "template",
    };
    let (name, table, id, filter) = match lookup {
        Lookup::Names(kind, names) => {
            let (name, table, id) = match kind {
                ObjectKind::Campaign => ("campaigns", &tables.campaigns, "campaign_id"),
                ObjectKind::Template => ("templates", &tables.templates, "template_id"),
            };
            (
                name,
                table,
                id,
                in_strings("name", names.iter().map(String::as_str)),
            )
        }
        Lookup::Tags(_, tags) => (
            "tags",
            &tables.tags,
            "object_id",
            col("object")
                .eq(lit(object))
                .and(in_strings("tag", tags.iter().map(String::as_str))),
        ),
        Lookup::Attribute(_, key, negated, value) => {
            let value_test = if *negated {
                col("value").not_eq(lit(value.as_str()))
            } else {
                col("value").eq(lit(value.as_str()))
            };
            (
                "attributes",
                &tables.attributes,
                "object_id",
                col("object")
                    .eq(lit(object))
                    .and(col("key").eq(lit(key.as_str())))
                    .and(value_test),
            )
        }
    };
    let joined_on = match lookup.kind() {
        ObjectKind::Campaign => "campaign_id",
        ObjectKind::Template => "template_id",
    };
    let parts = SqlLookup {
        alias,
        table: name,
        id,
        filter,
        joined_on,
    };
    Some((parts, table.as_ref()?))
}

/// A segment as the parts of one SELECT ([`segment_select`]):
///
/// ```text
/// SELECT <id> AS profile_id FROM
///   [universe LEFT JOIN] (SELECT <aggregates>, profile_id
///       FROM events LEFT JOIN <lookups> WHERE <filter>
///       GROUP BY profile_id) AS counts
/// WHERE <predicate> [AND EXISTS (<id> in profiles)]
/// ORDER BY profile_id
/// ```
///
/// Columns without a table are the events'.
pub struct SqlSelect {
    /// The dimension lookups left-joined to the events.
    pub lookups: Vec<SqlLookup>,
    /// The events counted.
    pub filter: Expr,
    /// The aggregates by profile, aliased (`c0`, …).
    pub aggregates: Vec<Expr>,
    /// The segment's formula over `counts` (and `universe`).
    pub predicate: Expr,
    pub universe: SqlUniverse,
}

/// `SELECT DISTINCT <id> AS id FROM <table> WHERE <filter>`, aliased and
/// joined on `events.<joined_on> = <alias>.id`.
pub struct SqlLookup {
    pub alias: String,
    pub table: &'static str,
    pub id: &'static str,
    /// Over the lookup's table (its columns have no table).
    pub filter: Expr,
    pub joined_on: &'static str,
}

/// How a [`SqlSelect`]'s profiles meet the universe.
pub enum SqlUniverse {
    /// Profiles without events may belong: the ids of the universe (the
    /// profiles table, or with `until_as_of` every profile with an event up
    /// to as_of), left-joined with the counts.
    Joined { until_as_of: Option<Expr> },
    /// The counted profiles that are in the profiles table.
    Exists,
    /// Every counted profile.
    Counted,
}

/// How the universe enters a plan (step 2 of [`Lowering::plan`]).
struct UniverseShape {
    /// Whether a profile without events may belong to some formula.
    silent: bool,
    /// The profiles as rows of the aggregate's input (silent profiles over
    /// a range of ids, in Seg's own plans).
    with_profiles: Option<Arc<dyn TableSource>>,
    /// The range of the ids, when the plan may rely on it.
    range: Option<(i64, i64)>,
}

/// The filter before the aggregate (step 3 of [`Lowering::plan`]); step 5
/// adds either the OR of the aggregates' rows or, for the dense counters,
/// only what they share.
struct Prefilter {
    /// The conjuncts that filter the rows whatever the aggregates are.
    kept: Vec<Expr>,
    /// The conjuncts every aggregate's rows share.
    common: Vec<Expr>,
    /// Any aggregate's rows: the OR of their predicates.
    any_of: Option<Expr>,
}

/// The aggregates by profile (step 4 of [`Lowering::plan`]).
struct Aggregates {
    exprs: Vec<Expr>,
    /// Each measure's name to the aggregate column that computes it.
    columns: HashMap<String, String>,
    /// A lone distinct count, grouped twice instead.
    lone_distinct: Option<Expr>,
    /// Counts with distinct counts among them, grouped twice instead
    /// ([`Lowering::grouped_twice`]).
    twice: Option<GroupedTwice>,
    /// The bytes per profile the dense counters need, when they can compute
    /// every aggregate.
    dense_bytes: Option<usize>,
}

/// One count of the aggregates: its column, what it counts the distinct
/// values of (nothing for rows), and the rows it counts (all that the filter
/// passes without one).
struct CountShape {
    column: String,
    distinct_of: Option<Expr>,
    pred: Option<Expr>,
}

/// Counts grouped twice ([`Lowering::grouped_twice`]): the value `d` the
/// first grouping groups by beside the profile, and each grouping's
/// aggregates.
struct GroupedTwice {
    d: Expr,
    first: Vec<Expr>,
    second: Vec<Expr>,
}

/// What one aggregate of the counts computes.
enum Measure<'c> {
    /// A condition's count, by its unit.
    Count(&'c Cond),
    /// The rows the predicate keeps.
    Rows,
    /// The earliest or latest `ts`.
    Seen(Seen),
    /// Whether the profile holds a sequence, with the rows of each step.
    Seq(&'c Seq, Vec<Expr>),
}

/// Whether the profile `id` is in a sample (`crate::sample`), in int64
/// arithmetic that every engine computes alike.
pub(crate) fn sample_test(id: Expr, sample: Sample) -> Expr {
    use crate::sample::{BUCKETS, K, P};
    let x = (id % lit(P) + lit(P)) % lit(P);
    let h = (x + lit(sample.seed)) % lit(P) * lit(K) % lit(P);
    (h % lit(BUCKETS)).lt(lit(i64::from(sample.basis_points)))
}

/// The conjuncts of `pred` not in `known` (`None` when none is left).
fn remaining(pred: Expr, known: &[Expr]) -> Option<Expr> {
    split_conjunction_owned(pred)
        .into_iter()
        .filter(|c| !known.contains(c))
        .reduce(Expr::and)
}

/// `pred` without the conjuncts in `known` (`true` when none is left).
fn without(pred: Expr, known: &[Expr]) -> Expr {
    remaining(pred, known).unwrap_or(lit(true))
}

/// The conjuncts common to every predicate of `preds`.
fn common_conjuncts(preds: &[Expr]) -> Vec<Expr> {
    let branches: Vec<Vec<Expr>> = preds.iter().cloned().map(split_conjunction_owned).collect();
    let Some(first) = branches.first() else {
        return Vec::new();
    };
    first
        .iter()
        .filter(|c| branches.iter().all(|b| b.contains(c)))
        .cloned()
        .collect()
}

/// Whether `counts` one-byte counters for every profile of the range
/// `[lo, hi]` fit `budget` bytes: the test by which the engine counts in
/// arrays by profile id (`engine::dense_count`), which the plan's shape
/// follows.
pub(crate) fn counters_fit((lo, hi): (i64, i64), counts: usize, budget: usize) -> bool {
    hi.checked_sub(lo)
        .and_then(|d| d.checked_add(1))
        .and_then(|len| usize::try_from(len).ok())
        .and_then(|len| len.checked_mul(counts))
        .is_some_and(|bytes| bytes <= budget)
}

/// `column = id` or `column IN (ids)`; FALSE for no ids.
fn in_ids(column: &str, ids: BTreeSet<i64>) -> Expr {
    match ids.len() {
        0 => lit(false),
        1 => col(column).eq(lit(ids.into_iter().next().unwrap_or_default())),
        _ => col(column).in_list(ids.into_iter().map(lit).collect(), false),
    }
}

fn in_strings<'a>(column: &str, values: impl Iterator<Item = &'a str>) -> Expr {
    let mut values: Vec<Expr> = values.map(lit).collect();
    if values.len() == 1 {
        return col(column).eq(values.remove(0));
    }
    col(column).in_list(values, false)
}

/// A column by its name, `table.name` or `name`. DataFusion's `col` (and
/// `Column::new` with a table) reads names as SQL, with sqlparser's
/// tokenizer: that was a tenth of the time to write a one-line segment's SQL.
pub(crate) fn col(name: &str) -> Expr {
    Expr::Column(match name.split_once('.') {
        Some((table, name)) => column_of(table, name),
        None => Column::new_unqualified(name),
    })
}

/// The column `name` of `table`.
pub(crate) fn column_of(table: impl Into<Arc<str>>, name: impl Into<String>) -> Column {
    Column::new(Some(TableReference::bare(table)), name)
}

/// A timestamp scalar of the events' `ts` type.
pub(crate) fn ts_scalar(ts_type: &DataType, value: i64) -> ScalarValue {
    use datafusion::arrow::datatypes::TimeUnit;
    match ts_type {
        DataType::Timestamp(TimeUnit::Second, tz) => {
            ScalarValue::TimestampSecond(Some(value), tz.clone())
        }
        DataType::Timestamp(TimeUnit::Millisecond, tz) => {
            ScalarValue::TimestampMillisecond(Some(value), tz.clone())
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            ScalarValue::TimestampMicrosecond(Some(value), tz.clone())
        }
        DataType::Timestamp(TimeUnit::Nanosecond, tz) => {
            ScalarValue::TimestampNanosecond(Some(value), tz.clone())
        }
        _ => ScalarValue::TimestampMicrosecond(Some(value), None),
    }
}
