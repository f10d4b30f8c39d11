//! A data directory (SPEC §5) -> validated, registered tables.
//!
//! Every file's schema is checked before anything runs, so a wrong column is an
//! error that names the file, the column, and the expected and found types.

mod objects;
mod range_cache;
pub mod remote;

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::error::DataFusionError;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::file::metadata::ParquetMetaData;
use datafusion::parquet::file::reader::{ChunkReader, Length};

pub use objects::load_objects;

/// A problem with the data or with reading it (exit code 2): names the file,
/// and the column when one is at fault. When DataFusion raised it, its
/// error is kept as the [`source`](std::error::Error::source), so callers
/// can tell a memory limit from a decoding failure without reading text.
#[derive(Debug, Clone)]
pub struct DataError {
    pub message: String,
    source: Option<Arc<DataFusionError>>,
}

impl DataError {
    pub fn new(message: impl Into<String>) -> Self {
        DataError {
            message: message.into(),
            source: None,
        }
    }

    /// The DataFusion error this one comes from, at its root (past the
    /// context DataFusion wraps around it).
    pub fn root(&self) -> Option<&DataFusionError> {
        self.source.as_deref().map(DataFusionError::find_root)
    }

    /// The same error (and source) with another message.
    pub fn with_message(self, message: impl Into<String>) -> Self {
        DataError {
            message: message.into(),
            ..self
        }
    }

    /// Whether the query ran out of its memory pool.
    pub fn is_resources_exhausted(&self) -> bool {
        matches!(self.root(), Some(DataFusionError::ResourcesExhausted(_)))
    }

    /// Whether reading or decoding a file failed (a corrupt page, a
    /// truncated file, a column that does not decode as its type).
    pub fn is_read_failure(&self) -> bool {
        matches!(
            self.root(),
            Some(
                DataFusionError::ParquetError(_)
                    | DataFusionError::ArrowError(..)
                    | DataFusionError::IoError(_)
                    | DataFusionError::ObjectStore(_)
                    | DataFusionError::External(_)
            )
        )
    }
}

impl PartialEq for DataError {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
    }
}

impl Eq for DataError {}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<DataFusionError> for DataError {
    fn from(e: DataFusionError) -> Self {
        DataError {
            message: e.to_string(),
            source: Some(Arc::new(e)),
        }
    }
}

/// The type a column must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// int64, or another integer type (int8–int32, uint8–uint64), read as
    /// int64: a uint64 value past int64's range is an error when read.
    Int64,
    /// utf8, large utf8, utf8 view, or dictionary-encoded utf8; or binary
    /// of any of these kinds, read as utf8 (invalid UTF-8 is an error).
    String,
    /// A timestamp of any unit, with or without a zone.
    Timestamp,
}

impl Expect {
    fn describe(self) -> &'static str {
        match self {
            Expect::Int64 => "int64 (or another integer type)",
            Expect::String => "utf8 (plain or dictionary-encoded)",
            Expect::Timestamp => "timestamp (any unit)",
        }
    }

    fn accepts(self, t: &DataType) -> bool {
        match self {
            Expect::Int64 => matches!(
                t,
                DataType::Int64
                    | DataType::Int32
                    | DataType::Int16
                    | DataType::Int8
                    | DataType::UInt64
                    | DataType::UInt32
                    | DataType::UInt16
                    | DataType::UInt8
            ),
            Expect::String => match t {
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
                // Byte arrays without Parquet's UTF8 annotation (older
                // Impala and Hive writers), read as text: see [`as_text`].
                DataType::Binary | DataType::LargeBinary | DataType::BinaryView => true,
                DataType::Dictionary(_, v) => Expect::String.accepts(v),
                _ => false,
            },
            Expect::Timestamp => matches!(t, DataType::Timestamp(_, _)),
        }
    }
}

/// The columns of each table: (name, type, required).
pub(crate) const EVENT_COLUMNS: [(&str, Expect, bool); 8] = [
    ("profile_id", Expect::Int64, true),
    ("channel", Expect::String, true),
    ("event", Expect::String, true),
    ("ts", Expect::Timestamp, true),
    ("message_id", Expect::Int64, false),
    ("campaign_id", Expect::Int64, false),
    ("template_id", Expect::Int64, false),
    ("link", Expect::String, false),
];

/// The events schema of SPEC §5 with plain strings and microsecond UTC
/// timestamps: what plans are built against when no data is at hand.
pub fn canonical_events_schema() -> SchemaRef {
    Arc::new(Schema::new(
        EVENT_COLUMNS
            .iter()
            .map(|(name, expect, _)| {
                let t = match expect {
                    Expect::Int64 => DataType::Int64,
                    Expect::String => DataType::Utf8,
                    Expect::Timestamp => canonical_ts_type(),
                };
                Field::new(*name, t, true)
            })
            .collect::<Vec<_>>(),
    ))
}

/// The `ts` type of [`canonical_events_schema`].
pub fn canonical_ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Reads the Arrow schema of a Parquet file (its footer only).
pub fn parquet_schema(path: &Path) -> Result<SchemaRef, DataError> {
    Ok(Arc::clone(footer(path)?.schema()))
}

