//! Argument parsing and the subcommands. No compiler logic lives here.

mod check;
mod cluster;
mod fmt;
mod run;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Exit codes (SPEC §8).
pub const EXIT_OK: u8 = 0;
pub const EXIT_SCRIPT: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "seg",
    version,
    about = "Seg: audience segments by channel activity, compiled to DataFusion plans",
    propagate_version = true
)]
struct Cli {
    /// When to colour diagnostics (NO_COLOR is honoured in `auto`).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    #[command(subcommand)]
    command: Command,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum DiagFormat {
    Human,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse and check scripts; report every diagnostic.
    Check {
        /// Script files (`-` reads standard input).
        #[arg(required_unless_present = "expr")]
        files: Vec<PathBuf>,
        /// Check this expression (too).
        #[arg(short = 'e', long = "expr", value_name = "EXPR")]
        expr: Option<String>,
        /// A data directory (or an object-store URL: s3://bucket/prefix, gs://…, az://…, https://…): also warn about unknown campaigns, templates, tags and
        /// attributes.
        #[arg(long)]
        data: Option<PathBuf>,
        /// How to print diagnostics.
        #[arg(long, value_enum, default_value_t = DiagFormat::Human)]
        format: DiagFormat,
        /// Treat every warning as an error.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Print scripts in the canonical layout (or rewrite them with --write).
    Fmt {
        /// Script files (`-` reads standard input).
        #[arg(required_unless_present = "expr")]
        files: Vec<PathBuf>,
        /// Format this expression (too).
        #[arg(short = 'e', long = "expr", value_name = "EXPR")]
        expr: Option<String>,
        /// Rewrite each file that is not in the canonical layout (atomically).
        #[arg(long, conflicts_with = "check")]
        write: bool,
        /// Write nothing; list the files that are not in the canonical
        /// layout and exit 1 if there are any.
        #[arg(long)]
        check: bool,
    },
    /// A language server over stdio, for editors (docs/editors.md).
    Lsp,
    /// Run segments over a data directory and print their profile ids.
    Run {
        /// The script file (`-` reads standard input).
        #[arg(required_unless_present = "expr", conflicts_with = "expr")]
        file: Option<PathBuf>,
        /// Run this expression instead of a file.
        #[arg(short = 'e', long = "expr", value_name = "EXPR")]
        expr: Option<String>,
        /// The data directory (SPEC §5 layout) (or an object-store URL: s3://bucket/prefix, gs://…, az://…, https://…).
        #[arg(long)]
        data: PathBuf,
        /// The segment to run, when the script defines several.
        #[arg(long, conflicts_with = "all")]
        segment: Option<String>,
        /// Run every segment of the script.
        #[arg(long)]
        all: bool,
        /// The evaluation instant (default: now): `2026-01-31` or RFC 3339.
        #[arg(long)]
        as_of: Option<String>,
        /// Output format [default: from --output's extension (.csv, .json,
        /// .parquet), else table].
        #[arg(long, value_enum)]
        format: Option<run::OutputFormat>,
        /// Write the output to this file (atomically) instead of stdout.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
        /// Treat every warning as an error.
        #[arg(long)]
        deny_warnings: bool,
        /// Run on the Ballista cluster whose scheduler is at df://HOST:PORT
        /// (`seg scheduler`); --data must be a path every node sees.
        #[arg(long, value_name = "URL")]
        cluster: Option<String>,
        /// Give up when the answer takes longer (30s, 5m, 1h30m …): exit 2.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        timeout: Option<std::time::Duration>,
    },
    /// Serve a Ballista scheduler for `seg run --cluster` (docs/cluster.md).
    Scheduler {
        /// The address and port to listen on.
        #[arg(long, default_value = "0.0.0.0:50050")]
        bind: std::net::SocketAddr,
    },
    /// Serve a Ballista executor that runs the tasks of a scheduler.
    Executor {
        /// The scheduler: HOST:PORT (or df://HOST:PORT).
        #[arg(long)]
        scheduler: String,
        /// Where to serve Arrow Flight; gRPC takes the next port.
        #[arg(long, default_value = "0.0.0.0:50051")]
        bind: std::net::SocketAddr,
        /// The host name or address others reach this executor at (default:
        /// the address the scheduler sees it connect from).
        #[arg(long, value_name = "HOST")]
        advertise: Option<String>,
        /// Where shuffle files go (default: a temporary directory).
        #[arg(long)]
        work_dir: Option<PathBuf>,
        /// Tasks run at once (default: the number of cores).
        #[arg(long)]
        concurrency: Option<usize>,
        /// The memory pool of all its tasks: 8G, 512M … (default: Ballista's share of the machine's memory).
        #[arg(long, value_name = "SIZE")]
        memory_limit: Option<String>,
    },
    /// Generate a deterministic synthetic data set (SPEC §5 layout).
    Gen {
        /// The output directory, or an object-store URL (s3://bucket/prefix …).
        #[arg(long)]
        out: PathBuf,
        /// Number of profiles.
        #[arg(long, default_value_t = 10_000)]
        profiles: u64,
        /// Number of events.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Random seed: the same options give the same rows.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Length of the history in days.
        #[arg(long, default_value_t = 90)]
        days: u32,
        /// The last instant of the history (date or RFC 3339).
        #[arg(long, default_value = "2026-11-01")]
        end: String,
        /// Replace an earlier `seg gen` output in --out (never other files).
        #[arg(long)]
        force: bool,
        /// Worker threads (default: all cores); the rows do not depend on it.
        #[arg(long)]
        threads: Option<usize>,
        /// Compression of the events files (lz4 decodes fastest; see
        /// docs/benchmarks.md).
        #[arg(long, value_enum, default_value_t = Codec::Lz4)]
        compression: Codec,
    },
    /// Explore segments interactively.
    Repl {
        /// A data directory to query (or an object-store URL: s3://bucket/prefix, gs://…, az://…, https://…).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Run queries on the Ballista cluster at df://HOST:PORT.
        #[arg(long, value_name = "URL")]
        cluster: Option<String>,
        /// The evaluation instant (default: now).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Show what a script compiles to.
    Compile {
        /// The script file (`-` reads standard input).
        #[arg(required_unless_present = "expr", conflicts_with = "expr")]
        file: Option<PathBuf>,
        /// Compile this expression instead of a file.
        #[arg(short = 'e', long = "expr", value_name = "EXPR")]
        expr: Option<String>,
        /// The segment, when the script defines several.
        #[arg(long)]
        segment: Option<String>,
        /// What to print: the syntax tree, the optimized logical plan, the
        /// physical plan as it will run, or one standalone SQL SELECT of the
        /// segment's ids.
        #[arg(long, value_enum)]
        emit: run::Emit,
        /// The SQL dialect for `--emit sql` (default: datafusion).
        #[arg(long, value_enum)]
        dialect: Option<run::SqlDialect>,
        /// The data directory (or an object-store URL): needed for `plan` and `physical`; for
        /// `sql`, tailors the SQL
        /// to the tables present and the type of `ts`.
        #[arg(long)]
        data: Option<PathBuf>,
        /// The evaluation instant (default: now).
        #[arg(long)]
        as_of: Option<String>,
    },
}

/// `--timeout`: `30s`, `5m`, `1h30m`, `250ms`.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("a timeout of zero would give up at once".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e} (write 30s, 5m or 1h30m)")),
    }
}

/// Whether to colour output written to stderr.
fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stderr().is_terminal()
        }
    }
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    let color = use_color(cli.color);
    // A panic is a bug, never the user's: the hook keeps its text instead of
    // printing a backtrace over the output, the library turns a panic while
    // reading data into a data error, and one that escapes is reported once
    // here, with exit code 2.
    std::panic::set_hook(Box::new(|info| {
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(info.to_string());
        }
    }));
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(cli, color))) {
        Ok(code) => ExitCode::from(code),
        Err(_) => {
            let text = LAST_PANIC
                .lock()
                .ok()
                .and_then(|mut l| l.take())
                .unwrap_or_else(|| "a panic".into());
            if text.contains("failed printing to stdout") && text.contains("Broken pipe") {
                // The reader went away (`seg … | head`): nothing to report.
                return ExitCode::from(EXIT_OK);
            }
            eprintln!("error: internal error (a bug in seg; please report it): {text}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// The text of the last panic, kept by the hook `main` installs.
static LAST_PANIC: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

fn dispatch(cli: Cli, color: bool) -> u8 {
    match cli.command {
        Command::Check {
            files,
            expr,
            data,
            format,
            deny_warnings,
        } => check::run(
            &files,
            expr.as_deref(),
            data.as_deref(),
            format == DiagFormat::Json,
            deny_warnings,
            color,
        ),
        Command::Lsp => seglang::lsp::run(),
        Command::Fmt {
            files,
            expr,
            write,
            check,
        } => fmt::run(
            &files,
            expr.as_deref(),
            match (write, check) {
                (true, _) => fmt::Mode::Write,
                (_, true) => fmt::Mode::Check,
                _ => fmt::Mode::Print,
            },
            color,
        ),
        Command::Run {
            file,
            expr,
            data,
            segment,
            all,
            as_of,
            format,
            output,
            deny_warnings,
            cluster,
            timeout,
        } => run::run(run::RunArgs {
            file: file.as_deref(),
            expr: expr.as_deref(),
            data: &data,
            segment: segment.as_deref(),
            all,
            as_of: as_of.as_deref(),
            format,
            output: output.as_deref(),
            deny_warnings,
            color,
            cluster: cluster.as_deref(),
            timeout,
        }),
        Command::Scheduler { bind } => cluster::scheduler(bind),
        Command::Executor {
            scheduler,
            bind,
            advertise,
            work_dir,
            concurrency,
            memory_limit,
        } => cluster::executor(cluster::ExecutorArgs {
            scheduler,
            bind,
            advertise,
            work_dir,
            concurrency,
            memory_limit,
        }),
        Command::Gen {
            out,
            profiles,
            events,
            seed,
            days,
            end,
            force,
            threads,
            compression,
        } => gen(
            out,
            profiles,
            events,
            seed,
            days,
            &end,
            force,
            threads,
            compression,
        ),
        Command::Repl {
            data,
            cluster,
            as_of,
        } => match as_of.as_deref().map(run::as_of).transpose() {
            Ok(as_of) => seglang::repl::run(data.as_deref(), cluster.as_deref(), as_of, color),
            Err(e) => fail(e),
        },
        Command::Compile {
            file,
            expr,
            segment,
            emit,
            dialect,
            data,
            as_of,
        } => run::compile_cmd(run::CompileArgs {
            file: file.as_deref(),
            expr: expr.as_deref(),
            segment: segment.as_deref(),
            emit,
            dialect,
            data: data.as_deref(),
            as_of: as_of.as_deref(),
            color,
        }),
    }
}

/// The compression codecs `seg gen` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Codec {
    /// LZ4 (the raw block format Parquet calls LZ4_RAW).
    Lz4,
    Snappy,
    Zstd,
    None,
}

impl Codec {
    fn parquet(self) -> seglang::gen::Compression {
        use seglang::gen::Compression;
        match self {
            Codec::Lz4 => Compression::LZ4_RAW,
            Codec::Snappy => Compression::SNAPPY,
            Codec::Zstd => Compression::ZSTD(Default::default()),
            Codec::None => Compression::UNCOMPRESSED,
        }
    }
}

/// Prints an error that is not about the script (I/O, usage, data).
pub fn fail(message: impl std::fmt::Display) -> u8 {
    eprintln!("error: {message}");
    EXIT_USAGE
}

#[allow(clippy::too_many_arguments)]
fn gen(
    out: PathBuf,
    profiles: u64,
    events: u64,
    seed: u64,
    days: u32,
    end: &str,
    force: bool,
    threads: Option<usize>,
    compression: Codec,
) -> u8 {
    let Some(end) = seglang::syntax::literal::parse_datetime(end) else {
        return fail(format!("--end: invalid date-time `{end}`"));
    };
    let threads =
        threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let opts = seglang::gen::GenOptions {
        out,
        profiles,
        events,
        seed,
        days,
        end,
        force,
        threads,
        compression: compression.parquet(),
        progress: std::io::stderr().is_terminal(),
    };
    let started = std::time::Instant::now();
    match seglang::gen::generate(&opts) {
        Ok(s) => {
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "wrote {} events in {} files, {} profiles, {} campaigns, {} templates to {} in {secs:.2} s ({:.2} M events/s)",
                s.events,
                s.files,
                profiles,
                s.campaigns,
                s.templates,
                opts.out.display(),
                s.events as f64 / secs.max(1e-9) / 1e6
            );
            EXIT_OK
        }
        Err(e) => fail(e),
    }
}
