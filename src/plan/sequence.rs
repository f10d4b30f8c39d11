//! Sequences (SPEC §10) in Seg's own plans: one aggregate per sequence,
//! `seg_sequence(ts, steps, key)`, over the same scan and grouping by
//! profile as the counts.
//!
//! Each row the aggregate sees matches one or more steps: `steps` is a bit
//! mask (bit `j` for step `j`; the first step's bit already includes its
//! window, and for `then not` that its span has passed). A profile's rows
//! are kept as `(ts, key, steps)` (24 bytes each) and decided when the
//! aggregate ends, with the rows sorted by time, per key when the sequence
//! has `same`:
//!
//! - `A then B … within D`: from each first-step row in turn, the earliest
//!   row of step 2 strictly later, then the earliest of step 3 strictly
//!   later than that, and so on (a binary search per step). The earliest
//!   chain from a first step ends first, so it is the one `within` tests;
//!   without `within` the earliest first step is enough.
//! - `A then not B within D`: a first-step row holds when the earliest
//!   step-2 row strictly after it is later than `ts + D` (or there is none).
//!
//! The cost is a sort of the profile's matching rows and, per first-step
//! row, one binary search per further step: `O(n log n)` in the profile's
//! matching rows, never a join of pairs. Memory is the matching rows of the
//! profiles being aggregated.

use std::mem::size_of;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, Int64Builder, ListBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int32Type, Int64Type};
use datafusion::common::JoinType;
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    col, Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, Expr, GroupsAccumulator, LogicalPlan,
    LogicalPlanBuilder, Signature, Volatility,
};

use crate::check::Seq;
use crate::data::DataError;
use crate::prefetch::{prefetch, AHEAD};

/// The bytes a sequence takes per profile of a range of ids in the dense
/// counters (`engine::dense_count`) besides its rows: where the profile's
/// rows start once grouped.
pub(crate) const HEAD_BYTES: usize = 4;

/// What a sequence's aggregate decides, with `within` in the unit of `ts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SequenceSpec {
    /// Two or more.
    pub steps: u32,
    /// `within D` in units of the `ts` column.
    pub within: Option<i64>,
    /// `then not`: the second step must not follow within `within`.
    pub negated: bool,
}

/// One event of a profile as the aggregate keeps it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Row {
    ts: i64,
    /// The `same` key (0 without `same`).
    key: i64,
    steps: u32,
}

/// Buffers [`SequenceSpec::holds_with`] reuses from one profile to the next.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// Per step, the times of its rows in one key.
    times: Vec<Vec<i64>>,
}

impl SequenceSpec {
    /// Whether the rows of one profile hold the sequence. Sorts `rows`.
    pub(crate) fn holds(&self, rows: &mut [Row]) -> bool {
        self.holds_with(rows, &mut Scratch::default())
    }

    /// [`SequenceSpec::holds`] with buffers kept between calls.
    pub(crate) fn holds_with(&self, rows: &mut [Row], scratch: &mut Scratch) -> bool {
        // Most profiles lack a step altogether: decided without sorting.
        let present = rows.iter().fold(0, |m, r| m | r.steps);
        let every = (1u32 << self.steps) - 1;
        if present & 1 == 0 {
            return false;
        }
        if self.negated && present & 2 == 0 {
            // A first step and no second one at all: nothing blocks it.
            return true;
        }
        if !self.negated && present & every != every {
            return false;
        }
        rows.sort_unstable_by_key(|r| (r.key, r.ts));
        rows.chunk_by(|a, b| a.key == b.key)
            .any(|group| self.holds_in(group, scratch))
    }

    /// The sequence within rows of one key, sorted by time.
    fn holds_in(&self, rows: &[Row], scratch: &mut Scratch) -> bool {
        let steps = self.steps as usize;
        scratch.times.resize_with(steps, Vec::new);
        for (step, times) in scratch.times.iter_mut().enumerate() {
            times.clear();
            times.extend(
                rows.iter()
                    .filter(|r| r.steps & (1 << step) != 0)
                    .map(|r| r.ts),
            );
        }
        let (first, later) = scratch.times.split_at(1);
        let first = &first[0];
        // The earliest time strictly after `t` in sorted `ts`.
        let after = |ts: &[i64], t: i64| ts.get(ts.partition_point(|&x| x <= t)).copied();
        if self.negated {
            let within = i128::from(self.within.unwrap_or(0));
            return first.iter().any(|&t| match after(&later[0], t) {
                Some(next) => i128::from(next) - i128::from(t) > within,
                None => true,
            });
        }
        let chain_end =
            |start: i64| -> Option<i64> { later.iter().try_fold(start, |t, ts| after(ts, t)) };
        match self.within {
            None => first.first().is_some_and(|&t| chain_end(t).is_some()),
            Some(within) => {
                let mut previous = None;
                first.iter().any(|&t| {
                    // Equal first times give equal chains.
                    if previous == Some(t) {
                        return false;
                    }
                    previous = Some(t);
                    chain_end(t)
                        .is_some_and(|end| i128::from(end) - i128::from(t) <= i128::from(within))
                })
            }
        }
    }
}

