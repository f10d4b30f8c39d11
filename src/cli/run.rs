//! `seg run` and `seg compile`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Encoding;
use datafusion::parquet::file::properties::WriterProperties;
use seglang::sql::{segment_sql, Dialect, SqlOptions};
use seglang::{Engine, Program};

use super::check::{deny, print_human, read_script, ScriptFile};
use super::{fail, EXIT_OK, EXIT_SCRIPT};

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
    Parquet,
    Count,
}

impl OutputFormat {
    /// The format a file's name asks for (`ids.csv`, `ids.parquet`), as
    /// DuckDB's `COPY … TO` reads it; standard output and other names get
    /// the table.
    pub fn for_output(output: Option<&Path>) -> Self {
        let extension = output
            .and_then(|p| p.extension())
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match extension.as_deref() {
            Some("csv") => Self::Csv,
            Some("json") => Self::Json,
            Some("parquet" | "pq") => Self::Parquet,
            _ => Self::Table,
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Emit {
    Ast,
    Plan,
    /// The physical plan, as DataFusion and Seg's rules will run it.
    Physical,
    Sql,
}

/// `--dialect` of `compile --emit sql`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SqlDialect {
    Datafusion,
    Duckdb,
    Postgres,
    Sqlite,
    Mysql,
}

impl From<SqlDialect> for Dialect {
    fn from(d: SqlDialect) -> Dialect {
        match d {
            SqlDialect::Datafusion => Dialect::DataFusion,
            SqlDialect::Duckdb => Dialect::DuckDb,
            SqlDialect::Postgres => Dialect::Postgres,
            SqlDialect::Sqlite => Dialect::Sqlite,
            SqlDialect::Mysql => Dialect::MySql,
        }
    }
}

/// Where the script comes from: a file or `-e EXPR`.
pub fn load(file: Option<&Path>, expr: Option<&str>) -> Result<ScriptFile, String> {
    match (file, expr) {
        (_, Some(e)) => Ok(ScriptFile {
            name: "<expr>".to_string(),
            text: e.to_string(),
            not_utf8: None,
        }),
        (Some(f), None) => read_script(f),
        (None, None) => Err("give a script FILE or an expression with -e".to_string()),
    }
}

/// Parses `--as-of` (a date or RFC 3339), defaulting to now.
pub fn as_of(text: &str) -> Result<DateTime<Utc>, String> {
    seglang::syntax::literal::parse_datetime(text).ok_or_else(|| {
        format!("--as-of: invalid date-time `{text}` (write 2026-01-31 or 2026-01-31T10:00:00Z)")
    })
}

fn as_of_or_now(text: Option<&str>) -> Result<DateTime<Utc>, String> {
    text.map_or_else(|| Ok(Utc::now()), as_of)
}

/// Compiles a script against the data, printing its diagnostics.
/// `Err(code)` when it cannot go on.
fn compile(
    file: &ScriptFile,
    engine: Option<&Engine>,
    deny_warnings: bool,
    color: bool,
) -> Result<Program, u8> {
    let result = match &file.not_utf8 {
        Some(d) => Err(vec![d.clone()]),
        None => seglang::compile(&file.text, engine.map(Engine::objects)),
    };
    let (program, mut diagnostics) = match result {
        Ok(c) => (Some(c.program), c.warnings),
        Err(d) => (None, d),
    };
    deny(&mut diagnostics, deny_warnings);
    print_human(file, &diagnostics, color);
    match program {
        Some(p) if !diagnostics.iter().any(|d| d.is_error()) => Ok(p),
        _ => Err(EXIT_SCRIPT),
    }
}

/// Which segments to run: the bare expression, the only definition, the named
/// one, or all of them.
fn select(program: &Program, segment: Option<&str>, all: bool) -> Result<Vec<usize>, u8> {
    program
        .choose(segment, all)
        .map_err(|e| fail(e.message("choose one with --segment NAME or run them all with --all")))
}

fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(format!("cannot start the runtime: {e}")))
}

