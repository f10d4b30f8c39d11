//! `seglang._seglang`: the Python module over the `seglang` library. It only
//! translates: Python arguments in, Seg's results out (diagnostics as
//! objects, SQL as text, profile ids as Arrow tables through the C data
//! interface), Seg's errors as Python exceptions. `seglang/__init__.py`
//! re-exports it; `seglang/_seglang.pyi` types it.

use std::future::Future;
use std::path::PathBuf;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::Duration;

use arrow_pyarrow::{IntoPyArrow, Table};
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyUserWarning, PyValueError};
use pyo3::prelude::*;
use seglang::diagnostic::{self, Severity, Source};
use seglang::sql::{segment_sql, Dialect, SqlOptions};
use seglang::Program;

// The allocator the `seg` binary uses: DataFusion's many short-lived
// buffers, and the plans and SQL trees of `compile`, cost less than with the
// system allocator. Only Rust's allocations go through it (as in Polars'
// module); Python's objects keep Python's allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

create_exception!(
    seglang,
    SegError,
    PyException,
    "The base class of the errors Seg raises."
);
create_exception!(
    seglang,
    ScriptError,
    SegError,
    "The script has errors. `diagnostics` lists every error and warning \
     (`Diagnostic`), in source order; `str(error)` renders them."
);
create_exception!(
    seglang,
    DataError,
    SegError,
    "The data cannot be read, or does not have the layout Seg expects. \
     The message names the file, and the column and types where one is at fault."
);
create_exception!(
    seglang,
    SegWarning,
    PyUserWarning,
    "A warning about a script that still runs (an unknown campaign name, a \
     window that is always empty …), issued through Python's `warnings`."
);

/// What the rendered diagnostics call the script.
const SCRIPT: &str = "<script>";

/// How a caller of `run`, `count`, `plan` or `compile` chooses a segment.
const HOW_TO_CHOOSE: &str = "choose one with segment=NAME or run them all with Engine.run_all()";

/// One problem found in a script, as `seg check --format json` reports it.
#[pyclass(frozen, module = "seglang")]
struct Diagnostic {
    /// The code, such as `"E010"` (SPEC §7).
    #[pyo3(get)]
    code: String,
    /// `"error"` or `"warning"`.
    #[pyo3(get)]
    severity: &'static str,
    /// What is wrong.
    #[pyo3(get)]
    message: String,
    /// The 1-based line of the start.
    #[pyo3(get)]
    line: usize,
    /// The 1-based column of the start, in characters.
    #[pyo3(get)]
    column: usize,
    /// The 1-based line of the end.
    #[pyo3(get)]
    end_line: usize,
    /// The 1-based column of the end, in characters.
    #[pyo3(get)]
    end_column: usize,
    /// The byte offset of the start in the script's UTF-8 text.
    #[pyo3(get)]
    start: usize,
    /// The byte offset of the end (exclusive).
    #[pyo3(get)]
    end: usize,
    /// The text shown under the span, when it differs from the message.
    #[pyo3(get)]
    label: Option<String>,
    /// How to fix it, when Seg knows (`"did you mean \`click\`?"`).
    #[pyo3(get)]
    help: Option<String>,
    /// The text `seg check` prints for it, without colour.
    rendered: String,
}

#[pymethods]
impl Diagnostic {
    /// Whether it is an error (a script with one does not run).
    #[getter]
    fn is_error(&self) -> bool {
        self.severity == "error"
    }

    fn __str__(&self) -> &str {
        &self.rendered
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Diagnostic(code={}, severity={}, line={}, column={}, message={})",
            repr(py, &self.code)?,
            repr(py, self.severity)?,
            self.line,
            self.column,
            repr(py, &self.message)?
        ))
    }
}