/// The aggregate: `seg_sequence(ts: Int64, steps: Int32, key: Int64)` → 1
/// when the profile's rows hold the sequence, else 0.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SequenceUdaf {
    spec: SequenceSpec,
    signature: Signature,
}

impl SequenceUdaf {
    /// What the aggregate decides.
    pub(crate) fn spec(&self) -> SequenceSpec {
        self.spec
    }

    pub fn udaf(spec: SequenceSpec) -> Arc<AggregateUDF> {
        Arc::new(AggregateUDF::new_from_impl(SequenceUdaf {
            spec,
            signature: Signature::exact(
                vec![DataType::Int64, DataType::Int32, DataType::Int64],
                Volatility::Immutable,
            ),
        }))
    }
}

fn list_field(name: &str, item: DataType) -> FieldRef {
    Arc::new(Field::new(
        name,
        DataType::List(Arc::new(Field::new_list_field(item, true))),
        true,
    ))
}

impl AggregateUDFImpl for SequenceUdaf {
    fn name(&self) -> &str {
        "seg_sequence"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(SequenceAccumulator {
            spec: self.spec,
            rows: Vec::new(),
        }))
    }

    fn state_fields(&self, _args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        // Flattened rows: ts, key and steps, three values per row.
        Ok(vec![list_field("rows", DataType::Int64)])
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(SequenceGroups {
            spec: self.spec,
            groups: 0,
            rows: Vec::new(),
        }))
    }

    fn default_value(&self, _data_type: &DataType) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(0)))
    }
}

/// The rows of a batch, each with its index, skipping filtered-out rows and
/// rows without a time or a step.
pub(crate) fn batch_rows<'a>(
    values: &'a [ArrayRef],
    filter: Option<&'a BooleanArray>,
) -> Result<impl Iterator<Item = (usize, Row)> + 'a> {
    let [ts, steps, key] = values else {
        return exec_err!("seg_sequence takes three arguments");
    };
    let ts = ts.as_primitive::<Int64Type>();
    let steps = steps.as_primitive::<Int32Type>();
    let key = key.as_primitive::<Int64Type>();
    Ok((0..ts.len()).filter_map(move |i| {
        let kept = filter.is_none_or(|f| f.is_valid(i) && f.value(i));
        let valid = ts.is_valid(i) && steps.is_valid(i) && steps.value(i) > 0;
        (kept && valid).then(|| {
            (
                i,
                Row {
                    ts: ts.value(i),
                    key: if key.is_valid(i) { key.value(i) } else { 0 },
                    steps: steps.value(i) as u32,
                },
            )
        })
    }))
}

/// A state row: a list of `ts, key, steps` triples.
fn state_of<'a>(rows: impl Iterator<Item = &'a Vec<Row>>) -> ArrayRef {
    let mut builder = ListBuilder::new(Int64Builder::new());
    for group in rows {
        for r in group {
            builder.values().append_value(r.ts);
            builder.values().append_value(r.key);
            builder.values().append_value(i64::from(r.steps));
        }
        builder.append(true);
    }
    Arc::new(builder.finish())
}

/// The rows of one state list.
fn rows_of(list: &dyn Array) -> Vec<Row> {
    let values = list.as_primitive::<Int64Type>().values();
    values
        .chunks_exact(3)
        .map(|c| Row {
            ts: c[0],
            key: c[1],
            steps: c[2] as u32,
        })
        .collect()
}

#[derive(Debug)]
struct SequenceAccumulator {
    spec: SequenceSpec,
    rows: Vec<Row>,
}

