//! The generated world: campaigns (one channel each, with tags, attributes,
//! templates and links) and profiles with skewed activity.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::GenOptions;
use crate::catalog::Channel;
use crate::data::DataError;

const NAMES: [&str; 16] = [
    "Black Friday",
    "Cyber Monday",
    "Welcome series",
    "Abandoned cart",
    "Spring sale",
    "Summer sale",
    "New collection",
    "Weekly digest",
    "Loyalty bonus",
    "Back in stock",
    "Birthday offer",
    "Win-back",
    "Flash sale",
    "Order update",
    "Product launch",
    "Holiday gifts",
];
const TAGS: [&str; 8] = [
    "Online store",
    "Retail",
    "Promo",
    "Newsletter",
    "Transactional",
    "Retention",
    "Reactivation",
    "VIP",
];
const REGIONS: [&str; 4] = ["EU", "US", "APAC", "LATAM"];
const GOALS: [&str; 3] = ["sales", "retention", "awareness"];
/// Channel shares of campaigns: email dominates, groups are rare.
const CHANNEL_WEIGHTS: [(Channel, u32); 10] = [
    (Channel::Email, 40),
    (Channel::Sms, 10),
    (Channel::Push, 14),
    (Channel::TelegramBot, 8),
    (Channel::TelegramGroup, 3),
    (Channel::MaxBot, 4),
    (Channel::MaxGroup, 2),
    (Channel::Whatsapp, 8),
    (Channel::Viber, 6),
    (Channel::VkNotify, 5),
];

#[derive(Debug, Clone)]
pub struct Campaign {
    pub id: i64,
    pub name: String,
    pub channel: Channel,
    pub start_us: i64,
    pub end_us: i64,
    pub templates: Vec<i64>,
    /// Indices into [`Dims::link_values`].
    pub links: Vec<u32>,
    pub tags: Vec<&'static str>,
    pub region: &'static str,
    pub goal: &'static str,
}

#[derive(Debug, Clone)]
pub struct Template {
    pub id: i64,
    pub name: String,
    pub campaign: i64,
}

/// Everything but the events.
pub struct Dims {
    pub campaigns: Vec<Campaign>,
    pub templates: Vec<Template>,
    pub link_values: Arc<StringArray>,
    /// Cumulative activity weights of profiles 1..=N (silent ones add 0).
    /// Walker/Vose alias table over profiles 1..=N: O(1) weighted draws.
    alias: AliasTable,
    history_start_us: i64,
    /// Per day of history: the campaigns running that day.
    active: Vec<Vec<usize>>,
}

