//! Event tables as other writers leave them: Spark's INT96 timestamps, plain
//! string columns with and without dictionary pages (and pages that fall
//! back from dictionary to plain mid-column), id columns of other integer
//! types (Spark's `int`, ClickHouse's `UInt64`), Polars', fastparquet's and
//! pyarrow's files with uncommon options, and files that fail to decode.
//! Whatever the writer, the same events give the same ids; a file that does
//! not decode is named with its column and row group.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, BinaryArray, RecordBatch, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Int64Type, Schema, UInt64Type};
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;

use crate::common::*;

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// Written by pyarrow as Spark writes: INT96 `ts` (nanoseconds, no Arrow
/// schema in the footer), plain strings, Snappy, `part-…` files beside a
/// `_SUCCESS` marker. Edges at one nanosecond, and an event before 1970.
#[test]
fn spark_int96_timestamps_are_read_to_the_nanosecond() {
    let data = fixture("spark_int96");
    let as_of = "2026-11-01T00:00:00Z";
    // (as_of - 1d, as_of]: 1 ns after the lower bound is in, the bound
    // itself is out, as_of itself is in, 1 ns after it is out.
    assert_eq!(
        run_ids("click.email at_least 1 last 1d", &data, as_of),
        vec![1, 3]
    );
    assert_eq!(
        run_ids("click.email exists", &data, as_of),
        vec![1, 2, 3, 6, 7]
    );
    // Profile 6 clicked 1 ns before and at UTC midnight: two days; 7 twice
    // on one day.
    assert_eq!(
        run_ids("click.email at_least 2 days", &data, as_of),
        vec![6]
    );
    assert_eq!(run_ids("click.sms exists", &data, as_of), vec![8]);
    assert_eq!(
        run_ids("click.sms exists", &data, "1969-12-31T23:59:58Z"),
        Vec::<i64>::new()
    );
}

/// A few thousand events over every channel and event of a week, with
/// campaigns and links, so string columns have many distinct values.
fn varied_events() -> Vec<Ev> {
    const WHAT: [&str; 8] = [
        "click.email",
        "opened.email",
        "delivered.sms",
        "click.push",
        "read.whatsapp",
        "unsubscribe_click.email",
        "link_click.telegram_bot",
        "delivered.email",
    ];
    (0..3000)
        .map(|i: i64| {
            let ts: &'static str = Box::leak(
                format!(
                    "2026-10-{:02}T{:02}:{:02}:00Z",
                    20 + i % 11,
                    (i * 7) % 24,
                    (i * 13) % 60
                )
                .into_boxed_str(),
            );
            let link: &'static str =
                Box::leak(format!("https://shop.example/p/{}", i % 97).into_boxed_str());
            ev(WHAT[(i % 8) as usize], 1 + (i * 31) % 400, ts)
                .camp(1 + i % 5)
                .msg(i)
                .link(link)
        })
        .collect()
}

const SCRIPTS: [&str; 6] = [
    "click.email at_least 2 last 7d",
    "click.* at_least 2 days last 30d",
    "opened.email not_happened after delivered",
    "not click.* exists",
    "link_click.telegram_bot at_least 1 link like \"%p/1%\"",
    "(delivered.sms at_least 1 last 3d or read.whatsapp exists) and not unsubscribe_click.email exists",
];

/// Plain string columns written without dictionary pages, and with a
/// dictionary page limit so small that every column falls back to plain
/// pages part-way: read as dictionaries all the same, with the ids of the
/// dictionary-typed file.
#[test]
fn plain_and_fallback_string_pages_give_the_ids_of_dictionary_files() {
    let events = varied_events();
    let as_of = "2026-10-31T12:00:00Z";
    let reference = Data::with_encoding(
        &events,
        Encoding {
            dictionary: true,
            ..PLAIN_US
        },
    );
    let writers = [
        (
            "no dictionary pages",
            WriterProperties::builder()
                .set_dictionary_enabled(false)
                .set_compression(Compression::SNAPPY)
                .build(),
        ),
        (
            "dictionary falling back to plain",
            WriterProperties::builder()
                .set_dictionary_page_size_limit(16)
                .set_data_page_row_count_limit(100)
                .set_write_batch_size(50)
                .set_max_row_group_row_count(Some(700))
                .build(),
        ),
    ];
    for (what, props) in writers {
        let data = Data::empty();
        write_events_with(
            &data.path().join("events/part-0.parquet"),
            &events,
            PLAIN_US,
            Some(props),
        );
        for script in SCRIPTS {
            let want = reference.ids(script, as_of);
            assert!(!want.is_empty() || script.starts_with("not"), "{script}");
            assert_eq!(data.ids(script, as_of), want, "{what}: {script}");
        }
    }
}

/// Runs `script` over `data`, which must fail as bad data does: exit code
/// 2, nothing on stdout. Returns stderr.
fn refusal(script: &str, data: &str, as_of: &str) -> String {
    let (code, out, err) = seg_out(&["run", "-e", script, "--data", data, "--as-of", as_of]);
    assert_eq!(code, 2, "stdout: {out}\nstderr: {err}");
    assert!(out.is_empty(), "{out}");
    err
}