impl Accumulator for SequenceAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.rows.extend(batch_rows(values, None)?.map(|(_, r)| r));
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(i64::from(
            self.spec.holds(&mut self.rows),
        ))))
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.rows.capacity() * size_of::<Row>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let list = state_of(std::iter::once(&self.rows));
        Ok(vec![ScalarValue::try_from_array(&list, 0)?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some(lists) = states.first() else {
            return Ok(());
        };
        let lists = lists.as_list::<i32>();
        for i in 0..lists.len() {
            if lists.is_valid(i) {
                self.rows.extend(rows_of(lists.value(i).as_ref()));
            }
        }
        Ok(())
    }
}

/// Rows tagged with their group (a profile), grouped by a counting sort:
/// the rows of group `g` are `rows[starts[g]..starts[g + 1]]`. Gathering a
/// group's rows through per-group lists was a chain of cache misses.
pub(crate) struct Grouped {
    starts: Vec<u32>,
    rows: Vec<Row>,
}

impl Grouped {
    /// Groups rows tagged with their group, of groups `0..groups`, given
    /// in chunks.
    pub(crate) fn new(chunks: &[Vec<(u32, Row)>], groups: usize) -> Grouped {
        let mut starts = vec![0u32; groups + 1];
        crate::prefetch::huge_pages(&starts);
        for &(g, _) in chunks.iter().flatten() {
            starts[g as usize + 1] += 1;
        }
        for i in 0..groups {
            starts[i + 1] += starts[i];
        }
        let mut next = starts.clone();
        let mut rows = vec![Row::default(); starts[groups] as usize];
        for chunk in chunks {
            for (i, &(g, row)) in chunk.iter().enumerate() {
                // Each row goes to its group's place, somewhere in a vector
                // larger than a cache: ask for the place of a row ahead.
                if let Some(&(ahead, _)) = chunk.get(i + AHEAD) {
                    prefetch(&rows, next[ahead as usize] as usize);
                }
                let at = &mut next[g as usize];
                rows[*at as usize] = row;
                *at += 1;
            }
        }
        Grouped { starts, rows }
    }

    /// The rows of group `g`.
    pub(crate) fn of(&mut self, g: usize) -> &mut [Row] {
        &mut self.rows[self.starts[g] as usize..self.starts[g + 1] as usize]
    }

    fn groups(&self) -> usize {
        self.starts.len() - 1
    }
}

/// The rows of every group in one vector, tagged with their group (no
/// allocation per group: a profile has few rows, and there are millions of
/// profiles), grouped when the groups are emitted.
#[derive(Debug)]
struct SequenceGroups {
    spec: SequenceSpec,
    groups: usize,
    rows: Vec<(u32, Row)>,
}

impl SequenceGroups {
    fn grow(&mut self, total: usize) -> Result<()> {
        if u32::try_from(total).is_err() {
            return Err(datafusion::common::DataFusionError::ResourcesExhausted(
                "seg_sequence: more than 4 billion groups in one partition".to_string(),
            ));
        }
        self.groups = self.groups.max(total);
        Ok(())
    }

    /// Takes the groups `emit_to` names, grouped; the groups left are
    /// renumbered from 0.
    fn take(&mut self, emit_to: EmitTo) -> Grouped {
        let n = match emit_to {
            EmitTo::All => self.groups,
            EmitTo::First(n) => n.min(self.groups),
        };
        let rows = std::mem::take(&mut self.rows);
        let (taken, rest): (Vec<_>, Vec<_>) =
            rows.into_iter().partition(|&(g, _)| (g as usize) < n);
        self.rows = rest
            .into_iter()
            .map(|(g, row)| (g - n as u32, row))
            .collect();
        self.groups -= n;
        Grouped::new(&[taken], n)
    }
}

impl GroupsAccumulator for SequenceGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.grow(total_num_groups)?;
        for (i, row) in batch_rows(values, opt_filter)? {
            self.rows.push((group_indices[i] as u32, row));
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let mut grouped = self.take(emit_to);
        let mut buffers = Scratch::default();
        let out: Int64Array = (0..grouped.groups())
            .map(|g| Some(i64::from(self.spec.holds_with(grouped.of(g), &mut buffers))))
            .collect();
        Ok(Arc::new(out))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let mut grouped = self.take(emit_to);
        let lists: Vec<Vec<Row>> = (0..grouped.groups())
            .map(|g| grouped.of(g).to_vec())
            .collect();
        Ok(vec![state_of(lists.iter())])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.grow(total_num_groups)?;
        let Some(lists) = values.first() else {
            return Ok(());
        };
        let lists = lists.as_list::<i32>();
        for (i, &g) in group_indices.iter().enumerate() {
            if lists.is_valid(i) {
                self.rows.extend(
                    rows_of(lists.value(i).as_ref())
                        .into_iter()
                        .map(|row| (g as u32, row)),
                );
            }
        }
        Ok(())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let n = values.first().map_or(0, |v| v.len());
        let mut per_row: Vec<Vec<Row>> = vec![Vec::new(); n];
        for (i, row) in batch_rows(values, opt_filter)? {
            per_row[i].push(row);
        }
        Ok(vec![state_of(per_row.iter())])
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.rows.capacity() * size_of::<(u32, Row)>()
    }
}

