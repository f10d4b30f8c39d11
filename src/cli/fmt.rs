//! `seg fmt FILE… | - | -e EXPR`

use std::path::PathBuf;

use super::check::{print_human, read_script, ScriptFile};
use super::{fail, EXIT_OK, EXIT_SCRIPT};

/// What `seg fmt` does with the canonical layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Print it.
    Print,
    /// Rewrite each file that differs (atomically).
    Write,
    /// Write nothing; list the files that would change, exit 1 if any.
    Check,
}

pub fn run(files: &[PathBuf], expr: Option<&str>, mode: Mode, color: bool) -> u8 {
    let mut scripts = Vec::new();
    for path in files {
        if mode == Mode::Write && path.as_os_str() == "-" {
            return fail("--write needs files: standard input has nowhere to be written back");
        }
        match read_script(path) {
            Ok(file) => scripts.push((Some(path), file)),
            Err(e) => return fail(e),
        }
    }
    if let Some(e) = expr {
        if mode == Mode::Write {
            return fail("--write needs files: -e has nowhere to be written back");
        }
        let file = ScriptFile {
            name: "<expr>".into(),
            text: e.to_string(),
            not_utf8: None,
        };
        scripts.push((None, file));
    }
    let mut code = EXIT_OK;
    for (path, file) in &scripts {
        let formatted = match (&file.not_utf8, seglang::fmt::format(&file.text)) {
            (None, Some(f)) => f,
            (Some(d), _) => {
                print_human(file, std::slice::from_ref(d), color);
                code = EXIT_SCRIPT;
                continue;
            }
            (None, None) => {
                // Not formatted: the syntax errors say why.
                let errors: Vec<_> = seglang::parse(&file.text)
                    .diagnostics
                    .into_iter()
                    .filter(|d| d.severity == seglang::diagnostic::Severity::Error)
                    .collect();
                print_human(file, &errors, color);
                code = EXIT_SCRIPT;
                continue;
            }
        };
        match mode {
            Mode::Print => print!("{formatted}"),
            Mode::Check => {
                if formatted != file.text {
                    println!("{}", file.name);
                    code = EXIT_SCRIPT;
                }
            }
            Mode::Write => {
                let Some(path) = path else { continue };
                if formatted != file.text {
                    if let Err(e) = super::run::write_atomically(path, formatted.as_bytes()) {
                        return fail(e);
                    }
                }
            }
        }
    }
    code
}