/// A whole Parquet file as one batch.
fn read_batch(path: &Path) -> RecordBatch {
    use datafusion::arrow::array::RecordBatchReader;
    use datafusion::arrow::compute::concat_batches;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let schema = reader.schema();
    let batches: Vec<_> = reader.map(Result::unwrap).collect();
    concat_batches(&schema, &batches).unwrap()
}

/// Rewrites a Parquet file with the columns `change` returns a new array for.
fn rewrite(
    path: &Path,
    change: impl Fn(&str, &ArrayRef) -> Option<ArrayRef>,
    props: Option<WriterProperties>,
) {
    let batch = read_batch(path);
    let schema = batch.schema();
    let mut fields = Vec::new();
    let mut arrays = Vec::new();
    for (field, array) in schema.fields().iter().zip(batch.columns()) {
        let array = change(field.name(), array).unwrap_or_else(|| Arc::clone(array));
        fields.push(
            field
                .as_ref()
                .clone()
                .with_data_type(array.data_type().clone()),
        );
        arrays.push(array);
    }
    let changed = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap();
    assert_eq!(changed.num_rows(), batch.num_rows());
    write_batch_with(path, changed, props);
}

/// Rewrites a Parquet file with the named columns cast to other types.
fn narrow(path: &Path, columns: &[(&str, DataType)]) {
    rewrite(
        path,
        |name, array| {
            let (_, t) = columns.iter().find(|(n, _)| *n == name)?;
            Some(datafusion::arrow::compute::cast(array, t).unwrap())
        },
        None,
    );
}

/// Profiles 1–420 and five campaigns, two of them tagged "Online store".
fn shop() -> Data {
    Data::empty()
        .profiles(&(1..=420).collect::<Vec<_>>())
        .campaigns(&[
            (1, "Sale"),
            (2, "Digest"),
            (3, "Sale 2"),
            (4, "Promo"),
            (5, "Welcome"),
        ])
        .tags(&[
            ("campaign", 1, "Online store"),
            ("campaign", 4, "Online store"),
        ])
}

/// `data` with `events` in two files (1 700 events, then the rest).
fn with_events(data: Data, events: &[Ev]) -> Data {
    write_events(
        &data.path().join("events/part-0.parquet"),
        &events[..1700],
        PLAIN_US,
    );
    write_events(
        &data.path().join("events/part-1.parquet"),
        &events[1700..],
        PLAIN_US,
    );
    data
}

/// Spark's `int` and other narrower integers in the id columns, in one of
/// two event files and in every small table: widened as they are read, the
/// ids of int64 files. ClickHouse's `UInt64` too, until a value does not
/// fit in an int64.
#[test]
fn other_integer_types_are_read_as_int64_and_a_value_past_it_is_an_error() {
    let events = varied_events();
    let as_of = "2026-10-31T12:00:00Z";
    let build = || with_events(shop(), &events);
    let reference = build();
    let narrowed = build();
    let root = narrowed.path();
    narrow(
        &root.join("events/part-1.parquet"),
        &[
            ("profile_id", DataType::Int32),
            ("campaign_id", DataType::UInt8),
            ("message_id", DataType::UInt16),
        ],
    );
    narrow(
        &root.join("profiles.parquet"),
        &[("profile_id", DataType::UInt32)],
    );
    narrow(
        &root.join("campaigns.parquet"),
        &[("campaign_id", DataType::Int16)],
    );
    narrow(
        &root.join("tags.parquet"),
        &[("object_id", DataType::Int32)],
    );
    let scripts = SCRIPTS.iter().copied().chain([
        "click.email at_least 1 in campaigns tagged \"Online store\"",
        "opened.email at_least 1 in campaigns \"Sale\", \"Promo\"",
        "click.email then click.email within 3d",
    ]);
    let dir = root.to_string_lossy().into_owned();
    for script in scripts {
        let want = reference.ids(script, as_of);
        assert!(!want.is_empty(), "{script}");
        assert_eq!(run_ids(script, &dir, as_of), want, "{script}");
    }

    // ClickHouse's UInt64: read while every value fits in int64, an error
    // naming the file, column and row group once one does not.
    let part = root.join("events/part-0.parquet");
    narrow(&part, &[("profile_id", DataType::UInt64)]);
    let script = SCRIPTS[0];
    assert_eq!(run_ids(script, &dir, as_of), reference.ids(script, as_of));
    rewrite(
        &part,
        |name, array| {
            (name == "profile_id").then(|| {
                let mut ids = array.as_primitive::<UInt64Type>().values().to_vec();
                ids[1234] = u64::MAX - 4;
                Arc::new(UInt64Array::from(ids)) as ArrayRef
            })
        },
        None,
    );
    let err = refusal(script, &dir, as_of);
    assert!(
        err.contains("part-0.parquet: column `profile_id`, row group 0: a UInt64 value does not fit in int64")
            && err.contains("18446744073709551611"),
        "{err}"
    );
    // The same in a small table, read when the data is opened.
    let tags = reference.path().join("tags.parquet");
    rewrite(
        &tags,
        |name, array| {
            (name == "object_id").then(|| {
                let mut ids: Vec<u64> = array
                    .as_primitive::<Int64Type>()
                    .values()
                    .iter()
                    .map(|&v| v as u64)
                    .collect();
                ids[0] = 1 << 63;
                Arc::new(UInt64Array::from(ids)) as ArrayRef
            })
        },
        None,
    );
    let reference = reference.path().to_string_lossy().into_owned();
    let err = refusal(script, &reference, as_of);
    assert!(
        err.contains("tags.parquet: column `object_id`: a UInt64 value does not fit in int64"),
        "{err}"
    );
}