/// The profiles that hold a sequence, in a plan for SQL emission: the
/// rows of each step (`q0`, `q1`, …) joined by profile (and key) in strict
/// time order, or, for `then not`, the first step's rows without a second
/// step within the span (an anti join). Other engines evaluate it as joins;
/// see `docs/sql.md` for what that costs.
pub(super) fn sql(l: &super::Lowering<'_, '_>, q: &Seq) -> Result<LogicalPlan, DataError> {
    let until_as_of = l.ts().lt_eq(super::window::at_most(l.env, l.env.as_of)?);
    let key = q.same.map(|k| k.column());
    let steps = l.step_predicates(q)?;
    let mut plans = Vec::with_capacity(steps.len());
    for (j, pred) in steps.into_iter().enumerate() {
        let mut columns = vec![
            super::col("events.profile_id").alias("profile_id"),
            l.ts().alias("ts"),
        ];
        if let Some(k) = key {
            columns.push(Expr::Column(super::column_of("events", k)).alias("k"));
        }
        let scan = LogicalPlanBuilder::scan("events", Arc::clone(&l.env.events), None)?;
        plans.push(
            l.with_lookups(scan)?
                .filter(
                    pred.and(until_as_of.clone())
                        .and(super::col("events.profile_id").is_not_null()),
                )?
                .project(columns)?
                .alias(format!("q{j}"))?
                .build()?,
        );
    }
    let column = |j: usize, name: &str| super::column_of(format!("q{j}"), name);
    let within = |j: usize| -> Option<Expr> {
        q.within.map(|seconds| {
            l.env
                .form
                .within(col(column(j, "ts")), col(column(0, "ts")), seconds)
        })
    };
    let mut plans = plans.into_iter();
    let Some(first) = plans.next() else {
        return Err(DataError::new("internal error: a sequence without steps"));
    };
    let mut b = LogicalPlanBuilder::from(first);
    for (j, right) in plans.enumerate().map(|(j, p)| (j + 1, p)) {
        let mut left_keys = vec![column(0, "profile_id")];
        let mut right_keys = vec![column(j, "profile_id")];
        if key.is_some() {
            left_keys.push(column(0, "k"));
            right_keys.push(column(j, "k"));
        }
        let later = col(column(j, "ts")).gt(col(column(j - 1, "ts")));
        let (join, filter) = if q.negated {
            (
                JoinType::LeftAnti,
                within(j).map_or(later.clone(), |w| later.clone().and(w)),
            )
        } else {
            (JoinType::Inner, later)
        };
        b = b.join(right, join, (left_keys, right_keys), Some(filter))?;
    }
    if !q.negated {
        if let Some(w) = within(q.steps.len() - 1) {
            b = b.filter(w)?;
        }
    }
    Ok(
        b.project(vec![col(column(0, "profile_id")).alias("profile_id")])?
            .distinct()?
            .build()?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(spec: &[(i64, i64, u32)]) -> Vec<Row> {
        spec.iter()
            .map(|&(ts, key, steps)| Row { ts, key, steps })
            .collect()
    }

    fn seq(steps: u32, within: Option<i64>, negated: bool) -> SequenceSpec {
        SequenceSpec {
            steps,
            within,
            negated,
        }
    }

    #[test]
    fn steps_are_strictly_ordered_and_within_is_inclusive() {
        let two = seq(2, Some(10), false);
        assert!(two.holds(&mut rows(&[(0, 0, 1), (10, 0, 2)])));
        assert!(!two.holds(&mut rows(&[(0, 0, 1), (11, 0, 2)])));
        // Equal times are not an order.
        assert!(!two.holds(&mut rows(&[(5, 0, 1), (5, 0, 2)])));
        // One row matching both steps is not two events.
        assert!(!two.holds(&mut rows(&[(5, 0, 3)])));
        assert!(two.holds(&mut rows(&[(5, 0, 3), (6, 0, 3)])));
        // A later first step can start the chain that fits.
        assert!(two.holds(&mut rows(&[(0, 0, 1), (20, 0, 1), (25, 0, 2)])));
    }

    #[test]
    fn three_steps_take_the_earliest_chain_from_each_start() {
        let three = seq(3, Some(10), false);
        assert!(three.holds(&mut rows(&[(0, 0, 1), (3, 0, 2), (9, 0, 4)])));
        assert!(!three.holds(&mut rows(&[(0, 0, 1), (9, 0, 4), (3, 0, 2)][..2])));
        assert!(!three.holds(&mut rows(&[(0, 0, 1), (3, 0, 4), (9, 0, 2)])));
        assert!(seq(3, None, false).holds(&mut rows(&[(0, 0, 1), (3, 0, 2), (900, 0, 4)])));
    }

    #[test]
    fn same_key_keeps_each_key_apart() {
        let two = seq(2, None, false);
        assert!(!two.holds(&mut rows(&[(0, 1, 1), (5, 2, 2)])));
        assert!(two.holds(&mut rows(&[(0, 1, 1), (5, 2, 2), (6, 1, 2)])));
    }

    #[test]
    fn groups_keep_their_rows_apart_and_emit_first_renumbers_the_rest() {
        let mut g = SequenceGroups {
            spec: seq(2, None, false),
            groups: 0,
            rows: Vec::new(),
        };
        g.grow(3).unwrap();
        for (group, ts, steps) in [
            (0, 1, 1),
            (1, 5, 2),
            (0, 2, 2),
            (2, 1, 1),
            (2, 3, 2),
            (1, 4, 1),
        ] {
            g.rows.push((group, Row { ts, key: 0, steps }));
        }
        let first = g.evaluate(EmitTo::First(1)).unwrap();
        assert_eq!(first.as_primitive::<Int64Type>().values(), &[1]);
        assert_eq!(g.groups, 2);
        let rest = g.evaluate(EmitTo::All).unwrap();
        // Old group 1 (4 then 5) and old group 2 (1 then 3).
        assert_eq!(rest.as_primitive::<Int64Type>().values(), &[1, 1]);
        assert!(g.rows.is_empty());
    }

    /// Rows in several chunks, more than the grouping looks ahead, into
    /// groups some of which are empty: each group gets its rows, in the
    /// order they came.
    #[test]
    fn grouping_keeps_each_groups_rows_in_arrival_order() {
        let groups = 7;
        let tagged: Vec<(u32, Row)> = (0..100i64)
            .map(|i| {
                (
                    (i * 5 % 6) as u32,
                    Row {
                        ts: i,
                        key: i % 3,
                        steps: 1,
                    },
                )
            })
            .collect();
        let chunks: Vec<Vec<(u32, Row)>> = tagged.chunks(33).map(<[_]>::to_vec).collect();
        let mut grouped = Grouped::new(&chunks, groups);
        assert_eq!(grouped.groups(), groups);
        for g in 0..groups {
            let want: Vec<Row> = tagged
                .iter()
                .filter(|(t, _)| *t as usize == g)
                .map(|&(_, r)| r)
                .collect();
            assert_eq!(grouped.of(g), want.as_slice(), "group {g}");
        }
        assert!(grouped.of(6).is_empty() && grouped.of(0).len() == 17);
    }

    #[test]
    fn then_not_holds_for_one_unblocked_first_step() {
        let not = seq(2, Some(10), true);
        assert!(not.holds(&mut rows(&[(0, 0, 1)])));
        assert!(!not.holds(&mut rows(&[(0, 0, 1), (10, 0, 2)])));
        assert!(not.holds(&mut rows(&[(0, 0, 1), (11, 0, 2)])));
        // A second step at the same time does not block.
        assert!(not.holds(&mut rows(&[(0, 0, 1), (0, 0, 2)])));
        assert!(not.holds(&mut rows(&[(0, 0, 1), (5, 0, 2), (20, 0, 1)])));
        assert!(!not.holds(&mut rows(&[(0, 1, 1), (5, 1, 2)])));
        assert!(not.holds(&mut rows(&[(0, 1, 1), (5, 2, 2)])));
    }
}
