//! `seg gen`: a deterministic synthetic data set in the layout of SPEC §5.
//!
//! History is cut into time slices; each slice's messages come from an RNG
//! seeded by (seed, slice), so the rows do not depend on the thread count.
//! Files are groups of consecutive slices, written by the worker that builds
//! them, so memory is bounded by one slice per worker whatever `--events` is.
//! The model and its rates are documented in `docs/data.md`.

mod dims;
mod funnel;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    ArrayRef, DictionaryArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
pub use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::data::{remote, DataError};
pub use dims::Dims;
use funnel::Row;

/// Options of `seg gen`.
#[derive(Debug, Clone)]
pub struct GenOptions {
    pub out: PathBuf,
    pub profiles: u64,
    pub events: u64,
    pub seed: u64,
    /// History length in days.
    pub days: u32,
    /// The last instant of the history.
    pub end: DateTime<Utc>,
    /// Replace a previous `seg gen` output in `out`.
    pub force: bool,
    /// Worker threads (the output does not depend on it).
    pub threads: usize,
    /// The events files' compression codec.
    pub compression: Compression,
    pub progress: bool,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenSummary {
    pub events: u64,
    pub files: usize,
    pub campaigns: usize,
    pub templates: usize,
}

/// The files `seg gen` writes; only these are replaced by `--force`.
const OUTPUTS: [&str; 6] = [
    "events",
    "profiles.parquet",
    "campaigns.parquet",
    "templates.parquet",
    "tags.parquet",
    "attributes.parquet",
];

/// The schema of the generated events.
pub fn events_schema() -> SchemaRef {
    let dict = || DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    Arc::new(Schema::new(vec![
        Field::new("profile_id", DataType::Int64, false),
        Field::new("channel", dict(), false),
        Field::new("event", dict(), false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("message_id", DataType::Int64, true),
        Field::new("campaign_id", DataType::Int64, true),
        Field::new("template_id", DataType::Int64, true),
        Field::new("link", dict(), true),
    ]))
}

fn prepare(out: &Path, force: bool) -> Result<(), DataError> {
    let io = |e: std::io::Error| DataError::new(format!("{}: {e}", out.display()));
    if out.exists() {
        if !out.is_dir() {
            return Err(DataError::new(format!(
                "{}: exists and is not a directory",
                out.display()
            )));
        }
        let mut entries = std::fs::read_dir(out).map_err(io)?.peekable();
        if entries.peek().is_some() {
            if !force {
                return Err(DataError::new(format!(
                    "{}: is not empty; refusing to overwrite (use --force to replace an earlier `seg gen` output)",
                    out.display()
                )));
            }
            for entry in std::fs::read_dir(out).map_err(io)? {
                let name = entry.map_err(io)?.file_name();
                let name = name.to_string_lossy();
                if !OUTPUTS.contains(&name.as_ref()) {
                    return Err(DataError::new(format!(
                        "{}: holds `{name}`, which `seg gen` did not write; refusing to replace it even with --force",
                        out.display()
                    )));
                }
            }
            for name in OUTPUTS {
                let p = out.join(name);
                if p.is_dir() {
                    std::fs::remove_dir_all(&p).map_err(io)?;
                } else if p.exists() {
                    std::fs::remove_file(&p).map_err(io)?;
                }
            }
        }
    }
    std::fs::create_dir_all(out.join("events")).map_err(io)
}

/// Generates a data set. Deterministic for the same options (threads aside).
pub fn generate(opts: &GenOptions) -> Result<GenSummary, DataError> {
    if opts.profiles == 0 {
        return Err(DataError::new("--profiles must be at least 1"));
    }
    if opts.days == 0 {
        return Err(DataError::new("--days must be at least 1"));
    }
    if remote::url_of(&opts.out).is_some() {
        return generate_to_store(opts);
    }
    prepare(&opts.out, opts.force)?;
    let dims = Dims::new(opts);
    dims.write(&opts.out, opts.profiles)?;

    // Slices of about 250 k events; files of about 1 M events.
    let slices = (opts.events / 250_000)
        .max(u64::from(opts.days).min(opts.events.max(1)))
        .max(1);
    let per_slice = opts.events / slices;
    let extra = opts.events % slices;
    // At least four files, so even small data sets exercise multi-file reads.
    let slices_per_file = (1_000_000 / per_slice.max(1))
        .min(slices.div_ceil(4))
        .max(1);
    let files = slices.div_ceil(slices_per_file) as usize;

    let progress = if opts.progress {
        indicatif::ProgressBar::new(opts.events)
    } else {
        indicatif::ProgressBar::hidden()
    };
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} events ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );

    let next = AtomicUsize::new(0);
    let written = AtomicU64::new(0);
    let failure = std::sync::Mutex::new(None::<DataError>);
    let schema = events_schema();
    std::thread::scope(|scope| {
        for _ in 0..opts.threads.max(1) {
            scope.spawn(|| loop {
                let f = next.fetch_add(1, Ordering::Relaxed);
                if f >= files || failure.lock().map(|g| g.is_some()).unwrap_or(true) {
                    break;
                }
                let first = f as u64 * slices_per_file;
                let last = (first + slices_per_file).min(slices);
                let path = opts.out.join("events").join(format!("part-{f:05}.parquet"));
                let result = write_file(
                    &path,
                    &schema,
                    &dims,
                    opts,
                    first..last,
                    slices,
                    per_slice,
                    extra,
                    |n| {
                        written.fetch_add(n, Ordering::Relaxed);
                        progress.inc(n);
                    },
                );
                if let Err(e) = result {
                    if let Ok(mut g) = failure.lock() {
                        g.get_or_insert(e);
                    }
                }
            });
        }
    });
    progress.finish_and_clear();
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    Ok(GenSummary {
        events: written.load(Ordering::Relaxed),
        files,
        campaigns: dims.campaigns.len(),
        templates: dims.templates.len(),
    })
}