/// A Parquet file's footer: its schemas and row groups, nothing of the data.
fn footer(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<Reader>, DataError> {
    footer_of(open(path)?, path)
}

/// A file to read, local or in an object store (see [`remote`]).
#[derive(Clone)]
pub(crate) enum Reader {
    Local(Arc<File>),
    Remote(remote::RemoteFile),
}

impl Length for Reader {
    fn len(&self) -> u64 {
        match self {
            Reader::Local(f) => Length::len(&**f),
            Reader::Remote(f) => f.len(),
        }
    }
}

impl ChunkReader for Reader {
    type T = Box<dyn std::io::Read + Send>;

    fn get_read(&self, start: u64) -> datafusion::parquet::errors::Result<Self::T> {
        Ok(match self {
            Reader::Local(f) => Box::new(ChunkReader::get_read(&**f, start)?),
            Reader::Remote(f) => Box::new(ChunkReader::get_read(f, start)?),
        })
    }

    fn get_bytes(
        &self,
        start: u64,
        length: usize,
    ) -> datafusion::parquet::errors::Result<bytes::Bytes> {
        match self {
            Reader::Local(f) => ChunkReader::get_bytes(&**f, start, length),
            Reader::Remote(f) => ChunkReader::get_bytes(f, start, length),
        }
    }
}

/// The file at `path` (a local path or an object-store URL), with its size
/// and the time it was last written.
fn open_stat(path: &Path) -> Result<(Reader, u64, std::time::SystemTime), DataError> {
    if remote::url_of(path).is_some() {
        let (file, meta) = remote::RemoteFile::open_shared(path)?;
        let modified = std::time::SystemTime::from(meta.last_modified);
        return Ok((Reader::Remote(file), meta.size, modified));
    }
    let fail = |e: std::io::Error| DataError::new(format!("{}: cannot open: {e}", path.display()));
    let file = File::open(path).map_err(fail)?;
    let stat = file.metadata().map_err(fail)?;
    let modified = stat.modified().unwrap_or(std::time::UNIX_EPOCH);
    Ok((Reader::Local(Arc::new(file)), stat.len(), modified))
}

/// The size of the file at `path` (a local path or an object-store URL)
/// and the time it was last written.
pub fn file_stat(path: &Path) -> Result<(u64, std::time::SystemTime), DataError> {
    open_stat(path).map(|(_, size, modified)| (size, modified))
}

fn open(path: &Path) -> Result<Reader, DataError> {
    open_stat(path).map(|(reader, _, _)| reader)
}

/// The footer of `file`, opened from `path`. A file in a store comes with
/// its page index (which sits before the footer, usually in the bytes
/// fetched with it): DataFusion's reader, which finds the footer in its
/// cache, would otherwise fetch the index with a request of its own.
fn footer_of(
    file: Reader,
    path: &Path,
) -> Result<ParquetRecordBatchReaderBuilder<Reader>, DataError> {
    use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
    use datafusion::parquet::file::metadata::PageIndexPolicy;
    let policy = match file {
        Reader::Remote(_) => PageIndexPolicy::Optional,
        Reader::Local(_) => PageIndexPolicy::Skip,
    };
    let options = ArrowReaderOptions::new().with_page_index_policy(policy);
    ParquetRecordBatchReaderBuilder::try_new_with_options(file, options).map_err(|e| {
        DataError::new(format!(
            "{}: not a readable Parquet file: {e}",
            path.display()
        ))
    })
}

/// What a file's footer says of its `ts` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileSpan {
    /// The file has no rows.
    Empty,
    /// Its earliest and latest `ts`, in nanoseconds since the epoch, and no
    /// row has a NULL `ts`.
    Known(i128, i128),
    /// A row group lacks statistics, or has NULLs.
    Unknown,
}

impl FileSpan {
    /// The earliest and latest `ts`, when known.
    pub fn known(self) -> Option<(i128, i128)> {
        match self {
            FileSpan::Known(lo, hi) => Some((lo, hi)),
            _ => None,
        }
    }

    /// The span of the rows of both.
    pub fn and(self, other: FileSpan) -> FileSpan {
        match (self, other) {
            (FileSpan::Empty, s) | (s, FileSpan::Empty) => s,
            (FileSpan::Known(a, b), FileSpan::Known(c, d)) => FileSpan::Known(a.min(c), b.max(d)),
            _ => FileSpan::Unknown,
        }
    }
}

/// Nanoseconds in one `unit`.
pub(crate) fn unit_nanos(unit: &TimeUnit) -> i128 {
    match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    }
}

/// The span of `ts` in one file, from its row groups' statistics.
fn file_ts_span(builder: &ParquetRecordBatchReaderBuilder<Reader>) -> FileSpan {
    row_group_ts_spans(builder.schema(), builder.metadata())
        .into_iter()
        .fold(FileSpan::Empty, FileSpan::and)
}

/// The span of `ts` in each row group of a file (`schema` is the file's
/// own Arrow schema), in the order of its footer, from their statistics:
/// `Empty` for a row group without rows, `Unknown` where statistics are
/// missing or count NULLs.
pub fn row_group_ts_spans(schema: &Schema, metadata: &ParquetMetaData) -> Vec<FileSpan> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::Int64Type;
    use datafusion::parquet::arrow::arrow_reader::statistics::StatisticsConverter;

    let groups = metadata.row_groups();
    let unknown = || {
        groups
            .iter()
            .map(|g| match g.num_rows() {
                0 => FileSpan::Empty,
                _ => FileSpan::Unknown,
            })
            .collect()
    };
    let Ok(DataType::Timestamp(unit, _)) = schema.field_with_name("ts").map(|f| f.data_type())
    else {
        return unknown();
    };
    let parquet_schema = metadata.file_metadata().schema_descr();
    let Ok(stats) = StatisticsConverter::try_new("ts", schema, parquet_schema)
        .map(|c| c.with_missing_null_counts_as_zero(false))
    else {
        return unknown();
    };
    let bounds =
        |a: datafusion::error::Result<_, _>| a.ok().and_then(|a| cast(&a, &DataType::Int64).ok());
    let (Ok(nulls), Some(mins), Some(maxes)) = (
        stats.row_group_null_counts(groups.iter()),
        bounds(stats.row_group_mins(groups.iter())),
        bounds(stats.row_group_maxes(groups.iter())),
    ) else {
        return unknown();
    };
    let scale = unit_nanos(unit);
    let (mins, maxes) = (
        mins.as_primitive::<Int64Type>(),
        maxes.as_primitive::<Int64Type>(),
    );
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let known = g.num_rows() > 0
                && nulls.is_valid(i)
                && nulls.value(i) == 0
                && mins.is_valid(i)
                && maxes.is_valid(i);
            match (g.num_rows(), known) {
                (0, _) => FileSpan::Empty,
                (_, true) => FileSpan::Known(
                    i128::from(mins.value(i)) * scale,
                    i128::from(maxes.value(i)) * scale,
                ),
                _ => FileSpan::Unknown,
            }
        })
        .collect()
}