pub struct RunArgs<'a> {
    pub file: Option<&'a Path>,
    pub expr: Option<&'a str>,
    pub data: &'a Path,
    pub segment: Option<&'a str>,
    pub all: bool,
    pub as_of: Option<&'a str>,
    /// `--format`; when not given, [`OutputFormat::for_output`].
    pub format: Option<OutputFormat>,
    pub output: Option<&'a Path>,
    pub deny_warnings: bool,
    pub color: bool,
    /// `--cluster df://HOST:PORT`.
    pub cluster: Option<&'a str>,
    pub timeout: Option<std::time::Duration>,
}

/// How long `--cluster` waits for the scheduler to answer at all.
const SCHEDULER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

pub fn run(args: RunArgs<'_>) -> u8 {
    match run_inner(&args) {
        Ok(()) => EXIT_OK,
        Err(code) => code,
    }
}

fn run_inner(args: &RunArgs<'_>) -> Result<(), u8> {
    let file = load(args.file, args.expr).map_err(fail)?;
    let as_of = as_of_or_now(args.as_of).map_err(fail)?;
    let format = args
        .format
        .unwrap_or_else(|| OutputFormat::for_output(args.output));
    if format == OutputFormat::Parquet && args.output.is_none() {
        return Err(fail("--format parquet needs --output PATH"));
    }
    let timings = std::env::var_os("SEG_TIMINGS").is_some();
    let start = std::time::Instant::now();
    let phase = |name: &str| {
        if timings {
            let ms = start.elapsed().as_secs_f64() * 1e3;
            let store = seglang::data::remote::stats();
            match store == Default::default() {
                true => eprintln!("[{ms:>8.1} ms] {name}"),
                false => eprintln!("[{ms:>8.1} ms] {name}; store so far: {store}"),
            }
        }
    };
    let rt = runtime()?;
    let engine = match args.cluster {
        Some(url) => {
            let wait = args
                .timeout
                .map_or(SCHEDULER_WAIT, |t| t.min(SCHEDULER_WAIT));
            rt.block_on(Engine::open_on_cluster(args.data, url, wait))
                .map_err(fail)?
        }
        None => Engine::open_for_queries(args.data).map_err(fail)?,
    };
    phase("data opened and validated");
    let program = compile(&file, Some(&engine), args.deny_warnings, args.color)?;
    phase("compiled");
    let chosen = select(&program, args.segment, args.all)?;
    // Several segments come from one scan of the events.
    let work = async {
        if chosen.len() == 1 {
            Ok(vec![engine.run(&program, chosen[0], as_of).await?])
        } else {
            engine.run_many(&program, &chosen, as_of).await
        }
    };
    let work = patient(work, args.cluster);
    let lists = match args.timeout {
        None => rt.block_on(work),
        Some(limit) => rt
            .block_on(async { tokio::time::timeout(limit, work).await })
            .map_err(|_| {
                fail(format!(
                    "no answer within {} (--timeout); nothing was written",
                    humantime::format_duration(limit)
                ))
            })?,
    }
    .map_err(fail)?;
    phase("planned and run");
    let results: Vec<(String, Vec<i64>)> = chosen
        .iter()
        .zip(lists)
        .map(|(&i, ids)| (program.segments[i].label().to_string(), ids))
        .collect();
    let bytes = render(&results, format, args.all).map_err(fail)?;
    phase("rendered");
    match args.output {
        Some(path) => write_atomically(path, &bytes).map_err(fail)?,
        None => {
            let mut out = std::io::stdout().lock();
            if let Err(e) = out.write_all(&bytes).and_then(|_| out.flush()) {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    return Err(fail(format!("cannot write the output: {e}")));
                }
            }
        }
    }
    // The process ends here: joining the runtime's idle threads and handing
    // the session's memory back to the system took about 10 ms of every
    // run, for nothing.
    std::mem::forget(rt);
    std::mem::forget(engine);
    Ok(())
}

/// `work`; on a cluster, with a note on stderr when it has waited long (a
/// job waits for an executor when none is running).
async fn patient<T>(work: impl std::future::Future<Output = T>, cluster: Option<&str>) -> T {
    const NOTE_AFTER: std::time::Duration = std::time::Duration::from_secs(10);
    let Some(url) = cluster else {
        return work.await;
    };
    tokio::pin!(work);
    tokio::select! {
        out = &mut work => return out,
        () = tokio::time::sleep(NOTE_AFTER) => eprintln!(
            "note: still waiting for the cluster at {url} after {} s; its executors may be busy, \
             or none may be running (`seg executor --scheduler HOST:PORT`); --timeout bounds the wait",
            NOTE_AFTER.as_secs()
        ),
    }
    work.await
}