impl Diagnostic {
    fn new(d: &seglang::Diagnostic, text: &str) -> Diagnostic {
        let span = diagnostic::clamp(text, &d.span);
        let (at, to) = (
            diagnostic::line_col(text, span.start),
            diagnostic::line_col(text, span.end),
        );
        Diagnostic {
            code: d.code.as_str().to_string(),
            severity: match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            },
            message: d.message.clone(),
            line: at.line,
            column: at.column,
            end_line: to.line,
            end_column: to.column,
            start: span.start,
            end: span.end,
            label: d.label.clone(),
            help: d.help.clone(),
            rendered: render(std::slice::from_ref(d), text),
        }
    }

    fn all(diagnostics: &[seglang::Diagnostic], text: &str) -> Vec<Diagnostic> {
        diagnostics
            .iter()
            .map(|d| Diagnostic::new(d, text))
            .collect()
    }
}

/// The text `seg check` prints, without colour and without the last line's
/// end (Python prints its own).
fn render(diagnostics: &[seglang::Diagnostic], text: &str) -> String {
    let source = Source { name: SCRIPT, text };
    let mut rendered = diagnostic::render(diagnostics, &source, false);
    rendered.truncate(rendered.trim_end_matches('\n').len());
    rendered
}

/// Python's `repr` of a string: `'E010'`.
fn repr(py: Python<'_>, text: &str) -> PyResult<String> {
    Ok(pyo3::types::PyString::new(py, text).repr()?.to_string())
}

fn data_error(e: seglang::DataError) -> PyErr {
    DataError::new_err(e.message)
}

/// Every error and warning of `text`, in source order.
fn diagnostics(text: &str, objects: Option<&seglang::ObjectIndex>) -> Vec<Diagnostic> {
    let found = match seglang::compile(text, objects) {
        Ok(c) => c.warnings,
        Err(d) => d,
    };
    Diagnostic::all(&found, text)
}

/// Checks `text` like `seg check`: a checked program, each warning issued as
/// a `SegWarning`; or `ScriptError` with every diagnostic.
fn compiled(py: Python<'_>, text: &str, engine: Option<&seglang::Engine>) -> PyResult<Program> {
    match seglang::compile(text, engine.map(seglang::Engine::objects)) {
        Ok(c) => {
            for w in &c.warnings {
                // A C string: a NUL the script holds is shown escaped.
                let shown = render(std::slice::from_ref(w), text).replace('\0', "\\0");
                let message = std::ffi::CString::new(shown).unwrap_or_default();
                // Stack level 1: the caller's line (this is a C function).
                PyErr::warn(py, py.get_type::<SegWarning>().as_any(), &message, 1)?;
            }
            Ok(c.program)
        }
        Err(diagnostics) => {
            let err = ScriptError::new_err(render(&diagnostics, text));
            err.value(py)
                .setattr("diagnostics", Diagnostic::all(&diagnostics, text))?;
            Err(err)
        }
    }
}

/// What a call on one segment works on: the checked script, the segment
/// `segment` names (or the only one), and `as_of`.
fn prepared(
    py: Python<'_>,
    text: &str,
    segment: Option<&str>,
    as_of: Option<&Bound<'_, PyAny>>,
    engine: Option<&seglang::Engine>,
) -> PyResult<(Program, usize, DateTime<Utc>)> {
    let as_of = moment(as_of)?;
    let program = compiled(py, text, engine)?;
    let chosen = program
        .choose(segment, false)
        .map_err(|e| PyValueError::new_err(e.message(HOW_TO_CHOOSE)))?;
    Ok((program, chosen[0], as_of))
}

