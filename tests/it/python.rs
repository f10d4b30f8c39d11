//! The Python package (`python/`, issue 17): maturin builds the module into a
//! virtual environment under `target/`, then its pytest suite
//! (`python/tests`) compares it with the `seg` binary built here.
//!
//! The environment sees the system's site-packages, where `.ci/run`
//! installs maturin, pytest, pyarrow, DuckDB and pandas; nothing is
//! downloaded here. maturin builds in the `dev` profile, with the features
//! `cargo test` used, so it reuses this build's DataFusion and only compiles
//! pyo3 and the module.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::python_has;

/// The environment's directory: beside the build, so that `cargo clean`
/// removes it.
fn env_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("python-env")
}

/// `command` with the variables cargo set for this test binary removed and
/// the virtual environment active. The nested build must see the
/// environment the outer one saw: build scripts such as ring's ask to run
/// again when `OUT_DIR` changes, and all that sits on them is rebuilt.
fn in_env(mut command: Command, env: &Path) -> Command {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        let keep = ["CARGO_HOME", "CARGO_INCREMENTAL", "CARGO_TARGET_DIR"];
        let set_by_cargo = name.starts_with("CARGO_") && !keep.contains(&name.as_str())
            || ["CARGO", "OUT_DIR", "LD_LIBRARY_PATH"].contains(&name.as_str());
        if set_by_cargo {
            command.env_remove(&name);
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![env.join("bin")];
    paths.extend(std::env::split_paths(&path));
    command
        .env("VIRTUAL_ENV", env)
        .env("PATH", std::env::join_paths(paths).expect("a valid PATH"))
        .env_remove("CONDA_PREFIX");
    command
}

/// maturin's executable, installed beside `python`'s scripts (`python -m
/// maturin` looks for it in the virtual environment's instead).
fn maturin(python: &str) -> PathBuf {
    let scripts = ok(
        Command::new(python).args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ]),
        "python3 -c sysconfig",
    );
    let beside = Path::new(scripts.trim()).join("maturin");
    match beside.is_file() {
        true => beside,
        false => PathBuf::from("maturin"),
    }
}

fn ok(command: &mut Command, what: &str) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn python_package_against_the_cli() {
    let system = crate::common::python();
    let modules = "maturin, pytest, pyarrow, duckdb, pandas";
    if !python_has(&system, modules, "the Python package's tests") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let env = env_dir();
    let python = env.join("bin/python");
    if !python.is_file() {
        ok(
            Command::new(&system)
                .args(["-m", "venv", "--system-site-packages"])
                .arg(&env),
            "python3 -m venv",
        );
    }
    ok(
        in_env(Command::new(maturin(&system)), &env)
            .args(["develop", "--quiet", "--manifest-path"])
            .arg(root.join("python/Cargo.toml")),
        "maturin develop",
    );
    let report = ok(
        in_env(Command::new(&python), &env)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"])
            .arg(root.join("python/tests"))
            .env("SEG_BIN", env!("CARGO_BIN_EXE_seg"))
            .current_dir(root),
        "pytest python/tests",
    );
    eprintln!("{report}");
    // Every test ran: none skipped for a missing module.
    assert!(!report.contains("skipped"), "{report}");
    assert!(report.contains(" passed"), "{report}");
}