impl Dims {
    pub fn new(opts: &GenOptions) -> Dims {
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0xD1B5_4A32_D192_ED03);
        let end_us = opts.end.timestamp_micros();
        let span_us = i64::from(opts.days) * 86_400_000_000;
        let start_us = end_us - span_us;
        let n = ((u64::from(opts.days) * 2).max(12) + opts.events / 500_000).min(5_000) as usize;
        let total_weight: u32 = CHANNEL_WEIGHTS.iter().map(|(_, w)| w).sum();
        let mut campaigns = Vec::with_capacity(n);
        let mut templates = Vec::new();
        let mut links = Vec::new();
        for i in 0..n {
            let id = 1000 + i as i64;
            let mut pick = rng.random_range(0..total_weight);
            // The first ten cover every channel; the rest follow the shares.
            let channel = match crate::catalog::CHANNELS.get(i) {
                Some(c) => *c,
                None => CHANNEL_WEIGHTS
                    .iter()
                    .find(|(_, w)| {
                        let hit = pick < *w;
                        pick = pick.saturating_sub(*w);
                        hit
                    })
                    .map_or(Channel::Email, |(c, _)| *c),
            };
            // The first ten and a tenth of the rest are always-on series; the
            // others are waves of 1-5 days.
            let (s, e) = if i < crate::catalog::CHANNELS.len() || rng.random_bool(0.1) {
                (start_us, end_us)
            } else {
                let s = start_us + rng.random_range(0..span_us);
                (
                    s,
                    (s + rng.random_range(1..=5) * 86_400_000_000).min(end_us),
                )
            };
            let base = NAMES[rng.random_range(0..NAMES.len())];
            // Some names repeat on purpose: a name may select several campaigns.
            let name = if rng.random_bool(0.5) {
                base.to_string()
            } else {
                format!("{base} {}", 2024 + rng.random_range(0..3))
            };
            let mut tags = Vec::new();
            for _ in 0..rng.random_range(1..=3) {
                let t = TAGS[rng.random_range(0..TAGS.len())];
                if !tags.contains(&t) {
                    tags.push(t);
                }
            }
            let mut ts = Vec::new();
            for v in 0..rng.random_range(1..=3) {
                let tid = 50_000 + templates.len() as i64;
                templates.push(Template {
                    id: tid,
                    name: format!("{name} — variant {}", (b'A' + v as u8) as char),
                    campaign: id,
                });
                ts.push(tid);
            }
            let slug: String = base
                .to_lowercase()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            let mut ls = Vec::new();
            for k in 0..rng.random_range(2..=5) {
                ls.push(links.len() as u32);
                links.push(format!(
                    "https://shop.example.com/{slug}/{id}/{k}?utm_source={}",
                    channel.name()
                ));
            }
            campaigns.push(Campaign {
                id,
                name,
                channel,
                start_us: s,
                end_us: e.max(s + 1),
                templates: ts,
                links: ls,
                tags,
                region: REGIONS[rng.random_range(0..REGIONS.len())],
                goal: GOALS[rng.random_range(0..GOALS.len())],
            });
        }
        // Activity: 5% silent, the rest Pareto-distributed (a few heavy users).
        let mut weights = Vec::with_capacity(opts.profiles as usize);
        for _ in 0..opts.profiles {
            let w = if rng.random_bool(0.05) {
                0.0
            } else {
                let u: f64 = rng.random_range(0.0..1.0);
                (1.0 - u).powf(-1.0 / 1.3).min(1_000.0)
            };
            weights.push(w);
        }
        if weights.iter().all(|w| *w == 0.0) {
            // Every profile drew silent: make the first one active.
            weights[0] = 1.0;
        }
        let alias = AliasTable::new(&weights);
        let days = opts.days as usize;
        let mut active = vec![Vec::new(); days];
        for (i, c) in campaigns.iter().enumerate() {
            let first =
                ((c.start_us - start_us) / 86_400_000_000).clamp(0, days as i64 - 1) as usize;
            let last =
                ((c.end_us - 1 - start_us) / 86_400_000_000).clamp(0, days as i64 - 1) as usize;
            for day in &mut active[first..=last] {
                day.push(i);
            }
        }
        Dims {
            campaigns,
            templates,
            link_values: Arc::new(StringArray::from(links)),
            alias,
            history_start_us: start_us,
            active,
        }
    }

    /// A campaign running at `t` (or any campaign, on a quiet day).
    pub fn campaign_at(&self, rng: &mut impl Rng, t: i64) -> &Campaign {
        let day = ((t - self.history_start_us) / 86_400_000_000)
            .clamp(0, self.active.len() as i64 - 1) as usize;
        let list = &self.active[day];
        if list.is_empty() {
            &self.campaigns[rng.random_range(0..self.campaigns.len())]
        } else {
            &self.campaigns[list[rng.random_range(0..list.len())]]
        }
    }

    /// A profile id drawn by activity weight.
    pub fn profile(&self, rng: &mut impl Rng) -> i64 {
        self.alias.sample(rng) as i64 + 1
    }

    /// Writes profiles, campaigns, templates, tags and attributes.
    pub fn write(&self, out: &Path, profiles: u64) -> Result<(), DataError> {
        let ids = Int64Array::from_iter_values(1..=profiles as i64);
        write(out, "profiles.parquet", vec![("profile_id", Arc::new(ids))])?;
        let c = &self.campaigns;
        write(
            out,
            "campaigns.parquet",
            vec![
                (
                    "campaign_id",
                    Arc::new(Int64Array::from_iter_values(c.iter().map(|c| c.id))),
                ),
                (
                    "name",
                    Arc::new(StringArray::from_iter_values(
                        c.iter().map(|c| c.name.as_str()),
                    )),
                ),
                (
                    "channel",
                    Arc::new(StringArray::from_iter_values(
                        c.iter().map(|c| c.channel.name()),
                    )),
                ),
            ],
        )?;
        let t = &self.templates;
        write(
            out,
            "templates.parquet",
            vec![
                (
                    "template_id",
                    Arc::new(Int64Array::from_iter_values(t.iter().map(|t| t.id))),
                ),
                (
                    "name",
                    Arc::new(StringArray::from_iter_values(
                        t.iter().map(|t| t.name.as_str()),
                    )),
                ),
                (
                    "campaign_id",
                    Arc::new(Int64Array::from_iter_values(t.iter().map(|t| t.campaign))),
                ),
            ],
        )?;
        let mut tag_rows: Vec<(&str, i64, &str)> = Vec::new();
        let mut attr_rows: Vec<(&str, i64, &str, String)> = Vec::new();
        for c in &self.campaigns {
            tag_rows.extend(c.tags.iter().map(|t| ("campaign", c.id, *t)));
            attr_rows.push(("campaign", c.id, "region", c.region.to_string()));
            attr_rows.push(("campaign", c.id, "goal", c.goal.to_string()));
            attr_rows.push(("campaign", c.id, "channel", c.channel.name().to_string()));
        }
        for t in &self.templates {
            let kind = if t.name.ends_with('A') {
                "control"
            } else {
                "variant"
            };
            attr_rows.push(("template", t.id, "ab_group", kind.to_string()));
            if t.id % 4 == 0 {
                tag_rows.push(("template", t.id, "Personalized"));
            }
        }
        write(
            out,
            "tags.parquet",
            vec![
                (
                    "object",
                    Arc::new(StringArray::from_iter_values(tag_rows.iter().map(|r| r.0))),
                ),
                (
                    "object_id",
                    Arc::new(Int64Array::from_iter_values(tag_rows.iter().map(|r| r.1))),
                ),
                (
                    "tag",
                    Arc::new(StringArray::from_iter_values(tag_rows.iter().map(|r| r.2))),
                ),
            ],
        )?;
        write(
            out,
            "attributes.parquet",
            vec![
                (
                    "object",
                    Arc::new(StringArray::from_iter_values(attr_rows.iter().map(|r| r.0))),
                ),
                (
                    "object_id",
                    Arc::new(Int64Array::from_iter_values(attr_rows.iter().map(|r| r.1))),
                ),
                (
                    "key",
                    Arc::new(StringArray::from_iter_values(attr_rows.iter().map(|r| r.2))),
                ),
                (
                    "value",
                    Arc::new(StringArray::from_iter_values(
                        attr_rows.iter().map(|r| r.3.as_str()),
                    )),
                ),
            ],
        )
    }
}

