//! `seg gen`: determinism, the catalog, funnel order, rates, schema, overwrite.

use crate::common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, TimestampMicrosecondType};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use seglang::catalog::{Channel, Event};
use seglang::gen::{generate, Compression, GenOptions};

#[derive(Debug, Clone, PartialEq)]
struct Row {
    profile: i64,
    channel: String,
    event: String,
    ts: i64,
    message: Option<i64>,
    campaign: Option<i64>,
    link: Option<String>,
}

fn opts(out: &Path, events: u64, threads: usize) -> GenOptions {
    GenOptions {
        out: out.to_path_buf(),
        profiles: 3_000,
        events,
        seed: 7,
        days: 60,
        end: seglang::syntax::literal::parse_datetime("2026-11-01").unwrap(),
        force: false,
        threads,
        compression: Compression::LZ4_RAW,
        progress: false,
    }
}

fn read_events(dir: &Path) -> Vec<Row> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut rows = Vec::new();
    for f in files {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for b in reader {
            let b = b.unwrap();
            let s = |name: &str| cast(b.column_by_name(name).unwrap(), &DataType::Utf8).unwrap();
            let (ch, ev, link) = (s("channel"), s("event"), s("link"));
            let (ch, ev, link) = (
                ch.as_string::<i32>(),
                ev.as_string::<i32>(),
                link.as_string::<i32>(),
            );
            let p = b
                .column_by_name("profile_id")
                .unwrap()
                .as_primitive::<Int64Type>();
            let ts = b
                .column_by_name("ts")
                .unwrap()
                .as_primitive::<TimestampMicrosecondType>();
            let m = b
                .column_by_name("message_id")
                .unwrap()
                .as_primitive::<Int64Type>();
            let c = b
                .column_by_name("campaign_id")
                .unwrap()
                .as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                rows.push(Row {
                    profile: p.value(i),
                    channel: ch.value(i).to_string(),
                    event: ev.value(i).to_string(),
                    ts: ts.value(i),
                    message: (!m.is_null(i)).then(|| m.value(i)),
                    campaign: (!c.is_null(i)).then(|| c.value(i)),
                    link: (!link.is_null(i)).then(|| link.value(i).to_string()),
                });
            }
        }
    }
    rows
}

#[test]
fn the_same_options_give_the_same_rows_whatever_the_thread_count() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let sa = generate(&opts(a.path(), 60_000, 1)).unwrap();
    let sb = generate(&opts(b.path(), 60_000, 2)).unwrap();
    assert_eq!(sa, sb);
    assert_eq!(sa.events, 60_000);
    let (ra, rb) = (read_events(a.path()), read_events(b.path()));
    assert_eq!(ra.len(), 60_000);
    assert!(ra == rb, "rows differ between 1 and 2 threads");
    for name in [
        "profiles.parquet",
        "campaigns.parquet",
        "templates.parquet",
        "tags.parquet",
        "attributes.parquet",
    ] {
        assert_eq!(
            std::fs::read(a.path().join(name)).unwrap(),
            std::fs::read(b.path().join(name)).unwrap(),
            "{name}"
        );
    }
    // Another codec gives the same rows, compressed with it.
    let z = tempfile::tempdir().unwrap();
    generate(&GenOptions {
        compression: Compression::ZSTD(Default::default()),
        ..opts(z.path(), 60_000, 2)
    })
    .unwrap();
    assert!(read_events(z.path()) == ra, "rows differ between codecs");
    let codec = |dir: &Path| {
        let file = std::fs::read_dir(dir.join("events"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(file).unwrap()).unwrap();
        reader.metadata().row_group(0).column(0).compression()
    };
    assert_eq!(codec(a.path()), Compression::LZ4_RAW);
    assert!(matches!(codec(z.path()), Compression::ZSTD(_)));
    // Another seed gives other rows.
    let c = tempfile::tempdir().unwrap();
    generate(&GenOptions {
        seed: 8,
        ..opts(c.path(), 60_000, 2)
    })
    .unwrap();
    assert!(read_events(c.path()) != ra);
}