/// Checks that `schema` (of `path`) has each column with the right type.
/// Returns, per column, the type found (`None` when an optional one is absent).
pub(crate) fn validate(
    path: &Path,
    schema: &Schema,
    columns: &[(&str, Expect, bool)],
) -> Result<Vec<Option<DataType>>, DataError> {
    columns
        .iter()
        .map(
            |(name, expect, required)| match schema.field_with_name(name) {
                Ok(field) if expect.accepts(field.data_type()) => {
                    Ok(Some(field.data_type().clone()))
                }
                Ok(field) => Err(DataError::new(format!(
                    "{}: column `{name}` has type {}, expected {}",
                    path.display(),
                    field.data_type(),
                    expect.describe()
                ))),
                Err(_) if !required => Ok(None),
                Err(_) => Err(DataError::new(format!(
                    "{}: missing required column `{name}` (expected {}); found columns: {}{}",
                    path.display(),
                    expect.describe(),
                    schema
                        .fields()
                        .iter()
                        .map(|f| format!("{} {}", f.name(), f.data_type()))
                        .collect::<Vec<_>>()
                        .join(", "),
                    missing_hint(path, schema, name)
                ))),
            },
        )
        .collect()
}

/// Why a required column may be missing from `path`: a column of the same
/// name in another case, or a Hive folder of that name above the file.
fn missing_hint(path: &Path, schema: &Schema, name: &str) -> String {
    if let Some(f) = schema
        .fields()
        .iter()
        .find(|f| f.name().eq_ignore_ascii_case(name))
    {
        return format!(
            " (`{}` differs only in case: column names are case-sensitive)",
            f.name()
        );
    }
    let key = format!("{name}=");
    let folder = path
        .parent()
        .into_iter()
        .flat_map(Path::components)
        .filter_map(|c| c.as_os_str().to_str())
        .find(|c| c.starts_with(&key));
    match folder {
        Some(folder) if name == "ts" => format!(
            " (it is in the folder name `{folder}/`: Seg reads `ts` only from the files, in the unit they store it)"
        ),
        Some(folder) => format!(
            " (it is in the folder name `{folder}/`: Seg reads a Hive partition value as column `{name}` only when no events file holds `{name}` and every events file is below a folder `{name}=…/`)"
        ),
        None => String::new(),
    }
}

/// The files of a data directory, validated.
#[derive(Debug, Clone)]
pub struct DataDir {
    pub root: PathBuf,
    /// Every events file, sorted.
    pub event_files: Vec<PathBuf>,
    /// The table schema the event files are read as.
    pub events_schema: SchemaRef,
    /// `profiles.parquet`, when present.
    pub profiles: Option<PathBuf>,
    /// Per events file (in the order of `event_files`), what its footer
    /// says of `ts`.
    pub file_ts_spans: Vec<FileSpan>,
    /// Per events file, the Arrow schema to read it as when it differs from
    /// what its footer says: `channel` and `event` as dictionaries whatever
    /// the writer declared (see [`dictionary_hint`]).
    pub file_read_schemas: Vec<Option<SchemaRef>>,
    /// Per events file, its footer: the row groups, where they start, their
    /// statistics.
    pub file_footers: Vec<Footer>,
    /// The Hive partition columns (see [`Partitions`]): the last fields of
    /// `events_schema`, and per events file their values.
    pub partitions: Partitions,
}

/// Columns of the events table that no events file holds, whose values are
/// in the folder names above each file (`events/channel=email/event=click/
/// part-0.parquet`), as DuckDB's `COPY … (PARTITION_BY …)` and Spark's
/// `partitionBy` write tables. A column is one when no file holds it and
/// every file's folders name it; `ts` never is.
#[derive(Debug, Clone, Default)]
pub struct Partitions {
    /// The columns, in the order of the events table's columns.
    pub fields: Vec<Field>,
    /// Per events file, its value of each column as the folder name spells
    /// it (percent-decoded); `None` for Hive's NULL,
    /// `__HIVE_DEFAULT_PARTITION__`.
    pub values: Vec<Vec<Option<String>>>,
}

impl Partitions {
    /// The values of the `n`th events file, typed as the columns are.
    pub fn scalars(&self, n: usize) -> Vec<datafusion::common::ScalarValue> {
        let values = self.values.get(n).map_or(&[][..], Vec::as_slice);
        partition_scalars(self.fields.iter(), values)
    }
}

/// Partition values as the folder names spell them (`None`: NULL), typed
/// as their `fields` are (see [`partition_scalar`]).
pub fn partition_scalars<'a>(
    fields: impl IntoIterator<Item = &'a Field>,
    values: &[Option<String>],
) -> Vec<datafusion::common::ScalarValue> {
    fields
        .into_iter()
        .zip(values)
        .map(|(field, raw)| partition_scalar(field.data_type(), raw.as_deref()))
        .collect()
}

/// Hive's name for a NULL partition value.
const HIVE_NULL: &str = "__HIVE_DEFAULT_PARTITION__";

/// A partition value (`None`: NULL) as a value of type `t`: an integer
/// type parses it (a value that does not parse is NULL: [`events_schema`]
/// checks them all first), a dictionary wraps it.
pub fn partition_scalar(t: &DataType, raw: Option<&str>) -> datafusion::common::ScalarValue {
    use datafusion::common::ScalarValue;
    match t {
        DataType::Dictionary(key, value) => {
            ScalarValue::Dictionary(key.clone(), Box::new(partition_scalar(value, raw)))
        }
        DataType::Int64 => ScalarValue::Int64(raw.and_then(|r| r.parse().ok())),
        _ => ScalarValue::Utf8(raw.map(str::to_string)),
    }
}