/// One segment's answer in `--format json`, its keys in this order.
#[derive(serde::Serialize)]
struct JsonAnswer<'a> {
    count: usize,
    profile_ids: &'a [i64],
    segment: &'a str,
}

/// `ids`, one a line, each after `prefix`. (`writeln!` took 20 ms for a
/// million ids, as long as the query that found them.)
fn id_lines(out: &mut Vec<u8>, prefix: &str, ids: &[i64]) {
    let mut digits = itoa::Buffer::new();
    out.reserve(ids.len() * (prefix.len() + 8));
    for &id in ids {
        out.extend_from_slice(prefix.as_bytes());
        out.extend_from_slice(digits.format(id).as_bytes());
        out.push(b'\n');
    }
}

/// Renders the results in the chosen format.
fn render(
    results: &[(String, Vec<i64>)],
    format: OutputFormat,
    all: bool,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let w = &mut out;
    let io = |e: std::io::Error| e.to_string();
    match (format, all) {
        (OutputFormat::Count, false) => writeln!(w, "{}", results[0].1.len()).map_err(io)?,
        (OutputFormat::Count, true) | (OutputFormat::Table, true) => {
            let width = results
                .iter()
                .map(|(n, _)| n.len())
                .max()
                .unwrap_or(7)
                .max(7);
            writeln!(w, "{:<width$}  count", "segment").map_err(io)?;
            for (name, ids) in results {
                writeln!(w, "{name:<width$}  {}", ids.len()).map_err(io)?;
            }
        }
        (OutputFormat::Table, false) => {
            writeln!(w, "profile_id").map_err(io)?;
            writeln!(w, "----------").map_err(io)?;
            id_lines(w, "", &results[0].1);
            let n = results[0].1.len();
            let s = if n == 1 { "" } else { "s" };
            writeln!(w, "({n} profile{s})").map_err(io)?;
        }
        (OutputFormat::Csv, false) => {
            writeln!(w, "profile_id").map_err(io)?;
            id_lines(w, "", &results[0].1);
        }
        (OutputFormat::Csv, true) => {
            writeln!(w, "segment,profile_id").map_err(io)?;
            for (name, ids) in results {
                id_lines(w, &format!("{name},"), ids);
            }
        }
        (OutputFormat::Json, _) => {
            let answers: Vec<JsonAnswer> = results
                .iter()
                .map(|(name, ids)| JsonAnswer {
                    count: ids.len(),
                    profile_ids: ids,
                    segment: name,
                })
                .collect();
            let written = match all {
                true => serde_json::to_writer(&mut *w, &answers),
                false => serde_json::to_writer(&mut *w, &answers.first()),
            };
            written.map_err(|e| e.to_string())?;
            writeln!(w).map_err(io)?;
        }
        (OutputFormat::Parquet, _) => {
            let ids: Vec<i64> = results
                .iter()
                .flat_map(|(_, ids)| ids.iter().copied())
                .collect();
            let mut fields = Vec::new();
            let mut columns: Vec<ArrayRef> = Vec::new();
            if all {
                let names: Vec<&str> = results
                    .iter()
                    .flat_map(|(n, ids)| std::iter::repeat_n(n.as_str(), ids.len()))
                    .collect();
                fields.push(Field::new("segment", DataType::Utf8, false));
                columns.push(Arc::new(StringArray::from(names)));
            }
            fields.push(Field::new("profile_id", DataType::Int64, false));
            columns.push(Arc::new(Int64Array::from(ids)));
            let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
                .map_err(|e| e.to_string())?;
            // Sorted ids are small steps: delta-packed they take a few bits
            // each, where a dictionary of distinct ids (the default) is
            // larger than the ids and hashes every one of them.
            let props = WriterProperties::builder()
                .set_column_dictionary_enabled("profile_id".into(), false)
                .set_column_encoding("profile_id".into(), Encoding::DELTA_BINARY_PACKED)
                .build();
            let mut writer = ArrowWriter::try_new(&mut *w, batch.schema(), Some(props))
                .map_err(|e| e.to_string())?;
            writer.write(&batch).map_err(|e| e.to_string())?;
            writer.close().map_err(|e| e.to_string())?;
        }
    }
    Ok(out)
}

