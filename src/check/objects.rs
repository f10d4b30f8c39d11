//! What the data knows about campaigns and templates: ids, names, tags and
//! attributes. The checker warns about selectors that match nothing; the
//! planner resolves selectors to id lists with the same index.

use std::collections::{BTreeMap, BTreeSet};

use crate::syntax::ast::ObjectKind;

use super::program::Selector;

/// The objects of one kind.
#[derive(Debug, Default, Clone)]
pub struct Objects {
    /// Ids listed in the dimension table (`None` when the table is absent).
    pub ids: Option<BTreeSet<i64>>,
    /// name -> ids (a name may be shared).
    pub names: BTreeMap<String, BTreeSet<i64>>,
    /// tag -> ids.
    pub tags: BTreeMap<String, BTreeSet<i64>>,
    /// key -> value -> ids.
    pub attributes: BTreeMap<String, BTreeMap<String, BTreeSet<i64>>>,
}

/// Campaigns and templates, as loaded from a data directory.
#[derive(Debug, Default, Clone)]
pub struct ObjectIndex {
    pub campaigns: Objects,
    pub templates: Objects,
    /// Whether tags.parquet / attributes.parquet were present.
    pub has_tags: bool,
    pub has_attributes: bool,
}

impl ObjectIndex {
    /// The objects of a kind.
    pub fn of(&self, kind: ObjectKind) -> &Objects {
        match kind {
            ObjectKind::Campaign => &self.campaigns,
            ObjectKind::Template => &self.templates,
        }
    }

    /// Mutable access to the objects of a kind.
    pub fn of_mut(&mut self, kind: ObjectKind) -> &mut Objects {
        match kind {
            ObjectKind::Campaign => &mut self.campaigns,
            ObjectKind::Template => &mut self.templates,
        }
    }

    /// The ids a selector selects (SPEC §6): listed ids select themselves,
    /// names, tags and attribute tests select the objects that have them.
    pub fn select(&self, kind: ObjectKind, selector: &Selector) -> BTreeSet<i64> {
        let objects = self.of(kind);
        match selector {
            Selector::Items { ids, names } => {
                let mut out: BTreeSet<i64> = ids.iter().copied().collect();
                for name in names {
                    if let Some(found) = objects.names.get(name) {
                        out.extend(found);
                    }
                }
                out
            }
            Selector::Tagged(tags) => tags
                .iter()
                .filter_map(|t| objects.tags.get(t))
                .flatten()
                .copied()
                .collect(),
            Selector::Where(tests) => {
                let mut result: Option<BTreeSet<i64>> = None;
                for (key, negated, value) in tests {
                    let matching: BTreeSet<i64> = match objects.attributes.get(key) {
                        None => BTreeSet::new(),
                        Some(values) => values
                            .iter()
                            .filter(|(v, _)| (*v == value) != *negated)
                            .flat_map(|(_, ids)| ids.iter().copied())
                            .collect(),
                    };
                    result = Some(match result {
                        None => matching,
                        Some(r) => r.intersection(&matching).copied().collect(),
                    });
                }
                result.unwrap_or_default()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> ObjectIndex {
        let mut idx = ObjectIndex::default();
        let c = idx.of_mut(ObjectKind::Campaign);
        c.ids = Some([1, 2, 3].into());
        c.names.insert("Black Friday".into(), [1, 3].into());
        c.tags.insert("Online store".into(), [2].into());
        let mut region = BTreeMap::new();
        region.insert("EU".to_string(), BTreeSet::from([1, 2]));
        region.insert("US".to_string(), BTreeSet::from([3]));
        c.attributes.insert("region".into(), region);
        let mut tier = BTreeMap::new();
        tier.insert("gold".to_string(), BTreeSet::from([2, 3]));
        c.attributes.insert("tier".into(), tier);
        idx
    }

    #[test]
    fn shared_names_select_every_object_and_ids_select_themselves() {
        let sel = Selector::Items {
            ids: vec![99],
            names: vec!["Black Friday".into(), "nope".into()],
        };
        assert_eq!(
            index().select(ObjectKind::Campaign, &sel),
            BTreeSet::from([1, 3, 99])
        );
    }

    #[test]
    fn where_tests_must_all_hold_and_not_equal_needs_the_key() {
        let idx = index();
        let sel = Selector::Where(vec![
            ("region".into(), false, "EU".into()),
            ("tier".into(), false, "gold".into()),
        ]);
        assert_eq!(idx.select(ObjectKind::Campaign, &sel), BTreeSet::from([2]));
        let neq = Selector::Where(vec![("tier".into(), true, "silver".into())]);
        assert_eq!(
            idx.select(ObjectKind::Campaign, &neq),
            BTreeSet::from([2, 3])
        );
        let unknown = Selector::Where(vec![("color".into(), true, "x".into())]);
        assert!(idx.select(ObjectKind::Campaign, &unknown).is_empty());
    }

    #[test]
    fn tags_select_by_any_tag() {
        let sel = Selector::Tagged(vec!["Online store".into(), "missing".into()]);
        assert_eq!(
            index().select(ObjectKind::Campaign, &sel),
            BTreeSet::from([2])
        );
        assert!(index().select(ObjectKind::Template, &sel).is_empty());
    }
}