/// String columns stored as byte arrays without Parquet's UTF8 annotation
/// (older Impala and Hive writers), in the events and the small tables:
/// read as text, the ids of utf8 files. A value that is not UTF-8 is an
/// error naming the file, the column and the row group.
#[test]
fn binary_string_columns_are_read_as_text_and_invalid_utf8_is_an_error() {
    let events = varied_events();
    let as_of = "2026-10-31T12:00:00Z";
    let build = || {
        let data = Data::empty()
            .campaigns(&[(1, "Sale"), (2, "Digest"), (4, "Promo")])
            .tags(&[
                ("campaign", 1, "Online store"),
                ("campaign", 4, "Online store"),
            ]);
        write_events(
            &data.path().join("events/part-0.parquet"),
            &events,
            PLAIN_US,
        );
        data
    };
    let (reference, binary) = (build(), build());
    let root = binary.path();
    let part = root.join("events/part-0.parquet");
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(1000))
        .build();
    let to_binary = |names: &'static [&'static str]| {
        move |name: &str, array: &ArrayRef| {
            names
                .contains(&name)
                .then(|| datafusion::arrow::compute::cast(array, &DataType::Binary).unwrap())
        }
    };
    rewrite(
        &part,
        to_binary(&["channel", "event", "link"]),
        Some(props.clone()),
    );
    rewrite(&root.join("campaigns.parquet"), to_binary(&["name"]), None);
    rewrite(
        &root.join("tags.parquet"),
        to_binary(&["object", "tag"]),
        None,
    );
    let dir = root.to_string_lossy().into_owned();
    let scripts = SCRIPTS.iter().copied().chain([
        "click.email at_least 1 in campaigns tagged \"Online store\"",
        "opened.email at_least 1 in campaigns \"Sale\", \"Promo\"",
    ]);
    for script in scripts {
        let want = reference.ids(script, as_of);
        assert!(!want.is_empty() || script.starts_with("not"), "{script}");
        assert_eq!(run_ids(script, &dir, as_of), want, "{script}");
    }

    for (column, row, group) in [("event", 2100, 2), ("link", 1500, 1)] {
        let bad = Data::empty();
        let path = bad.path().join("events/part-0.parquet");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(&part, &path).unwrap();
        rewrite(
            &path,
            |name, array| {
                (name == column).then(|| {
                    let mut values: Vec<Option<Vec<u8>>> = array
                        .as_binary::<i32>()
                        .iter()
                        .map(|v| v.map(<[u8]>::to_vec))
                        .collect();
                    values[row] = Some(b"cl\xffick".to_vec());
                    Arc::new(BinaryArray::from_iter(values)) as ArrayRef
                })
            },
            Some(props.clone()),
        );
        let dir = bad.path().to_string_lossy().into_owned();
        let script = "link_click.telegram_bot at_least 1 link like \"%p/1%\" or click.email exists";
        let err = refusal(script, &dir, as_of);
        assert!(
            err.contains(&format!(
                "part-0.parquet: column `{column}`, row group {group}: a value is not UTF-8 text"
            )),
            "{err}"
        );
    }
}

/// A required column that is missing says where it might be: in another
/// case, or in the Hive folder names above the file.
#[test]
fn a_missing_column_names_the_column_in_another_case_or_in_a_folder() {
    let events = varied_events();
    // (file, column, renamed to or dropped, what the error says of it)
    let cases = [
        (
            "events/part-0.parquet",
            "profile_id",
            Some("PROFILE_ID"),
            "`PROFILE_ID` differs only in case: column names are case-sensitive",
        ),
        // A partition column when no file holds it (see
        // `hive_partition_values_are_read_as_columns`); here one does.
        (
            "events/channel=email/part-0.parquet",
            "channel",
            None,
            "it is in the folder name `channel=email/`: Seg reads a Hive partition value as column `channel` only when no events file holds `channel` and every events file is below a folder `channel=…/`",
        ),
        (
            "events/ts=2026-10-20/part-0.parquet",
            "ts",
            None,
            "it is in the folder name `ts=2026-10-20/`: Seg reads `ts` only from the files",
        ),
    ];
    for (file, column, renamed, hint) in cases {
        let data = Data::empty();
        let path = data.path().join(file);
        write_events(&path, &events[..100], PLAIN_US);
        write_events(
            &data.path().join("events/part-1.parquet"),
            &events[100..200],
            PLAIN_US,
        );
        rename_or_drop(&path, column, renamed);
        let dir = data.path().to_string_lossy().into_owned();
        let err = refusal("click.email exists", &dir, "2026-11-01");
        assert!(
            err.contains(&format!("missing required column `{column}`")) && err.contains(hint),
            "{err}"
        );
    }
}