/// [`generate`] to a prefix of an object store: the data set is written to
/// a local staging directory, then uploaded (large files in multipart
/// uploads). The prefix is checked first as a local `--out` is: empty, or
/// holding only what `seg gen` writes and `--force`.
fn generate_to_store(opts: &GenOptions) -> Result<GenSummary, DataError> {
    let prefix = remote::Object::at(&opts.out)?;
    let existing = prefix.list()?;
    let mut replaced = Vec::new();
    for meta in existing.iter() {
        let name = prefix.name_of(&meta.location).unwrap_or_default();
        let name = name.as_str();
        let first = name.split('/').next().unwrap_or(name);
        if !opts.force {
            return Err(DataError::new(format!(
                "{}: is not empty; refusing to overwrite (use --force to replace an earlier `seg gen` output)",
                opts.out.display()
            )));
        }
        if !OUTPUTS.contains(&first) {
            return Err(DataError::new(format!(
                "{}: holds `{name}`, which `seg gen` did not write; refusing to replace it even with --force",
                opts.out.display()
            )));
        }
        replaced.push(meta.location.clone());
    }
    let staging = tempfile::tempdir().map_err(|e| {
        DataError::new(format!(
            "a staging directory for {}: {e}",
            opts.out.display()
        ))
    })?;
    let local = GenOptions {
        out: staging.path().join("data"),
        force: false,
        ..opts.clone()
    };
    let summary = generate(&local)?;
    remote::delete(&prefix, replaced)?;
    remote::upload_dir(&local.out, &prefix)?;
    Ok(summary)
}

#[allow(clippy::too_many_arguments)]
fn write_file(
    path: &Path,
    schema: &SchemaRef,
    dims: &Dims,
    opts: &GenOptions,
    slices: std::ops::Range<u64>,
    total_slices: u64,
    per_slice: u64,
    extra: u64,
    mut progress: impl FnMut(u64),
) -> Result<(), DataError> {
    let io = |e: &dyn std::fmt::Display| DataError::new(format!("{}: {e}", path.display()));
    let file = File::create(path).map_err(|e| io(&e))?;
    let props = WriterProperties::builder()
        .set_compression(opts.compression)
        .set_max_row_group_row_count(Some(1 << 20))
        .build();
    let mut writer =
        ArrowWriter::try_new(file, Arc::clone(schema), Some(props)).map_err(|e| io(&e))?;
    for slice in slices {
        let budget = per_slice + u64::from(slice < extra);
        let mut rows = slice_rows(dims, opts, slice, total_slices, budget);
        rows.sort_unstable_by_key(|r| (r.ts, r.message_id, r.event as u8));
        for chunk in rows.chunks(1 << 16) {
            let batch = to_batch(schema, dims, chunk).map_err(|e| io(&e))?;
            writer.write(&batch).map_err(|e| io(&e))?;
        }
        progress(rows.len() as u64);
    }
    writer.close().map_err(|e| io(&e))?;
    Ok(())
}

/// The events of one time slice: messages sent in the slice, each through its
/// channel's funnel, until the slice's event budget is spent.
fn slice_rows(dims: &Dims, opts: &GenOptions, slice: u64, total: u64, budget: u64) -> Vec<Row> {
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ slice.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let end_us = opts.end.timestamp_micros();
    let span_us = i64::from(opts.days) * 86_400_000_000;
    let start_us = end_us - span_us;
    let slice_len = span_us / total as i64;
    let slice_start = start_us + slice_len * slice as i64;
    let mut rows = Vec::with_capacity(budget as usize + 16);
    let mut seq: i64 = 0;
    while (rows.len() as u64) < budget {
        let sent_at = slice_start + rng.random_range(0..slice_len.max(1));
        let campaign = dims.campaign_at(&mut rng, sent_at);
        let profile = dims.profile(&mut rng);
        let message_id = ((slice as i64) << 32) | seq;
        seq += 1;
        let before = rows.len();
        funnel::message(&mut rng, campaign, profile, message_id, sent_at, &mut rows);
        // Events after the end of history have not happened yet.
        let mut i = before;
        while i < rows.len() {
            if rows[i].ts > end_us {
                rows.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }
    rows.truncate(budget as usize);
    rows
}

fn to_batch(
    schema: &SchemaRef,
    dims: &Dims,
    rows: &[Row],
) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    let channel_values = Arc::new(StringArray::from(
        crate::catalog::channel_names().collect::<Vec<_>>(),
    ));
    let event_values = Arc::new(StringArray::from(
        crate::catalog::event_names().collect::<Vec<_>>(),
    ));
    let channel_keys: Vec<i32> = rows.iter().map(|r| r.channel as i32).collect();
    let event_keys: Vec<i32> = rows.iter().map(|r| r.event as i32).collect();
    let link_keys: Vec<Option<i32>> = rows.iter().map(|r| r.link.map(|l| l as i32)).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.profile_id),
        )),
        Arc::new(DictionaryArray::<Int32Type>::try_new(
            channel_keys.into(),
            channel_values,
        )?),
        Arc::new(DictionaryArray::<Int32Type>::try_new(
            event_keys.into(),
            event_values,
        )?),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.ts))
                .with_timezone("UTC"),
        ),
        Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.message_id))),
        Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.campaign_id))),
        Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.template_id))),
        Arc::new(DictionaryArray::<Int32Type>::try_new(
            link_keys.into(),
            Arc::clone(&dims.link_values) as ArrayRef,
        )?),
    ];
    RecordBatch::try_new(Arc::clone(schema), columns)
}