/// The `key=value` folder names above `file` (below the `events` folder),
/// percent-decoded as DuckDB and Spark encode them, in order. In a URL, a
/// folder's name is first decoded from the URL's encoding to the object's
/// key (see [`remote::Object::url_of_location`]).
fn hive_folders(file: &Path) -> Vec<(String, Option<String>)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let in_url = remote::url_of(file).is_some();
    let folders: Vec<String> = file
        .parent()
        .into_iter()
        .flat_map(Path::components)
        .filter_map(|c| c.as_os_str().to_str())
        .map(|c| if in_url { decode(c) } else { c.to_string() })
        .collect();
    // None for `events.parquet`, which sits in the data directory.
    let Some(events) = folders.iter().rposition(|c| c == "events") else {
        return Vec::new();
    };
    folders[events + 1..]
        .iter()
        .filter_map(|c| {
            let (key, value) = c.split_once('=')?;
            let value = (value != HIVE_NULL).then(|| decode(value));
            Some((decode(key), value))
        })
        .collect()
}

impl DataDir {
    /// Finds and validates the tables of `root`.
    pub fn open(root: &Path) -> Result<DataDir, DataError> {
        let (event_files, profiles) = match remote::url_of(root) {
            Some(_) => remote_tables(root)?,
            None => local_tables(root)?,
        };
        let EventsSchema {
            schema: events_schema,
            spans: file_ts_spans,
            read_schemas: file_read_schemas,
            footers: file_footers,
            partitions,
        } = events_schema(&event_files)?;
        if let Some(profiles) = &profiles {
            let schema = parquet_schema(profiles)?;
            validate(profiles, &schema, &[("profile_id", Expect::Int64, true)])?;
        }
        Ok(DataDir {
            root: root.to_path_buf(),
            event_files,
            events_schema,
            profiles,
            file_ts_spans,
            file_read_schemas,
            file_footers,
            partitions,
        })
    }

    /// `Some((lo, hi))` when the profile ids are exactly the integers
    /// `lo..=hi` (each once, in any order, no NULLs): the universe is a range, and
    /// no join is needed. Reads the profiles file when its footer allows it,
    /// so it is asked only when a query runs.
    pub fn profiles_range(&self) -> Result<Option<(i64, i64)>, DataError> {
        match &self.profiles {
            Some(p) => dense_range(p),
            None => Ok(None),
        }
    }

    /// The earliest and the latest `ts` of any event, in nanoseconds since
    /// the epoch, when the files' footers tell them (statistics in every row
    /// group) and no event has a NULL `ts`. A time bound that every event
    /// meets is then left out of the plan, and `ts` is not read for it.
    pub fn ts_span(&self) -> Option<(i128, i128)> {
        self.file_ts_spans
            .iter()
            .fold(FileSpan::Empty, |span, &file| span.and(file))
            .known()
    }

    /// After a query failed to read its data: decodes the files it reads in
    /// turn, each column of each row group (the events files with the
    /// schema the query reads them as), and says where the first failure
    /// is — `file: column `c`, row group n: what failed` — or `None` when
    /// every file decodes. Only ever run on that error path: it reads
    /// everything.
    pub fn locate_read_failure(&self) -> Option<String> {
        let profiles = self.profiles.iter().map(|p| (p, None));
        self.event_files
            .iter()
            .zip(self.file_read_schemas.iter().map(Option::as_ref))
            .chain(profiles)
            .find_map(|(file, schema)| decode_failure(file, schema))
    }

    /// The type of the `ts` column as the events table reads it.
    pub fn ts_type(&self) -> DataType {
        self.events_schema
            .field_with_name("ts")
            .map(|f| f.data_type().clone())
            .unwrap_or(DataType::Timestamp(TimeUnit::Microsecond, None))
    }
}

/// The events files and the profiles file of the local directory `root`.
fn local_tables(root: &Path) -> Result<(Vec<PathBuf>, Option<PathBuf>), DataError> {
    if !root.is_dir() {
        return Err(DataError::new(format!(
            "{}: not a directory (expected a data directory with events/ or events.parquet)",
            root.display()
        )));
    }
    let dir = root.join("events");
    let single = root.join("events.parquet");
    let event_files = match (dir.is_dir(), single.is_file()) {
        (true, true) => return Err(both_events(root)),
        (true, false) => {
            let mut files = Vec::new();
            collect_parquet(&dir, &mut files)?;
            files.sort();
            files
        }
        (false, true) => vec![single],
        (false, false) => return Err(no_events(root)),
    };
    let profiles = root.join("profiles.parquet");
    Ok((event_files, profiles.is_file().then_some(profiles)))
}

/// [`local_tables`] of a prefix in an object store: one listing of it.
fn remote_tables(root: &Path) -> Result<(Vec<PathBuf>, Option<PathBuf>), DataError> {
    let prefix = remote::Object::at(root)?;
    let mut events = Vec::new();
    let (mut single, mut profiles) = (None, None);
    for meta in prefix.list()?.iter() {
        let Some(name) = prefix.name_of(&meta.location) else {
            continue;
        };
        let url = prefix.url_of_location(&meta.location);
        match name.as_str() {
            "events.parquet" => single = Some(url),
            "profiles.parquet" => profiles = Some(url),
            _ => {
                let Some(inside) = name.strip_prefix("events/") else {
                    continue;
                };
                let hidden = inside
                    .split('/')
                    .any(|part| part.starts_with('_') || part.starts_with('.'));
                if !hidden && inside.ends_with(".parquet") {
                    events.push(url);
                }
            }
        }
    }
    let event_files = match (events.is_empty(), single) {
        (false, Some(_)) => return Err(both_events(root)),
        (false, None) => events,
        (true, Some(single)) => vec![single],
        (true, None) => return Err(no_events(root)),
    };
    Ok((event_files, profiles))
}

fn both_events(root: &Path) -> DataError {
    DataError::new(format!(
        "{}: has both events/ and events.parquet; keep only one",
        root.display()
    ))
}