/// Events in Hive folders, as DuckDB's `COPY … (PARTITION_BY …)` and
/// Spark's `partitionBy` write them: the partition columns are not in the
/// files, their values are in the folder names (percent-encoded, NULL as
/// `__HIVE_DEFAULT_PARTITION__`). They are read as columns, with the ids of
/// the same events unpartitioned, by string, dictionary and integer
/// columns, NULLs among them; a segment reads only the folders of its
/// events; a folder value that is not of its column's type is an error.
#[test]
fn hive_partition_values_are_read_as_columns() {
    let mut events = varied_events();
    // Some events of no campaign: a NULL partition value.
    for e in events.iter_mut().step_by(7) {
        e.camp = None;
    }
    let as_of = "2026-10-31T12:00:00Z";
    let reference = with_events(shop(), &events);
    let scripts: Vec<&str> = SCRIPTS
        .iter()
        .copied()
        .chain([
            "click.email at_least 1 in campaigns tagged \"Online store\"",
            "opened.email at_least 1 in campaigns \"Sale\", \"Promo\"",
            "click.email then click.email within 3d",
            "link_click.telegram_bot at_least 1 link \"https://shop.example/p/12\"",
        ])
        .collect();
    let want: Vec<Vec<i64>> = scripts.iter().map(|s| reference.ids(s, as_of)).collect();
    for keys in [
        &["channel", "event"][..],
        &["campaign_id"],
        &["link"],
        &["event", "message_id"],
    ] {
        let data = shop();
        partition_events(reference.path(), data.path(), keys);
        let dir = data.path().to_string_lossy().into_owned();
        for (script, want) in scripts.iter().zip(&want) {
            assert!(!want.is_empty() || script.starts_with("not"), "{script}");
            assert_eq!(&run_ids(script, &dir, as_of), want, "{keys:?}: {script}");
        }
    }

    // By channel and event, a segment reads its folder only.
    let data = shop();
    partition_events(reference.path(), data.path(), &["channel", "event"]);
    let plan = physical_plan(SCRIPTS[0], data.path(), as_of);
    assert!(plan.contains("channel=email/event=click/"), "{plan}");
    assert!(
        !plan.contains("event=opened") && !plan.contains("channel=sms"),
        "{plan}"
    );

    // A folder value that is not an integer, for an integer column.
    let data = shop();
    partition_events(reference.path(), data.path(), &["campaign_id"]);
    let events_dir = data.path().join("events");
    std::fs::rename(
        events_dir.join("campaign_id=3"),
        events_dir.join("campaign_id=three"),
    )
    .unwrap();
    let err = refusal(SCRIPTS[0], &data.path().to_string_lossy(), as_of);
    assert!(
        err.contains("campaign_id=three/part-0.parquet: the folder name `campaign_id=three` gives column `campaign_id` the value `three`, which is not an integer"),
        "{err}"
    );
}

