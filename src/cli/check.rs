//! `seg check FILE…`

use std::io::Read;
use std::path::{Path, PathBuf};

use seglang::diagnostic::{self, Code, Diagnostic, Source};

use super::{fail, EXIT_OK, EXIT_SCRIPT, EXIT_USAGE};

/// A script read from a file or stdin. Non-UTF-8 input becomes a diagnostic.
pub struct ScriptFile {
    pub name: String,
    pub text: String,
    pub not_utf8: Option<Diagnostic>,
}

/// Reads a script (`-` is standard input).
pub fn read_script(path: &Path) -> Result<ScriptFile, String> {
    let (name, bytes) = if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        ("<stdin>".to_string(), buf)
    } else {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        (path.display().to_string(), bytes)
    };
    Ok(match String::from_utf8(bytes) {
        Ok(text) => ScriptFile {
            name,
            text,
            not_utf8: None,
        },
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let d = Diagnostic::new(Code::NotUtf8, at..at + 1, "the script is not valid UTF-8")
                .with_label(format!(
                    "invalid byte 0x{:02x} at offset {at}",
                    e.as_bytes()[at]
                ))
                .with_help("save the file as UTF-8");
            ScriptFile {
                name,
                text,
                not_utf8: Some(d),
            }
        }
    })
}

/// Diagnoses a script: parse and check, or the UTF-8 error alone.
pub fn diagnose(file: &ScriptFile, objects: Option<&seglang::ObjectIndex>) -> Vec<Diagnostic> {
    if let Some(d) = &file.not_utf8 {
        return vec![d.clone()];
    }
    match seglang::compile(&file.text, objects) {
        Ok(compiled) => compiled.warnings,
        Err(diagnostics) => diagnostics,
    }
}

/// Prints diagnostics in the human format on stderr.
pub fn print_human(file: &ScriptFile, diagnostics: &[Diagnostic], color: bool) {
    if diagnostics.is_empty() {
        return;
    }
    let source = Source {
        name: &file.name,
        text: &file.text,
    };
    eprint!("{}", diagnostic::render(diagnostics, &source, color));
}

/// Promotes warnings to errors under `--deny-warnings`.
pub fn deny(diagnostics: &mut [Diagnostic], deny_warnings: bool) {
    if deny_warnings {
        for d in diagnostics {
            d.severity = diagnostic::Severity::Error;
        }
    }
}

pub fn run(
    files: &[PathBuf],
    expr: Option<&str>,
    data: Option<&Path>,
    json: bool,
    deny_warnings: bool,
    color: bool,
) -> u8 {
    let objects = match data.map(seglang::data::load_objects).transpose() {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let mut any_error = false;
    let mut json_out = Vec::new();
    let mut io_error = false;
    let scripts = files
        .iter()
        .map(|path| read_script(path))
        .chain(expr.map(|e| super::run::load(None, Some(e))));
    for script in scripts {
        let file = match script {
            Ok(f) => f,
            Err(e) => {
                fail(e);
                io_error = true;
                continue;
            }
        };
        let mut diagnostics = diagnose(&file, objects.as_ref());
        deny(&mut diagnostics, deny_warnings);
        any_error |= diagnostics.iter().any(Diagnostic::is_error);
        if json {
            let source = Source {
                name: &file.name,
                text: &file.text,
            };
            json_out.extend(diagnostic::to_json_values(&diagnostics, &source));
        } else {
            print_human(&file, &diagnostics, color);
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json_out).unwrap_or_else(|_| "[]".to_string())
        );
    }
    if io_error {
        EXIT_USAGE
    } else if any_error {
        EXIT_SCRIPT
    } else {
        EXIT_OK
    }
}
