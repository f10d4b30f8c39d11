//! `seg repl`: a core ([`Session`]) and a thin rustyline front end.

mod session;

pub(crate) use session::{complete_attribute_key, complete_string, complete_words};

use std::borrow::Cow;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Editor, Helper};

pub use session::{catalog_table, Query, Reply, Session, HELP};

struct SegHelper {
    session: std::rc::Rc<std::cell::RefCell<Session>>,
}

impl Completer for SegHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, found) = self.session.borrow().complete(line, pos);
        Ok((
            start,
            found
                .into_iter()
                .map(|c| Pair {
                    display: c.clone(),
                    replacement: c,
                })
                .collect(),
        ))
    }
}

impl Hinter for SegHelper {
    type Hint = String;
}

impl Highlighter for SegHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        default: bool,
    ) -> Cow<'b, str> {
        let _ = default;
        Cow::Borrowed(prompt)
    }
}

impl Validator for SegHelper {
    /// Keeps reading lines while the parser says the input ended early.
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        let input = ctx.input();
        if input.trim_start().starts_with(':') || !crate::syntax::is_incomplete(input) {
            Ok(ValidationResult::Valid(None))
        } else {
            Ok(ValidationResult::Incomplete)
        }
    }
}

impl Helper for SegHelper {}

/// Where the history lives: `$XDG_DATA_HOME/seg/history` or `~/.local/share/seg/history`.
fn history_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(base.join("seg").join("history"))
}

/// Runs the REPL; returns the exit code.
pub fn run(
    data: Option<&Path>,
    cluster: Option<&str>,
    as_of: Option<DateTime<Utc>>,
    color: bool,
) -> u8 {
    let mut session = match Session::on(data, cluster, as_of) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    if !std::io::stdin().is_terminal() {
        return run_piped(&mut session);
    }
    session.color = color;
    interactive(session)
}

/// Non-interactive stdin: the lines are a script; results are printed plainly.
fn run_piped(session: &mut Session) -> u8 {
    let mut buffer = String::new();
    let mut failed = false;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        let line = match lines.next() {
            Some(Ok(l)) => Some(l),
            Some(Err(e)) => {
                eprintln!("error: {e}");
                return 2;
            }
            None => None,
        };
        let at_end = line.is_none();
        if let Some(l) = line {
            buffer.push_str(&l);
            buffer.push('\n');
            if !buffer.trim_start().starts_with(':') && crate::syntax::is_incomplete(&buffer) {
                continue;
            }
        }
        if !buffer.trim().is_empty() {
            let reply = session.eval(&buffer);
            print!("{}", reply.text);
            eprint!("{}", reply.diagnostics);
            failed |= reply.failed;
            if reply.quit {
                break;
            }
        }
        buffer.clear();
        if at_end {
            break;
        }
    }
    let _ = std::io::stdout().flush();
    u8::from(failed)
}

fn interactive(session: Session) -> u8 {
    let session = std::rc::Rc::new(std::cell::RefCell::new(session));
    let mut editor: Editor<SegHelper, rustyline::history::DefaultHistory> = match Editor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot start the line editor: {e}");
            return 2;
        }
    };
    editor.set_helper(Some(SegHelper {
        session: std::rc::Rc::clone(&session),
    }));
    let history = history_path();
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    println!(
        "Seg {} — :help for commands, Ctrl-D to leave",
        env!("CARGO_PKG_VERSION")
    );
    loop {
        match editor.readline("seg> ") {
            Ok(line) => {
                if line.trim().is_empty() {
                    continue;
                }
                let _ = editor.add_history_entry(line.as_str());
                let prepared = session.borrow_mut().prepare(&line);
                match prepared {
                    Ok(query) => {
                        let s = session.borrow();
                        let Some(engine) = s.engine() else { continue };
                        let started = std::time::Instant::now();
                        let outcome = rt.block_on(async {
                            tokio::select! {
                                r = engine.run(&query.program, query.segment, query.as_of) => Some(r),
                                _ = tokio::signal::ctrl_c() => None,
                            }
                        });
                        match outcome {
                            Some(Ok(ids)) => print!("{}", s.format_result(&ids, started.elapsed())),
                            Some(Err(e)) => eprintln!("error: {e}"),
                            None => eprintln!("cancelled"),
                        }
                    }
                    Err(reply) => {
                        print!("{}", reply.text);
                        eprint!("{}", reply.diagnostics);
                        if reply.quit {
                            break;
                        }
                    }
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("error: {e}");
                break;
            }
        }
    }
    if let Some(h) = &history {
        if let Some(dir) = h.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.save_history(h);
    }
    0
}