/// Writes through a temporary file in the same directory, then renames: a
/// failed run never leaves a half-written file. A device or a pipe
/// (`-o /dev/null`, `-o /dev/stdout`, a FIFO) is written as it is, since a
/// rename would put a regular file in its place; through a symbolic link,
/// the file it names is replaced and the link kept.
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let cannot = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    // What `path` names, through a link: a device or pipe is written into,
    // a file replaced keeps its mode.
    let existing = std::fs::metadata(path).ok();
    if let Some(meta) = &existing {
        if !meta.is_file() && !meta.is_dir() {
            let mut special = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(cannot)?;
            return special.write_all(bytes).map_err(cannot);
        }
    }
    let target = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => std::fs::canonicalize(path).map_err(cannot)?,
        _ => path.to_path_buf(),
    };
    let path = target.as_path();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // A new file as `>` would make it (0666 less the umask), not the
    // temporary file's 0600; a replaced one keeps its mode.
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder
        .tempfile_in(&dir)
        .map_err(|e| format!("cannot write to {}: {e}", dir.display()))?;
    if let Some(meta) = existing {
        tmp.as_file()
            .set_permissions(meta.permissions())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| format!("cannot write {}: {}", path.display(), e.error))?;
    Ok(())
}

pub struct CompileArgs<'a> {
    pub file: Option<&'a Path>,
    pub expr: Option<&'a str>,
    pub segment: Option<&'a str>,
    pub emit: Emit,
    pub dialect: Option<SqlDialect>,
    pub data: Option<&'a Path>,
    pub as_of: Option<&'a str>,
    pub color: bool,
}

pub fn compile_cmd(args: CompileArgs<'_>) -> u8 {
    let inner = || -> Result<(), u8> {
        let file = load(args.file, args.expr).map_err(fail)?;
        let as_of = as_of_or_now(args.as_of).map_err(fail)?;
        if args.dialect.is_some() && !matches!(args.emit, Emit::Sql) {
            return Err(fail("--dialect only applies to --emit sql"));
        }
        let engine = args.data.map(Engine::open).transpose().map_err(fail)?;
        match args.emit {
            Emit::Ast => {
                let parsed = seglang::parse(&file.text);
                if parsed.has_errors() {
                    print_human(&file, &parsed.diagnostics, args.color);
                    return Err(EXIT_SCRIPT);
                }
                println!("{:#?}", parsed.script);
            }
            Emit::Plan | Emit::Physical => {
                let program = compile(&file, engine.as_ref(), false, args.color)?;
                let Some(engine) = engine else {
                    return Err(fail(format!(
                        "--emit {} needs --data DIR (the plan reads its tables' schemas and resolves selectors)",
                        if args.emit == Emit::Plan { "plan" } else { "physical" }
                    )));
                };
                let chosen = select(&program, args.segment, false)?;
                if args.emit == Emit::Plan {
                    let plan = engine
                        .optimized_plan(&program, chosen[0], as_of)
                        .map_err(fail)?;
                    println!("{}", plan.display_indent());
                } else {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .map_err(fail)?;
                    let plan = runtime
                        .block_on(engine.physical_plan(&program, chosen[0], as_of))
                        .map_err(fail)?;
                    print!("{plan}");
                }
            }
            Emit::Sql => {
                let program = compile(&file, engine.as_ref(), false, args.color)?;
                let chosen = select(&program, args.segment, false)?;
                let dialect = args.dialect.map_or(Dialect::DataFusion, Dialect::from);
                let options = match &engine {
                    Some(e) => SqlOptions::for_data(dialect, e.data(), e.objects()),
                    None => SqlOptions::new(dialect),
                };
                let sql = segment_sql(&program, chosen[0], as_of, &options).map_err(fail)?;
                println!("{sql};");
            }
        }
        Ok(())
    };
    match inner() {
        Ok(()) => EXIT_OK,
        Err(c) => c,
    }
}