/// The bundled example data rewritten by Polars, fastparquet and pyarrow
/// with options Seg's files never use (`tests/fixtures/other_writers.py`:
/// string views, large strings, v2 pages with DELTA and BYTE_STREAM_SPLIT
/// encodings, INT96, millisecond and nanosecond `ts`, a zone other than
/// UTC, five codecs, no statistics, fastparquet's Hive folders beside their
/// `_metadata` files): every example script gives the ids, segment by
/// segment, of the bundled files.
#[test]
fn other_writers_and_their_options_give_the_ids_of_the_bundled_data() {
    let python = python();
    let modules = "polars, fastparquet, pyarrow";
    if !python_has(&python, modules, "the other writers' layouts") {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let written = std::process::Command::new(&python)
        .arg(fixture("other_writers.py"))
        .arg(examples_dir().join("data"))
        .arg(out.path())
        .output()
        .expect("run python");
    assert!(
        written.status.success(),
        "{}",
        String::from_utf8_lossy(&written.stderr)
    );
    let layouts: Vec<String> = String::from_utf8_lossy(&written.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(layouts.len(), 10, "{layouts:?}");
    let as_of = "2026-11-01";
    let ids = |script: &str, data: &Path| {
        let data = data.to_string_lossy();
        let args = [
            "run", script, "--data", &data, "--all", "--as-of", as_of, "--format", "csv",
        ];
        let (code, stdout, stderr) = seg_out(&args);
        assert_eq!(code, 0, "{script} on {data}: {stderr}");
        stdout
    };
    let bundled = examples_dir().join("data");
    for script in example_scripts() {
        let want = ids(&script, &bundled);
        assert!(want.lines().count() > 1, "{script} selects someone");
        for layout in &layouts {
            let got = ids(&script, &out.path().join(layout));
            assert!(got == want, "{script} on the {layout} layout");
        }
    }
}

/// Paths are names, never patterns: a data directory and events files whose
/// names hold `*`, `?`, `[` or a space give the ids of plain names.
/// (DataFusion's own path parsing read them as globs, and the run failed
/// reading `/tmp` as a Parquet file.)
#[test]
fn names_with_glob_characters_are_read_as_names() {
    let as_of = "2026-10-31T12:00:00Z";
    let reference = with_events(shop(), &varied_events());
    let root = tempfile::tempdir().unwrap();
    let odd = root.path().join("shop [eu] *?");
    copy_dir(reference.path(), &odd);
    let events = odd.join("events");
    std::fs::rename(
        events.join("part-0.parquet"),
        events.join("part [0]*?.parquet"),
    )
    .unwrap();
    let dir = odd.to_string_lossy().into_owned();
    for script in SCRIPTS {
        let want = reference.ids(script, as_of);
        assert!(!want.is_empty() || script.starts_with("not"), "{script}");
        assert_eq!(run_ids(script, &dir, as_of), want, "{script}");
    }
}

/// Writes the events of the data directory `from` (its `events/` files)
/// below `to/events/` in Hive folders by the values of `keys`, as DuckDB's
/// `COPY … (PARTITION_BY …)` does: one file per folder, without the key
/// columns; values percent-encoded, NULL as `__HIVE_DEFAULT_PARTITION__`.
pub fn partition_events(from: &Path, to: &Path, keys: &[&str]) {
    use datafusion::arrow::array::Array;
    use datafusion::arrow::compute::{cast, concat_batches, take_record_batch};
    use datafusion::arrow::datatypes::UInt32Type;
    use std::collections::BTreeMap;
    let mut files: Vec<_> = std::fs::read_dir(from.join("events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let batches: Vec<RecordBatch> = files.iter().map(|f| read_batch(f)).collect();
    let all = concat_batches(&batches[0].schema(), &batches).unwrap();
    let values: Vec<ArrayRef> = keys
        .iter()
        .map(|k| cast(all.column_by_name(k).unwrap(), &DataType::Utf8).unwrap())
        .collect();
    let mut folders: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for row in 0..all.num_rows() {
        let folder: Vec<String> = keys
            .iter()
            .zip(&values)
            .map(|(k, v)| {
                let v = v.as_string::<i32>();
                let value = match v.is_null(row) {
                    true => "__HIVE_DEFAULT_PARTITION__".to_string(),
                    false => percent_encoding::utf8_percent_encode(
                        v.value(row),
                        percent_encoding::NON_ALPHANUMERIC,
                    )
                    .to_string(),
                };
                format!("{k}={value}")
            })
            .collect();
        folders
            .entry(folder.join("/"))
            .or_default()
            .push(row as u32);
    }
    assert!(folders.len() > 1, "{keys:?}");
    for (folder, rows) in folders {
        let rows = datafusion::arrow::array::PrimitiveArray::<UInt32Type>::from(rows);
        let batch = take_record_batch(&all, &rows).unwrap();
        let path = to.join("events").join(folder).join("part-0.parquet");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        write_batch(&path, batch);
        for k in keys {
            rename_or_drop(&path, k, None);
        }
    }
}

/// Rewrites a Parquet file with `column` renamed, or left out.
fn rename_or_drop(path: &Path, column: &str, renamed: Option<&str>) {
    let batch = read_batch(path);
    let (mut fields, mut arrays) = (Vec::new(), Vec::new());
    for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
        match (field.name() == column, renamed) {
            (true, None) => continue,
            (true, Some(name)) => fields.push(field.as_ref().clone().with_name(name)),
            (false, _) => fields.push(field.as_ref().clone()),
        }
        arrays.push(Arc::clone(array));
    }
    write_batch(
        path,
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap(),
    );
}

/// Overwrites the middle of the first row group's `event` column chunk.
fn corrupt_event_column(path: &Path) {
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    let file = std::fs::File::open(path).expect("open");
    let reader = SerializedFileReader::new(file).expect("footer");
    let group = reader.metadata().row_group(0);
    let column = (0..group.num_columns())
        .find(|&c| group.column(c).column_path().string() == "event")
        .expect("an event column");
    let (start, len) = group.column(column).byte_range();
    let mut bytes = std::fs::read(path).expect("read");
    // Past the dictionary page, into the data pages' keys.
    let from = (start + len / 2) as usize;
    let to = (start + len) as usize;
    bytes[from..to].fill(0xFF);
    std::fs::write(path, bytes).expect("write");
}

#[test]
fn a_page_that_does_not_decode_names_the_file_column_and_row_group() {
    let events = varied_events();
    let data = Data::empty();
    let bad = data.path().join("events/part-1.parquet");
    write_events(
        &data.path().join("events/part-0.parquet"),
        &events[..1500],
        PLAIN_US,
    );
    write_events_with(
        &bad,
        &events[1500..],
        PLAIN_US,
        Some(
            WriterProperties::builder()
                .set_compression(Compression::UNCOMPRESSED)
                .build(),
        ),
    );
    corrupt_event_column(&bad);
    let dir = data.path().to_string_lossy().into_owned();
    let err = refusal("click.email exists", &dir, "2026-11-01");
    assert!(
        err.contains(&bad.display().to_string())
            && err.contains("column `event`")
            && err.contains("row group 0"),
        "{err}"
    );
}

/// `SEG_MMAP=0` reads with plain reads: the same ids; a value that is not a
/// switch is a usage error that says what it takes.
#[test]
fn reads_without_memory_maps_give_the_same_ids() {
    let data = fixture("spark_int96");
    let run = |mmap: &str| {
        seg()
            .env("SEG_MMAP", mmap)
            .args([
                "run",
                "-e",
                "click.email exists",
                "--data",
                &data,
                "--as-of",
                "2026-11-01",
                "--format",
                "csv",
            ])
            .output()
            .expect("run seg")
    };
    let (on, off) = (run("1"), run("0"));
    assert!(on.status.success() && off.status.success());
    assert_eq!(on.stdout, off.stdout);
    assert_eq!(String::from_utf8_lossy(&off.stdout).lines().count(), 6);
    let bad = run("maybe");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("SEG_MMAP"));
}

/// One row group of 120 000 rows without a page index (as pyarrow writes
/// them: Snappy, statistics per row group only) is read by both partitions,
/// each a part of it, and gives the ids of the same events read whole.
#[test]
fn a_large_row_group_is_read_in_parts_with_the_ids_of_a_whole_read() {
    use datafusion::parquet::file::properties::EnabledStatistics;

    // Groups of four events of one message: a click, an SMS click, a
    // delivery and (but in every fifth group) an opening.
    let events: Vec<Ev> = (0..120_000i64)
        .map(|i| {
            let ts: &'static str = Box::leak(
                format!(
                    "2026-10-{:02}T{:02}:{:02}:{:02}Z",
                    1 + i * 30 / 120_000,
                    (i / 60) % 24,
                    i % 60,
                    (i * 7) % 60
                )
                .into_boxed_str(),
            );
            let group = i / 4;
            let what = match i % 4 {
                0 => "click.email",
                1 => "click.sms",
                2 => "delivered.email",
                _ if group % 5 == 0 => "click.email",
                _ => "opened.email",
            };
            ev(what, 1 + (group * 31) % 5000, ts)
                .camp(1 + i % 3)
                .msg(group)
        })
        .collect();
    let as_of = "2026-10-31T12:00:00Z";
    let reference = Data::with_encoding(&events, PLAIN_US);
    let data = Data::empty();
    write_events_with(
        &data.path().join("events/part-0.parquet"),
        &events,
        PLAIN_US,
        Some(
            WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_statistics_enabled(EnabledStatistics::Chunk)
                .build(),
        ),
    );
    let dir = data.path().to_string_lossy().into_owned();
    // Three partitions, whatever the machine, and the scan of this small
    // file (about 1 MB) in three: three parts of about 40 000 rows.
    let seg3 = |args: &[&str]| {
        let out = seg()
            .env("DATAFUSION_EXECUTION_TARGET_PARTITIONS", "3")
            .env("DATAFUSION_OPTIMIZER_REPARTITION_FILE_MIN_SIZE", "0")
            .args(args)
            .output()
            .expect("run seg");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for script in [
        "click.email at_least 3",
        "click.* at_least 2 days last 20d",
        "opened.email not_happened after delivered",
        "delivered.email then opened.email within 1d same message",
        "click.sms last_seen before 3d ago",
        "not opened.email exists",
    ] {
        let want = reference.ids(script, as_of);
        assert!(!want.is_empty(), "{script}");
        let got: Vec<i64> = seg3(&[
            "run", "-e", script, "--data", &dir, "--as-of", as_of, "--format", "csv",
        ])
        .lines()
        .skip(1)
        .map(|l| l.parse().expect("an id"))
        .collect();
        assert_eq!(got, want, "{script}");
    }
    // Each partition reads a part of the one row group.
    let plan = seg3(&[
        "compile",
        "-e",
        "click.email at_least 3",
        "--emit",
        "physical",
        "--data",
        &dir,
        "--as-of",
        as_of,
    ]);
    let scan = plan
        .lines()
        .find(|l| l.contains("DataSourceExec") && l.contains("part-0.parquet"))
        .unwrap_or_default();
    assert!(scan.contains("file_groups={3 groups"), "{plan}");
    // The same byte range (the row group's) three times, where DataFusion
    // alone gives each partition a third of the bytes and one of them the
    // row group.
    let ranges: Vec<&str> = scan
        .split(|c: char| c == '[' || c == ']' || c == ',' || c.is_whitespace())
        .filter(|part| part.contains("part-0.parquet:"))
        .collect();
    assert_eq!(ranges.len(), 3, "{plan}");
    assert!(ranges.iter().all(|r| *r == ranges[0]), "{plan}");
}

/// `seg compile --emit physical` of `script` over `data`.
fn physical_plan(script: &str, data: &Path, as_of: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("s.seg");
    std::fs::write(&file, script).expect("script");
    let (code, out, err) = seg_out(&[
        "compile",
        &file.to_string_lossy(),
        "--emit",
        "physical",
        "--data",
        &data.to_string_lossy(),
        "--as-of",
        as_of,
    ]);
    assert_eq!(code, 0, "compile {script:?}: {err}");
    out
}

/// The events files a physical plan scans.
fn scanned_files(plan: &str) -> Vec<String> {
    let mut files: Vec<String> = plan
        .split(|c: char| c == '[' || c == ']' || c == ',' || c.is_whitespace())
        .filter_map(|part| {
            let name = part.split(':').next()?;
            let name = name.rsplit('/').next()?;
            (name.starts_with("camp-") && name.ends_with(".parquet")).then(|| name.to_string())
        })
        .collect();
    files.sort();
    files.dedup();
    files
}

/// Row groups are pruned by their statistics once for the whole scan, over
/// files that differ in every way a writer can: dictionary or plain
/// strings, `ts` in ms without a zone or in ns with one, small row groups,
/// bloom filters, no statistics at all. Files whose statistics rule a
/// segment out are not scanned, the predicate leaves the scan unless a file
/// still scanned has bloom filters, and the ids are those of one file
/// without statistics, where nothing can be pruned.
#[test]
fn row_groups_are_pruned_by_their_statistics_across_files() {
    use datafusion::arrow::datatypes::TimeUnit;
    use datafusion::parquet::file::properties::EnabledStatistics;

    let events = varied_events();
    let as_of = "2026-10-31T12:00:00Z";
    let names = [
        (1, "One"),
        (2, "Two"),
        (3, "Three"),
        (4, "Four"),
        (5, "Five"),
    ];
    let no_statistics = || {
        WriterProperties::builder()
            .set_statistics_enabled(EnabledStatistics::None)
            .build()
    };
    // Statistics per row group only: no page index (Arrow's writer adds one
    // by default, DuckDB's and pyarrow's do not).
    let chunk_statistics =
        || WriterProperties::builder().set_statistics_enabled(EnabledStatistics::Chunk);
    let reference = Data::empty().campaigns(&names);
    write_events_with(
        &reference.path().join("events.parquet"),
        &events,
        PLAIN_US,
        Some(no_statistics()),
    );
    let data = Data::empty().campaigns(&names);
    for camp in 1..=5i64 {
        let mut rows: Vec<Ev> = events
            .iter()
            .filter(|e| e.camp == Some(camp))
            .cloned()
            .collect();
        rows.sort_by_key(|e| nanos(e.ts));
        let (enc, props) = match camp {
            1 => (
                Encoding {
                    dictionary: true,
                    unit: TimeUnit::Millisecond,
                    zoned: false,
                },
                Some(chunk_statistics().build()),
            ),
            2 => (PLAIN_US, Some(chunk_statistics().build())),
            3 => (
                Encoding {
                    dictionary: false,
                    unit: TimeUnit::Nanosecond,
                    zoned: true,
                },
                Some(
                    chunk_statistics()
                        .set_max_row_group_row_count(Some(100))
                        .build(),
                ),
            ),
            4 => (
                PLAIN_US,
                Some(
                    WriterProperties::builder()
                        .set_bloom_filter_enabled(true)
                        .build(),
                ),
            ),
            _ => (PLAIN_US, Some(no_statistics())),
        };
        let path = data.path().join(format!("events/camp-{camp}.parquet"));
        write_events_with(&path, &rows, enc, props);
    }
    let scripts = SCRIPTS.iter().map(|s| s.to_string()).chain([
        "click.email at_least 1 in campaigns \"Two\"".to_string(),
        "delivered.sms at_least 1 in campaigns \"Three\" last 3d".to_string(),
        "opened.email not_happened in campaigns \"Three\" after delivered".to_string(),
        "click.push at_least 1 in campaigns \"Four\"".to_string(),
        "read.whatsapp at_least 1 in campaigns \"One\", \"Five\" last 2d".to_string(),
    ]);
    for script in scripts {
        let want = reference.ids(&script, as_of);
        assert_eq!(data.ids(&script, as_of), want, "{script}");
    }
    // Campaign 2 lies in one file; the file without statistics cannot be
    // ruled out. Neither has bloom filters: the predicate is gone.
    let plan = physical_plan(
        "click.email at_least 1 in campaigns \"Two\"",
        data.path(),
        as_of,
    );
    assert_eq!(scanned_files(&plan), ["camp-2.parquet", "camp-5.parquet"]);
    let scans = || {
        plan.lines()
            .filter(|l| l.contains("DataSourceExec") && l.contains("camp-"))
    };
    assert!(scans().all(|l| l.contains("predicate=true")), "{plan}");
    // The file of campaign 4 has bloom filters (and a page index): the
    // predicate stays for DataFusion's reader.
    let plan = physical_plan(
        "click.push at_least 1 in campaigns \"Four\"",
        data.path(),
        as_of,
    );
    assert_eq!(scanned_files(&plan), ["camp-4.parquet", "camp-5.parquet"]);
    let scan = plan
        .lines()
        .find(|l| l.contains("camp-4.parquet"))
        .unwrap_or_default();
    assert!(scan.contains("predicate=event"), "{plan}");
    // The small row groups of campaign 3 (time-sorted): a 3-day window
    // keeps only the last ones; each row group is a range of its own.
    let plan = physical_plan(
        "delivered.sms at_least 1 in campaigns \"Three\" last 3d",
        data.path(),
        as_of,
    );
    let ranges = plan.matches("camp-3.parquet:").count();
    let total = events
        .iter()
        .filter(|e| e.camp == Some(3))
        .count()
        .div_ceil(100);
    assert!(
        ranges > 0 && ranges < total,
        "{ranges} of {total} row groups:\n{plan}"
    );
}

/// A file rewritten after the data directory was opened (as in a long REPL
/// session) is an error naming it when the next query plans its scan: its
/// footer, read at opening, would misread it.
#[test]
fn a_file_changed_after_opening_is_an_error_not_a_misread() {
    let events = varied_events();
    let data = Data::empty();
    let path = data.path().join("events/part-0.parquet");
    write_events(&path, &events[..100], PLAIN_US);
    let engine = seglang::Engine::open(data.path()).expect("open data");
    let script = "click.email exists";
    let program = seglang::compile(script, Some(engine.objects()))
        .expect("compiles")
        .program;
    let as_of = seglang::syntax::literal::parse_datetime("2026-11-01").expect("as_of");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let before = rt
        .block_on(engine.run(&program, 0, as_of))
        .expect("runs before the change");
    assert!(!before.is_empty());
    write_events(&path, &events, PLAIN_US);
    let err = rt
        .block_on(engine.run(&program, 0, as_of))
        .expect_err("the file changed");
    let text = err.to_string();
    assert!(text.contains("part-0.parquet"), "{text}");
    assert!(
        text.contains("changed since the data directory was opened"),
        "{text}"
    );
    // Opened again, it is read as it is now.
    let again = seglang::Engine::open(data.path()).expect("open data");
    let after = rt
        .block_on(again.run(&program, 0, as_of))
        .expect("runs after opening again");
    assert!(
        after.len() > before.len(),
        "{} then {}",
        before.len(),
        after.len()
    );
}

/// Copies `from` (a data directory of files and folders) into `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// Files damaged as disks and interrupted copies damage them: bytes
/// overwritten anywhere (pages, page headers, dictionaries, the footer) and
/// files cut short, in the bundled events files (Snappy, a page index), in
/// Spark's (INT96, Snappy) and in the profiles file. Every run either
/// answers (the damage fell where the query does not read) or exits 2 with
/// a message that names the damaged file; none panics, dies of a signal or
/// hangs.
#[test]
fn damaged_files_end_in_an_error_naming_the_file_never_a_crash() {
    let sources = [
        examples_dir().join("data"),
        std::path::PathBuf::from(fixture("spark_int96")),
    ];
    let scripts = [
        "click.email at_least 1 last 30d or opened.* at_least 2 and not unsubscribe_click.* exists",
        "delivered.email then not opened.email within 1d same message last 30d",
    ];
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5EED_F00D);
    // A position in 0..n (0 when n is 0).
    let below = |rng: &mut rand_chacha::ChaCha8Rng, n: usize| rng.random_range(0..n.max(1));
    let mut errors = 0;
    for seed in 0..16 {
        let source = &sources[seed % sources.len()];
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(source, dir.path());
        let mut files: Vec<_> = std::fs::read_dir(dir.path().join("events"))
            .expect("events")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
            .collect();
        files.sort();
        let profiles = dir.path().join("profiles.parquet");
        if profiles.exists() {
            files.push(profiles);
        }
        let damaged = files[below(&mut rng, files.len())].clone();
        let mut content = std::fs::read(&damaged).expect("read");
        let what = match (seed / 2) % 4 {
            0 => {
                content.truncate(4 + below(&mut rng, content.len() - 4));
                "cut short".to_string()
            }
            k => {
                let n = [1, 8, 64][k - 1];
                for _ in 0..n {
                    let at = 4 + below(&mut rng, content.len() - 12);
                    content[at] = rng.random::<u8>();
                }
                format!("{n} bytes overwritten")
            }
        };
        std::fs::write(&damaged, &content).expect("write");
        let data = dir.path().to_string_lossy().into_owned();
        let name = damaged
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        for script in scripts {
            let args = [
                "run",
                "-e",
                script,
                "--data",
                &data,
                "--as-of",
                "2026-11-01",
            ];
            let Some((code, err)) = seg_within(&args, std::time::Duration::from_secs(60)) else {
                panic!("{name} ({what}): `{script}` still running after a minute");
            };
            assert!(!err.contains("panicked"), "{name} ({what}): {err}");
            match code {
                Some(0) => {}
                Some(2) => {
                    errors += 1;
                    assert!(err.contains(&name), "{name} ({what}): {err}");
                }
                other => panic!("{name} ({what}): exit {other:?}: {err}"),
            }
        }
    }
    // Most damage is found: the test damages what the queries read.
    assert!(errors >= 8, "only {errors} runs reported the damage");
}