/// `as_of` as Seg reads it: `None` is now; a string is a date
/// (`"2026-11-01"`, midnight UTC) or an RFC 3339 date-time; a `datetime`
/// without a time zone is UTC; a `date` is its midnight UTC.
fn moment(value: Option<&Bound<'_, PyAny>>) -> PyResult<DateTime<Utc>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Utc::now());
    };
    let text: String = match value.extract() {
        Ok(text) => text,
        Err(_) if value.hasattr("isoformat")? => value.call_method0("isoformat")?.extract()?,
        Err(_) => {
            return Err(PyValueError::new_err(format!(
                "as_of: expected a date, a datetime or a string, found {}",
                value.get_type().name()?
            )))
        }
    };
    seglang::syntax::literal::parse_datetime(&text)
        // A datetime without a time zone: UTC.
        .or_else(|| seglang::syntax::literal::parse_datetime(&format!("{text}Z")))
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "as_of: invalid date-time `{text}` (write 2026-01-31 or 2026-01-31T10:00:00Z)"
            ))
        })
}

fn sql(
    py: Python<'_>,
    text: &str,
    dialect: &str,
    segment: Option<&str>,
    as_of: Option<&Bound<'_, PyAny>>,
    engine: Option<&seglang::Engine>,
) -> PyResult<String> {
    let dialect: Dialect = dialect.parse().map_err(PyValueError::new_err)?;
    let (program, segment, as_of) = prepared(py, text, segment, as_of, engine)?;
    let options = match engine {
        Some(e) => SqlOptions::for_data(dialect, e.data(), e.objects()),
        None => SqlOptions::new(dialect),
    };
    let sql = segment_sql(&program, segment, as_of, &options).map_err(data_error)?;
    Ok(format!("{sql};"))
}

/// Opens a data directory with `opener` and the GIL released (its footers
/// are read, from an object store perhaps).
fn open(
    py: Python<'_>,
    data: &std::path::Path,
    opener: fn(&std::path::Path) -> Result<seglang::Engine, seglang::DataError>,
) -> PyResult<seglang::Engine> {
    py.detach(|| opener(data)).map_err(data_error)
}

/// Checks a script: every error and warning, as a list of `Diagnostic` in
/// source order (empty when the script is clean). With `data` (a data
/// directory or object-store URL), names of campaigns, templates, tags and
/// attributes are checked against it too.
#[pyfunction]
#[pyo3(signature = (text, data=None))]
fn check(text: &str, data: Option<PathBuf>) -> PyResult<Vec<Diagnostic>> {
    let objects = data
        .as_deref()
        .map(seglang::data::load_objects)
        .transpose()
        .map_err(data_error)?;
    Ok(diagnostics(text, objects.as_ref()))
}

/// Compiles a segment to one SQL SELECT of its profile ids, ascending: the
/// text of `seg compile --emit sql`. `dialect` is one of `"duckdb"`,
/// `"postgres"`, `"sqlite"`, `"mysql"`, `"datafusion"`. With `data`, the SQL
/// is written for that data's tables (which optional tables exist, whether
/// `ts` carries a time zone); without, for the layout `seg gen` writes.
#[pyfunction]
#[pyo3(signature = (text, dialect="duckdb", segment=None, as_of=None, data=None))]
fn compile(
    py: Python<'_>,
    text: &str,
    dialect: &str,
    segment: Option<&str>,
    as_of: Option<&Bound<'_, PyAny>>,
    data: Option<PathBuf>,
) -> PyResult<String> {
    // Only the tables' schemas: `Engine::open`, without the profile-id range
    // that `open_for_queries` starts reading for a query.
    let engine = data
        .as_deref()
        .map(|d| open(py, d, seglang::Engine::open))
        .transpose()?;
    sql(py, text, dialect, segment, as_of, engine.as_ref())
}

/// A data directory (SPEC §5 layout; a local path or an object-store URL
/// such as `s3://bucket/prefix`) opened for queries. It stays open between
/// calls: its tables' footers and the campaign, template and tag names are
/// read once. Queries release the GIL and stop at Ctrl-C.
#[pyclass(frozen, module = "seglang")]
struct Engine {
    inner: Arc<seglang::Engine>,
    runtime: tokio::runtime::Runtime,
    data: PathBuf,
}