fn no_events(root: &Path) -> DataError {
    DataError::new(format!(
        "{}: no events table (expected events/ with *.parquet files, or events.parquet)",
        root.display()
    ))
}

/// The message a panic carried.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

/// Where `path` fails to decode (read as `schema` when given), if it does.
fn decode_failure(path: &Path, schema: Option<&SchemaRef>) -> Option<String> {
    use datafusion::parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
    use datafusion::parquet::arrow::ProjectionMask;

    let shown = path.display();
    let file = match open(path) {
        Ok(f) => f,
        Err(e) => return Some(e.message),
    };
    let mut options = ArrowReaderOptions::new();
    if let Some(schema) = schema {
        options = options.with_schema(Arc::clone(schema));
    }
    let meta = match ArrowReaderMetadata::load(&file, options) {
        Ok(m) => m,
        Err(e) => return Some(format!("{shown}: not a readable Parquet file: {e}")),
    };
    let columns = meta.parquet_schema().columns().len();
    for group in 0..meta.metadata().num_row_groups() {
        for column in 0..columns {
            let name = meta.parquet_schema().column(column).path().string();
            let place = format!("{shown}: column `{name}`, row group {group}");
            let reader =
                ParquetRecordBatchReaderBuilder::new_with_metadata(file.clone(), meta.clone())
                    .with_row_groups(vec![group])
                    .with_projection(ProjectionMask::leaves(meta.parquet_schema(), [column]))
                    .with_batch_size(65_536)
                    .build()
                    .map_err(|e| e.to_string());
            let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                reader.and_then(|batches| {
                    batches.into_iter().try_for_each(|b| {
                        let b = b.map_err(|e| e.to_string())?;
                        b.columns().iter().try_for_each(|c| as_read(&name, c))
                    })
                })
            }));
            match decoded {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Some(format!("{place}: {e}")),
                Err(panic) => {
                    let text = panic_text(panic.as_ref());
                    return Some(format!("{place}: the data does not decode ({text})"));
                }
            }
        }
    }
    None
}

/// Converts a decoded column of an events or profiles file as the query
/// reads it: integers widened to int64, binary checked to be UTF-8.
fn as_read(column: &str, array: &ArrayRef) -> Result<(), String> {
    let expect = EVENT_COLUMNS
        .iter()
        .find(|(name, _, _)| *name == column)
        .map(|(_, expect, _)| *expect);
    match expect {
        Some(Expect::Int64) => widen(array).map(drop),
        Some(Expect::String) => cast_strictly(array, &as_text(array.data_type()))
            .map(drop)
            .map_err(|e| format!("a value is not UTF-8 text (stored as binary: {e})")),
        _ => Ok(()),
    }
}

/// An integer column as int64 (see [`Expect::Int64`]); an error that names
/// the value when one does not fit.
pub(crate) fn widen(array: &ArrayRef) -> Result<ArrayRef, String> {
    cast_strictly(array, &DataType::Int64)
        .map_err(|e| format!("a {} value does not fit in int64 ({e})", array.data_type()))
}

/// `array` as type `to`; an error where a value does not convert (Arrow's
/// `cast` would make it NULL).
pub(crate) fn cast_strictly(
    array: &ArrayRef,
    to: &DataType,
) -> Result<ArrayRef, datafusion::arrow::error::ArrowError> {
    use datafusion::arrow::compute::{cast_with_options, CastOptions};
    let options = CastOptions {
        safe: false,
        ..Default::default()
    };
    cast_with_options(array, to, &options)
}

/// `Some((lo, hi))` when the `profile_id`s of a profiles file are exactly
/// `lo, lo + 1, …, hi`, each once, in any order. The footer's statistics
/// decide whether that is possible (rows = hi - lo + 1, no NULLs); only
/// then is the column read to confirm it, once per version of the file
/// (see [`range_cache`]).
pub(crate) fn dense_range(path: &Path) -> Result<Option<(i64, i64)>, DataError> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Int64Type;
    use datafusion::parquet::arrow::arrow_reader::statistics::StatisticsConverter;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let err = |e: &dyn std::fmt::Display| DataError::new(format!("{}: {e}", path.display()));
    let (file, size, modified) = open_stat(path)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| err(&e))?;
    let meta = builder.metadata().clone();
    let schema = builder.parquet_schema();
    let Some(index) = schema
        .columns()
        .iter()
        .position(|c| c.path().string() == "profile_id")
    else {
        return Ok(None);
    };
    // Any integer type (see [`Expect::Int64`]), by its Arrow statistics.
    let groups = meta.row_groups();
    let Ok(stats) = StatisticsConverter::try_new("profile_id", builder.schema(), schema)
        .map(|c| c.with_missing_null_counts_as_zero(false))
    else {
        return Ok(None);
    };
    let bounds = |a: datafusion::error::Result<_, _>| a.ok().and_then(|a| widen(&a).ok());
    let (Ok(nulls), Some(mins), Some(maxes)) = (
        stats.row_group_null_counts(groups.iter()),
        bounds(stats.row_group_mins(groups.iter())),
        bounds(stats.row_group_maxes(groups.iter())),
    ) else {
        return Ok(None);
    };
    let (mins, maxes) = (
        mins.as_primitive::<Int64Type>(),
        maxes.as_primitive::<Int64Type>(),
    );
    let (mut lo, mut hi, mut rows) = (i64::MAX, i64::MIN, 0i64);
    for (i, rg) in groups.iter().enumerate() {
        let known =
            nulls.is_valid(i) && nulls.value(i) == 0 && mins.is_valid(i) && maxes.is_valid(i);
        if !known {
            return Ok(None);
        }
        lo = lo.min(mins.value(i));
        hi = hi.max(maxes.value(i));
        rows += rg.num_rows();
    }
    if rows == 0 || hi.checked_sub(lo).and_then(|d| d.checked_add(1)) != Some(rows) {
        return Ok(None);
    }
    let summary = format!("{rows} {lo} {hi} {}", groups.len());
    let key = range_cache::Key::new(path, size, modified, &summary);
    if let Some(known) = range_cache::get(&key) {
        return Ok(known);
    }
    let range = ids_are_range(builder, index, lo, rows).map_err(|e| err(&e))?;
    range_cache::put(&key, range.then_some((lo, hi)));
    Ok(range.then_some((lo, hi)))
}