/// Writes one small Parquet file of non-null columns.
pub(crate) fn write(
    out: &Path,
    name: &str,
    columns: Vec<(&str, ArrayRef)>,
) -> Result<(), DataError> {
    let path = out.join(name);
    let io = |e: &dyn std::fmt::Display| DataError::new(format!("{}: {e}", path.display()));
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), false))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .map_err(|e| io(&e))?;
    let file = std::fs::File::create(&path).map_err(|e| io(&e))?;
    let mut w = ArrowWriter::try_new(file, schema, None).map_err(|e| io(&e))?;
    w.write(&batch).map_err(|e| io(&e))?;
    w.close().map_err(|e| io(&e))?;
    Ok(())
}

/// Vose's alias method: each draw is one uniform index and one coin.
struct AliasTable {
    prob: Vec<f32>,
    alias: Vec<u32>,
}

impl AliasTable {
    fn new(weights: &[f64]) -> AliasTable {
        let n = weights.len();
        let total: f64 = weights.iter().sum();
        let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
        let mut prob = vec![1.0f32; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) =
            (0..n).partition(|&i| scaled[i] < 1.0);
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            prob[s] = scaled[s] as f32;
            alias[s] = l as u32;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        AliasTable { prob, alias }
    }

    fn sample(&self, rng: &mut impl Rng) -> usize {
        let i = rng.random_range(0..self.prob.len());
        if rng.random::<f32>() < self.prob[i] {
            i
        } else {
            self.alias[i] as usize
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_draws_follow_the_weights_and_never_pick_zero_weights() {
        let table = AliasTable::new(&[0.0, 1.0, 3.0, 0.0]);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut counts = [0usize; 4];
        for _ in 0..40_000 {
            counts[table.sample(&mut rng)] += 1;
        }
        assert_eq!((counts[0], counts[3]), (0, 0));
        let share = counts[2] as f64 / 40_000.0;
        assert!((0.73..0.77).contains(&share), "{share}");
    }
}