impl Engine {
    /// Runs `work` to its end as a task of the engine's runtime, with the
    /// GIL released, looking for signals (Ctrl-C) every 50 ms and at its
    /// end. The task runs on the runtime's threads and this thread waits on
    /// a channel, not on the runtime's timer (which its busy threads would
    /// not turn): however long one step of the query computes, the wait
    /// returns within 50 ms of the signal. A `KeyboardInterrupt` aborts the
    /// task, which drops the query and cancels its partitions.
    fn wait<T: Send + 'static>(
        &self,
        py: Python<'_>,
        work: impl Future<Output = T> + Send + 'static,
    ) -> PyResult<T> {
        let (send, mut receive) = std::sync::mpsc::sync_channel(1);
        let mut task = Aborting(self.runtime.spawn(async move {
            // The receiver is gone only when the wait has returned.
            let _ = send.send(work.await);
        }));
        loop {
            let step;
            (receive, step) = py.detach(move || {
                let step = receive.recv_timeout(Duration::from_millis(50));
                (receive, step)
            });
            // A Ctrl-C during the last step counts too, as it would for a
            // blocking call of Python's own: the query may end within the
            // step that the signal arrived in.
            py.check_signals()?;
            match step {
                Ok(out) => return Ok(out),
                Err(RecvTimeoutError::Timeout) => {}
                // The task ended without an answer: it panicked (the query
                // catches the decoders' panics; any other goes on as one,
                // which pyo3 raises as `PanicException`).
                Err(RecvTimeoutError::Disconnected) => {
                    return match py.detach(|| self.runtime.block_on(&mut task.0)) {
                        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                        _ => Err(SegError::new_err("the query stopped without an answer")),
                    };
                }
            }
        }
    }

    fn ids(
        &self,
        py: Python<'_>,
        text: &str,
        segment: Option<&str>,
        as_of: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<i64>> {
        let (program, segment, as_of) = prepared(py, text, segment, as_of, Some(&self.inner))?;
        let engine = Arc::clone(&self.inner);
        self.wait(
            py,
            async move { engine.run(&program, segment, as_of).await },
        )?
        .map_err(data_error)
    }
}

/// A task that is aborted when its handle is dropped: when `Engine::wait`
/// returns early (Ctrl-C) or unwinds, the query does not go on unseen.
struct Aborting<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for Aborting<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An Arrow table of `columns` (one batch), handed to pyarrow through the C
/// data interface: pyarrow takes over the buffers, nothing is copied.
fn table(py: Python<'_>, columns: Vec<(Field, ArrayRef)>) -> PyResult<Bound<'_, PyAny>> {
    let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = columns.into_iter().unzip();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)
        .map_err(|e| SegError::new_err(e.to_string()))?;
    Table::try_new(vec![batch], schema)
        .map_err(|e| SegError::new_err(e.to_string()))?
        .into_pyarrow(py)
}

fn id_column(ids: Vec<i64>) -> (Field, ArrayRef) {
    (
        Field::new("profile_id", DataType::Int64, false),
        Arc::new(Int64Array::from(ids)),
    )
}