/// Whether the `rows` ids of column `index` of the file `builder` reads
/// (all of them at least `lo`, as its statistics say) are `lo, lo + 1, …`,
/// each once, in any order.
fn ids_are_range(
    builder: ParquetRecordBatchReaderBuilder<Reader>,
    index: usize,
    lo: i64,
    rows: i64,
) -> Result<bool, datafusion::parquet::errors::ParquetError> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Int64Type;
    use datafusion::parquet::arrow::ProjectionMask;

    let mask = ProjectionMask::leaves(builder.parquet_schema(), [index]);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(65_536)
        .build()?;
    // As many rows as the range has ids, so every id is in it once when
    // no id repeats; in any order (ClickHouse writes a table's parts in
    // the order its threads finish them).
    let mut seen = vec![0u64; (rows as usize).div_ceil(64)];
    for batch in reader {
        let batch = batch?;
        let Ok(ids) = widen(batch.column(0)) else {
            return Ok(false);
        };
        let ids = ids.as_primitive::<Int64Type>();
        if ids.null_count() > 0 {
            return Ok(false);
        }
        for &id in ids.values() {
            // In the range, since the statistics bound every id.
            let Some(off) = id.checked_sub(lo).and_then(|o| usize::try_from(o).ok()) else {
                return Ok(false);
            };
            let Some(word) = seen.get_mut(off / 64) else {
                return Ok(false);
            };
            let bit = 1 << (off % 64);
            if *word & bit != 0 {
                return Ok(false);
            }
            *word |= bit;
        }
    }
    Ok(true)
}

/// Every `*.parquet` below `dir`, skipping names that start with `_` or `.`.
fn collect_parquet(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), DataError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| DataError::new(format!("{}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(|e| DataError::new(format!("{}: {e}", dir.display())))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('_') || name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        // The entry's type as the directory listing gives it (no call per
        // entry), following a symbolic link.
        let is_dir = match entry.file_type() {
            Ok(kind) if !kind.is_symlink() => kind.is_dir(),
            _ => path.is_dir(),
        };
        if is_dir {
            collect_parquet(&path, out)?;
        } else if name.ends_with(".parquet") {
            out.push(path);
        }
    }
    Ok(())
}

/// The columns read as dictionaries whatever the file's writer declared: a
/// handful of distinct values each, compared with literals in every plan.
pub(crate) const DICTIONARY_COLUMNS: [&str; 2] = ["channel", "event"];

/// The type [`DICTIONARY_COLUMNS`] are read as.
pub fn dictionary_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// The schema to read a file as, when it differs from its own: the string
/// columns of [`DICTIONARY_COLUMNS`] as `Dictionary(Int32, Utf8)`. Parquet
/// writers dictionary-encode such columns' pages whatever type they
/// declare; read as a dictionary, a page's keys are kept as they are,
/// where a plain string type would copy every row's text out of the
/// dictionary before a single row is filtered.
pub fn dictionary_hint(schema: &Schema) -> Option<SchemaRef> {
    let mut changed = false;
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let text = DICTIONARY_COLUMNS.contains(&f.name().as_str())
                && Expect::String.accepts(f.data_type());
            let wanted = match text {
                false => f.data_type().clone(),
                true if as_text(f.data_type()) == *f.data_type() => dictionary_type(),
                // Byte arrays without the UTF8 annotation: parquet-rs cannot
                // read them as a dictionary of utf8, so they are read as a
                // dictionary of binary, and only its values are cast to
                // utf8 (other binary columns are cast whole).
                true => DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Binary)),
            };
            if wanted != *f.data_type() {
                changed = true;
                f.as_ref().clone().with_data_type(wanted)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    changed.then(|| Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())))
}

/// The text type a binary column is read as (the same kind of offsets or
/// views); other types as they are.
pub(crate) fn as_text(t: &DataType) -> DataType {
    match t {
        DataType::Binary => DataType::Utf8,
        DataType::LargeBinary => DataType::LargeUtf8,
        DataType::BinaryView => DataType::Utf8View,
        DataType::Dictionary(k, v) => DataType::Dictionary(k.clone(), Box::new(as_text(v))),
        t => t.clone(),
    }
}

/// One Parquet file's footer as its reader declared it.
#[derive(Debug, Clone)]
pub struct Footer {
    /// The Arrow schema the footer declares.
    pub schema: SchemaRef,
    /// The row groups, their column chunks and statistics.
    pub metadata: Arc<ParquetMetaData>,
    /// The file's size in bytes and when it was last written, when the
    /// footer was read.
    pub size: u64,
    pub modified: std::time::SystemTime,
}

/// What one events file's footer says: its schema and row groups, the span
/// of `ts`.
type FooterFacts = (Footer, FileSpan);

/// The footers of `files`, read on as many threads as there are cores (a
/// table of 2 000 small files has as many footers to read), in the order of
/// `files`.
fn footers(files: &[PathBuf]) -> Vec<Result<FooterFacts, DataError>> {
    let read = |path: &PathBuf| {
        let (file, size, modified) = open_stat(path)?;
        footer_of(file, path).map(|f| {
            let footer = Footer {
                schema: Arc::clone(f.schema()),
                metadata: Arc::clone(f.metadata()),
                size,
                modified,
            };
            (footer, file_ts_span(&f))
        })
    };
    // A store's requests wait on the network, not on a core.
    let threads = match files.first().and_then(|f| remote::url_of(f)) {
        Some(_) => 16,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    // Files written alike share one Arrow schema: a table of 20 000 small
    // files would otherwise hold 20 000 copies of it (tens of megabytes).
    let read_all = |part: &[PathBuf]| {
        let mut last: Option<SchemaRef> = None;
        part.iter()
            .map(|path| {
                let (mut footer, span) = read(path)?;
                match &last {
                    Some(shared) if **shared == *footer.schema => {
                        footer.schema = Arc::clone(shared);
                    }
                    _ => last = Some(Arc::clone(&footer.schema)),
                }
                Ok((footer, span))
            })
            .collect::<Vec<_>>()
    };
    if files.len() < 8 || threads < 2 {
        return read_all(files);
    }
    let chunk = files.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| scope.spawn(move || read_all(part)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(facts) => facts,
                Err(_) => vec![Err(DataError::new("reading the footers failed"))],
            })
            .collect()
    })
}