#[test]
fn a_mid_sized_run_is_plausible() {
    let dir = tempfile::tempdir().unwrap();
    let summary = generate(&opts(dir.path(), 400_000, 2)).unwrap();
    assert!(summary.files >= 4);
    let rows = read_events(dir.path());
    assert_eq!(rows.len(), 400_000);

    // Only catalog pairs, and every catalog pair occurs.
    let pairs: BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| (r.event.clone(), r.channel.clone()))
        .collect();
    for (e, c) in &pairs {
        let event = Event::from_name(e).unwrap_or_else(|| panic!("unknown event {e}"));
        let channel = Channel::from_name(c).unwrap_or_else(|| panic!("unknown channel {c}"));
        assert!(event.exists_in(channel), "{e}.{c} is not in the catalog");
    }
    for info in &seglang::catalog::EVENTS {
        for c in info.event.channels() {
            assert!(
                pairs.contains(&(info.name.to_string(), c.name().to_string())),
                "{}.{} never generated",
                info.name,
                c
            );
        }
    }

    // Funnel order per message: sent first, delivered before engagement.
    let mut by_message: HashMap<i64, Vec<&Row>> = HashMap::new();
    for r in &rows {
        if let Some(m) = r.message {
            by_message.entry(m).or_default().push(r);
        }
    }
    let mut checked = 0;
    for events in by_message.values() {
        let at = |name: &str| {
            events
                .iter()
                .filter(|r| r.event == name)
                .map(|r| r.ts)
                .min()
        };
        let Some(sent) = at("sent") else { continue }; // the message started in an earlier slice cut
        for r in events {
            assert!(r.ts >= sent, "{} before sent", r.event);
        }
        if let Some(d) = at("delivered") {
            for later in [
                "opened",
                "read",
                "click",
                "link_click",
                "unique_click",
                "unsubscribe_click",
            ] {
                if let Some(t) = at(later) {
                    assert!(t >= d, "{later} before delivered");
                }
            }
            if let (Some(o), Some(rd)) = (at("opened"), at("read")) {
                if events[0].channel == "email" {
                    assert_eq!(rd - o, 12_000_000, "email read 12 s after open");
                }
            }
        }
        let profiles: BTreeSet<i64> = events.iter().map(|r| r.profile).collect();
        assert_eq!(profiles.len(), 1, "a message goes to one profile");
        checked += 1;
    }
    assert!(checked > 10_000);

    // Rates within tolerance (docs/data.md).
    let count = |e: &str, c: &str| {
        rows.iter()
            .filter(|r| r.event == e && r.channel == c)
            .count() as f64
    };
    let delivered = count("delivered", "email") / count("sent", "email");
    assert!(
        (0.95..0.99).contains(&delivered),
        "email delivery {delivered}"
    );
    let open = count("opened", "email") / count("delivered", "email");
    assert!((0.20..0.28).contains(&open), "email open rate {open}");
    let ctr = count("click", "email") / count("delivered", "email");
    assert!((0.015..0.05).contains(&ctr), "email click rate {ctr}");
    let unique = count("unique_click", "viber");
    assert!(
        unique <= count("click", "viber"),
        "unique clicks never exceed clicks"
    );

    // Skewed activity: the top 10% of profiles get a large share of events.
    let mut per: BTreeMap<i64, usize> = BTreeMap::new();
    for r in &rows {
        *per.entry(r.profile).or_default() += 1;
    }
    let mut counts: Vec<usize> = per.values().copied().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let top: usize = counts.iter().take(300).sum();
    assert!(
        top as f64 / rows.len() as f64 > 0.3,
        "top 10% share {}",
        top as f64 / rows.len() as f64
    );
    assert!(per.len() < 3_000, "some profiles are silent");

    // Links come from the campaign's own links.
    assert!(rows.iter().filter(|r| r.event == "link_click").all(|r| r
        .link
        .as_deref()
        .is_some_and(|l| l.contains(&format!("/{}/", r.campaign.unwrap())))));

    // The output is valid for seg itself.
    let (code, out, err) = common::seg_out(&[
        "run",
        "-e",
        "click.* at_least 1",
        "--data",
        &dir.path().display().to_string(),
        "--as-of",
        "2026-11-01",
        "--format",
        "count",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.trim().parse::<u64>().unwrap() > 100);
}

#[test]
fn the_schema_is_the_one_of_spec_section_5() {
    let dir = tempfile::tempdir().unwrap();
    generate(&opts(dir.path(), 10_000, 2)).unwrap();
    let data = seglang::data::DataDir::open(dir.path()).expect("valid data dir");
    assert!(data.event_files.len() >= 4);
    let schema = seglang::data::parquet_schema(&data.event_files[0]).unwrap();
    let types: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{} {}", f.name(), f.data_type()))
        .collect();
    insta::assert_snapshot!(types.join("\n"));
    let objects = seglang::data::load_objects(dir.path()).unwrap();
    assert!(!objects.campaigns.names.is_empty());
    assert!(objects.campaigns.tags.contains_key("Online store"));
    assert!(objects.campaigns.attributes.contains_key("region"));
}

#[test]
fn overwriting_is_refused_without_force_and_foreign_files_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    generate(&opts(dir.path(), 5_000, 1)).unwrap();
    let err = generate(&opts(dir.path(), 5_000, 1)).unwrap_err();
    assert!(err.message.contains("refusing to overwrite"), "{err}");
    generate(&GenOptions {
        force: true,
        ..opts(dir.path(), 5_000, 1)
    })
    .expect("force replaces our own output");
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let err = generate(&GenOptions {
        force: true,
        ..opts(dir.path(), 5_000, 1)
    })
    .unwrap_err();
    assert!(err.message.contains("notes.txt"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
        "mine"
    );
    // Through the CLI: exit 2.
    let (code, _, err) = common::seg_out(&[
        "gen",
        "--out",
        &dir.path().display().to_string(),
        "--events",
        "100",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("refusing"), "{err}");
}