#[pymethods]
impl Engine {
    /// Opens and validates `data`: a directory or an object-store URL.
    /// Raises `DataError` when it cannot be read or is not Seg's layout.
    #[new]
    fn new(py: Python<'_>, data: PathBuf) -> PyResult<Engine> {
        let inner = open(py, &data, seglang::Engine::open_for_queries)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| SegError::new_err(format!("cannot start the runtime: {e}")))?;
        Ok(Engine {
            inner: Arc::new(inner),
            runtime,
            data,
        })
    }

    /// The data directory or URL, as given.
    #[getter]
    fn data(&self) -> String {
        self.data.display().to_string()
    }

    /// Checks a script against this data: `check(text, data=...)` without
    /// opening the data again.
    fn check(&self, text: &str) -> Vec<Diagnostic> {
        diagnostics(text, Some(self.inner.objects()))
    }

    /// The SQL of a segment for this data's tables, as `compile(...,
    /// data=...)`.
    #[pyo3(signature = (text, dialect="duckdb", segment=None, as_of=None))]
    fn compile(
        &self,
        py: Python<'_>,
        text: &str,
        dialect: &str,
        segment: Option<&str>,
        as_of: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        sql(py, text, dialect, segment, as_of, Some(&self.inner))
    }

    /// The profiles in a segment: a `pyarrow.Table` with one column,
    /// `profile_id` (int64), ascending. `segment` names one of the script's
    /// definitions (needed when it has several); `as_of` is the moment
    /// relative windows end at (default: now). Raises `ScriptError`,
    /// `DataError`, or `ValueError` for a bad argument.
    #[pyo3(signature = (text, segment=None, as_of=None))]
    fn run<'py>(
        &self,
        py: Python<'py>,
        text: &str,
        segment: Option<&str>,
        as_of: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ids = self.ids(py, text, segment, as_of)?;
        table(py, vec![id_column(ids)])
    }

    /// Every segment of the script, from one scan of the events: a
    /// `pyarrow.Table` with columns `segment` (string) and `profile_id`
    /// (int64), segments in definition order and ids ascending in each (the
    /// rows of `seg run --all --format parquet`).
    #[pyo3(signature = (text, as_of=None))]
    fn run_all<'py>(
        &self,
        py: Python<'py>,
        text: &str,
        as_of: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let as_of = moment(as_of)?;
        let program = compiled(py, text, Some(&self.inner))?;
        let all = program
            .choose(None, true)
            .map_err(|e| PyValueError::new_err(e.message(HOW_TO_CHOOSE)))?;
        let engine = Arc::clone(&self.inner);
        let (program, all, lists) = self.wait(py, async move {
            let lists = engine.run_many(&program, &all, as_of).await;
            (program, all, lists)
        })?;
        let lists = lists.map_err(data_error)?;
        let names: Vec<&str> = all
            .iter()
            .zip(&lists)
            .flat_map(|(&i, ids)| std::iter::repeat_n(program.segments[i].label(), ids.len()))
            .collect();
        let names: ArrayRef = Arc::new(StringArray::from(names));
        let ids = lists.into_iter().flatten().collect();
        table(
            py,
            vec![
                (Field::new("segment", DataType::Utf8, false), names),
                id_column(ids),
            ],
        )
    }

    /// The number of profiles in a segment (arguments as `run`).
    #[pyo3(signature = (text, segment=None, as_of=None))]
    fn count(
        &self,
        py: Python<'_>,
        text: &str,
        segment: Option<&str>,
        as_of: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        Ok(self.ids(py, text, segment, as_of)?.len())
    }

    /// The optimized DataFusion logical plan of a segment, indented: the
    /// text of `seg compile --emit plan` (arguments as `run`).
    #[pyo3(signature = (text, segment=None, as_of=None))]
    fn plan(
        &self,
        py: Python<'_>,
        text: &str,
        segment: Option<&str>,
        as_of: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let (program, segment, as_of) = prepared(py, text, segment, as_of, Some(&self.inner))?;
        let plan = self
            .inner
            .optimized_plan(&program, segment, as_of)
            .map_err(data_error)?;
        let shown = plan.display_indent().to_string();
        Ok(shown)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("Engine({})", repr(py, &self.data())?))
    }
}

/// The native half of the `seglang` package; import `seglang` instead.
#[pymodule]
fn _seglang(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_function(wrap_pyfunction!(check, m)?)?;
    m.add_function(wrap_pyfunction!(compile, m)?)?;
    m.add_class::<Engine>()?;
    m.add_class::<Diagnostic>()?;
    m.add("SegError", py.get_type::<SegError>())?;
    m.add("ScriptError", py.get_type::<ScriptError>())?;
    m.add("DataError", py.get_type::<DataError>())?;
    m.add("SegWarning", py.get_type::<SegWarning>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