/// The events table's schema, and per file what its footer says.
struct EventsSchema {
    schema: SchemaRef,
    /// Of `ts`.
    spans: Vec<FileSpan>,
    /// The schema to read the file as (see [`dictionary_hint`]).
    read_schemas: Vec<Option<SchemaRef>>,
    /// Its footer.
    footers: Vec<Footer>,
    /// The Hive partition columns, and their values per file.
    partitions: Partitions,
}

/// Validates every events file and computes the one schema they are read as:
/// `channel` and `event` are dictionaries, another column keeps its type
/// when every file agrees, strings fall back to utf8, and `ts` takes the
/// finest unit present so no file loses precision. The Hive partition
/// columns (see [`Partitions`]) come last.
fn events_schema(files: &[PathBuf]) -> Result<EventsSchema, DataError> {
    let facts = footers(files).into_iter().collect::<Result<Vec<_>, _>>()?;
    let partitions = partitions(files, &facts)?;
    let in_files: Vec<(&str, Expect, bool)> = EVENT_COLUMNS
        .iter()
        .filter(|(name, _, _)| !partitions.fields.iter().any(|f| f.name() == name))
        .copied()
        .collect();
    let mut found: Vec<Vec<DataType>> = vec![Vec::new(); in_files.len()];
    let mut spans = Vec::with_capacity(files.len());
    let mut hints = Vec::with_capacity(files.len());
    let mut file_footers = Vec::with_capacity(files.len());
    // The read schema of the last file schema, shared by the files that
    // share that schema (`footers` shares them).
    let mut last_hint: Option<(SchemaRef, Option<SchemaRef>)> = None;
    for (file, (footer, span)) in files.iter().zip(facts) {
        let hint = match &last_hint {
            Some((schema, hint)) if Arc::ptr_eq(schema, &footer.schema) => hint.clone(),
            _ => {
                let hint = dictionary_hint(&footer.schema);
                last_hint = Some((Arc::clone(&footer.schema), hint.clone()));
                hint
            }
        };
        let schema = Arc::clone(&footer.schema);
        spans.push(span);
        file_footers.push(footer);
        hints.push(hint);
        for (i, t) in validate(file, &schema, &in_files)?.into_iter().enumerate() {
            if let Some(t) = t.as_ref().map(as_text) {
                if !found[i].contains(&t) {
                    found[i].push(t);
                }
            }
        }
    }
    let fields: Vec<Field> = in_files
        .iter()
        .zip(found)
        .map(|((name, expect, _), types)| {
            Field::new(*name, table_type(name, *expect, &types), true)
        })
        .chain(partitions.fields.iter().cloned())
        .collect();
    Ok(EventsSchema {
        schema: Arc::new(Schema::new(fields)),
        spans,
        read_schemas: hints,
        footers: file_footers,
        partitions,
    })
}

/// The type the events table reads a column of `name` as, given the types
/// the files hold it as (as text, see [`as_text`]): a dictionary for
/// [`DICTIONARY_COLUMNS`], int64 for any integer (narrower ones are
/// widened as they are read), a string type the files agree on or utf8,
/// and for `ts` the finest unit present, so no file loses precision (UTC
/// when a file has a zone).
fn table_type(name: &str, expect: Expect, types: &[DataType]) -> DataType {
    match (expect, types) {
        _ if DICTIONARY_COLUMNS.contains(&name) => dictionary_type(),
        (Expect::Int64, _) => DataType::Int64,
        (Expect::String, [one]) => one.clone(),
        (Expect::String, _) => DataType::Utf8,
        (Expect::Timestamp, types) => {
            let finest = types
                .iter()
                .filter_map(|t| match t {
                    DataType::Timestamp(u, _) => Some(unit_rank(u)),
                    _ => None,
                })
                .max()
                .unwrap_or(2);
            let zoned = types
                .iter()
                .any(|t| matches!(t, DataType::Timestamp(_, Some(_))));
            DataType::Timestamp(rank_unit(finest), zoned.then(|| "UTC".into()))
        }
    }
}

/// The Hive partition columns of the events `files` (see [`Partitions`]),
/// from their folder names and their footers' schemas. An integer column's
/// values must parse as integers.
fn partitions(files: &[PathBuf], facts: &[FooterFacts]) -> Result<Partitions, DataError> {
    let folders: Vec<Vec<(String, Option<String>)>> =
        files.iter().map(|f| hive_folders(f)).collect();
    let mut partitions = Partitions {
        fields: Vec::new(),
        values: vec![Vec::new(); files.len()],
    };
    if folders.iter().all(Vec::is_empty) {
        return Ok(partitions);
    }
    for (name, expect, _) in EVENT_COLUMNS {
        let held = || {
            facts
                .iter()
                .any(|(footer, _)| footer.schema.field_with_name(name).is_ok())
        };
        if expect == Expect::Timestamp || held() {
            continue;
        }
        let values: Option<Vec<Option<String>>> = folders
            .iter()
            .map(|f| {
                f.iter()
                    .find(|(key, _)| key == name)
                    .map(|(_, v)| v.clone())
            })
            .collect();
        let Some(values) = values else {
            continue;
        };
        if expect == Expect::Int64 {
            let bad = files.iter().zip(&values).find_map(|(file, v)| {
                v.as_ref()
                    .filter(|v| v.parse::<i64>().is_err())
                    .map(|v| (file, v))
            });
            if let Some((file, v)) = bad {
                return Err(DataError::new(format!(
                    "{}: the folder name `{name}={v}` gives column `{name}` the value `{v}`, which is not an integer (expected {})",
                    file.display(),
                    expect.describe()
                )));
            }
        }
        partitions
            .fields
            .push(Field::new(name, table_type(name, expect, &[]), true));
        for (file, v) in partitions.values.iter_mut().zip(values) {
            file.push(v);
        }
    }
    Ok(partitions)
}

fn unit_rank(u: &TimeUnit) -> u8 {
    match u {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 1,
        TimeUnit::Microsecond => 2,
        TimeUnit::Nanosecond => 3,
    }
}

fn rank_unit(r: u8) -> TimeUnit {
    match r {
        0 => TimeUnit::Second,
        1 => TimeUnit::Millisecond,
        2 => TimeUnit::Microsecond,
        _ => TimeUnit::Nanosecond,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::parquet::arrow::ArrowWriter;

    fn write(path: &Path, name: &str) {
        let schema = Arc::new(Schema::new(vec![Field::new(name, DataType::Int64, true)]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from(vec![1, 2, 3]))],
        )
        .unwrap();
        let mut w = ArrowWriter::try_new(File::create(path).unwrap(), schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    #[test]
    fn files_written_alike_share_one_schema() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for (i, name) in ["a", "a", "b", "b", "b", "a", "a", "a", "a", "a"]
            .into_iter()
            .enumerate()
        {
            let path = dir.path().join(format!("part-{i}.parquet"));
            write(&path, name);
            files.push(path);
        }
        let schemas: Vec<SchemaRef> = footers(&files)
            .into_iter()
            .map(|f| f.map(|(footer, _)| footer.schema).unwrap())
            .collect();
        assert!(Arc::ptr_eq(&schemas[0], &schemas[1]));
        assert!(Arc::ptr_eq(&schemas[2], &schemas[4]));
        assert!(!Arc::ptr_eq(&schemas[1], &schemas[2]));
        assert_eq!(schemas[5].field(0).name(), "a");
        assert_eq!(schemas[4].field(0).name(), "b");
        // Each file keeps a schema equal to its own, shared or not.
        for (schema, name) in schemas.iter().zip(["a", "a", "b", "b", "b"]) {
            assert_eq!(schema.field(0).name(), name);
        }
    }

    #[test]
    fn hive_folders_are_read_below_the_events_folder_and_decoded() {
        let folders = |p: &str| hive_folders(Path::new(p));
        let pair = |k: &str, v: Option<&str>| (k.to_string(), v.map(str::to_string));
        assert_eq!(
            folders("/d/x=1/events/channel=email/batch/event=a%3Db/part-0.parquet"),
            [pair("channel", Some("email")), pair("event", Some("a=b"))]
        );
        assert_eq!(
            folders("s3://bucket/p/events/link=https%253A%252F%252Fa.b%252Fc%2520d/campaign_id=__HIVE_DEFAULT_PARTITION__/f.parquet"),
            [pair("link", Some("https://a.b/c d")), pair("campaign_id", None)]
        );
        assert_eq!(folders("/d/events/part-0.parquet"), []);
        assert_eq!(folders("/d/channel=email/events.parquet"), []);
    }

    #[test]
    fn partition_values_take_their_columns_types() {
        use datafusion::common::ScalarValue;
        assert_eq!(
            partition_scalar(&dictionary_type(), Some("email")),
            ScalarValue::Dictionary(
                Box::new(DataType::Int32),
                Box::new(ScalarValue::Utf8(Some("email".into())))
            )
        );
        assert_eq!(
            partition_scalar(&DataType::Int64, Some("-17")),
            ScalarValue::Int64(Some(-17))
        );
        assert_eq!(
            partition_scalar(&DataType::Int64, None),
            ScalarValue::Int64(None)
        );
        assert_eq!(
            partition_scalar(&DataType::Utf8, Some("x")),
            ScalarValue::Utf8(Some("x".into()))
        );
    }

    /// A profiles file of `ids`, in row groups of 3.
    fn profiles(path: &Path, ids: ArrayRef) {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "profile_id",
            ids.data_type().clone(),
            true,
        )]));
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![ids]).unwrap();
        let props = datafusion::parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(3))
            .build();
        let mut w = ArrowWriter::try_new(File::create(path).unwrap(), schema, Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    #[test]
    fn a_dense_range_of_profiles_of_any_integer_type() {
        use datafusion::arrow::array::{Int32Array, UInt64Array};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profiles.parquet");
        let cases: [(ArrayRef, Option<(i64, i64)>); 8] = [
            (
                Arc::new(Int64Array::from_iter_values(5..=11)),
                Some((5, 11)),
            ),
            (
                Arc::new(Int32Array::from_iter_values(5..=11)),
                Some((5, 11)),
            ),
            (
                Arc::new(UInt64Array::from_iter_values(5..=11)),
                Some((5, 11)),
            ),
            // In any order; not with a gap, a repeat, a NULL, a value past
            // int64.
            (Arc::new(UInt64Array::from(vec![8, 5, 7, 6])), Some((5, 8))),
            (Arc::new(UInt64Array::from(vec![5, 6, 8, 9])), None),
            (Arc::new(UInt64Array::from(vec![5, 7, 7, 8])), None),
            (
                Arc::new(Int32Array::from(vec![Some(5), None, Some(6)])),
                None,
            ),
            (
                Arc::new(UInt64Array::from(vec![u64::MAX - 1, u64::MAX])),
                None,
            ),
        ];
        for (ids, want) in cases {
            profiles(&path, Arc::clone(&ids));
            assert_eq!(dense_range(&path).unwrap(), want, "{ids:?}");
        }
    }
}
