//! The REPL core: definitions that persist, queries, meta commands and
//! completion candidates. No terminal here, so it is tested directly.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::catalog::{self, Event};
use crate::diagnostic::{self, Diagnostic, Severity, Sources};
use crate::sql::{segment_sql, Dialect, SqlOptions};
use crate::syntax::literal::KEYWORDS;
use crate::Engine;

/// The name under which a bare expression is checked alongside the session's
/// definitions; users cannot write it (it is not reachable by accident).
const QUERY: &str = "__repl_query__";

/// What one input produced.
#[derive(Debug, Default)]
pub struct Reply {
    /// Text for stdout.
    pub text: String,
    /// Diagnostics, rendered (for stderr), pointing into the input just typed.
    pub diagnostics: String,
    /// The raw diagnostics, for tests.
    pub codes: Vec<&'static str>,
    /// The input failed: it did not compile, or its query or command did
    /// not run (a piped session then exits 1).
    pub failed: bool,
    /// The session should end.
    pub quit: bool,
}

impl Reply {
    fn text(text: impl Into<String>) -> Reply {
        Reply {
            text: text.into(),
            ..Reply::default()
        }
    }
}

/// A query ready to run: what `Session::prepare` returns for the front end to
/// execute (so it can cancel it).
pub struct Query {
    pub program: crate::Program,
    pub segment: usize,
    pub as_of: DateTime<Utc>,
}

/// A REPL session.
pub struct Session {
    /// The scheduler's URL when queries run on a cluster.
    cluster: Option<String>,
    engine: Option<Engine>,
    data_dir: Option<PathBuf>,
    /// Accepted definitions, each with the input it was typed in (so that
    /// a diagnostic pointing into it is shown there).
    definitions: Vec<Definition>,
    as_of: Option<DateTime<Utc>>,
    /// How many ids a query shows.
    pub show: usize,
    /// Colour diagnostics.
    pub color: bool,
    /// Inputs so far, to name each as its own source.
    counter: usize,
}

/// A definition the session keeps, and where it was typed.
#[derive(Debug, Clone)]
struct Definition {
    name: String,
    /// The input's name (`input#3`, or the file `:load` read) and text.
    input: Arc<str>,
    input_text: Arc<str>,
    /// The definition's bytes in the input, without its `;`.
    range: std::ops::Range<usize>,
}

impl Definition {
    fn text(&self) -> &str {
        &self.input_text[self.range.clone()]
    }
}

/// One parsed meta command.
#[derive(Debug, PartialEq, Eq)]
enum Meta<'a> {
    Help,
    Catalog,
    Plan(&'a str),
    Sql(&'a str),
    AsOf(&'a str),
    Data(&'a str),
    Load(&'a str),
    Segments,
    Show(&'a str),
    Quit,
    Unknown(&'a str),
}

fn meta(input: &str) -> Meta<'_> {
    let body = input.trim().trim_start_matches(':');
    let (cmd, rest) = body.split_once(char::is_whitespace).unwrap_or((body, ""));
    let rest = rest.trim();
    match cmd {
        "help" | "h" | "?" => Meta::Help,
        "catalog" | "c" => Meta::Catalog,
        "plan" | "p" => Meta::Plan(rest),
        "sql" => Meta::Sql(rest),
        "as-of" | "asof" | "a" => Meta::AsOf(rest),
        "data" | "d" => Meta::Data(rest),
        "load" | "l" => Meta::Load(rest),
        "segments" | "s" => Meta::Segments,
        "show" => Meta::Show(rest),
        "quit" | "q" | "exit" => Meta::Quit,
        other => Meta::Unknown(other),
    }
}

pub const HELP: &str = "\
Type a definition (`segment name = …;`) to keep it for the session, or an
expression to run it now. Input continues on the next line while a bracket
or string is open or a definition is unfinished.

  :help, :h              this help
  :catalog, :c           the channel × event table
  :plan, :p EXPR         the optimized DataFusion plan of EXPR (or a segment name)
  :sql EXPR [DIALECT]    EXPR as one SQL SELECT; DIALECT: datafusion (default),
                         duckdb, postgres, sqlite, mysql
  :as-of, :a [T]         show or set the evaluation instant (date or RFC 3339; `now`)
  :data, :d DIR          load a data directory
  :load, :l FILE         load the definitions of a script
  :segments, :s          the segments defined so far
  :show N                how many ids a query prints
  :quit, :q              leave (Ctrl-D works too; Ctrl-C cancels a running query)
";

impl Session {
    /// A session, with a data directory when given.
    pub fn new(data: Option<&Path>, as_of: Option<DateTime<Utc>>) -> Result<Session, String> {
        Session::on(data, None, as_of)
    }

    /// A session whose queries run on the Ballista cluster at `cluster`
    /// (`df://HOST:PORT`) when given.
    pub fn on(
        data: Option<&Path>,
        cluster: Option<&str>,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Session, String> {
        let mut s = Session {
            cluster: cluster.map(str::to_string),
            engine: None,
            data_dir: None,
            definitions: Vec::new(),
            as_of,
            show: 10,
            color: false,
            counter: 0,
        };
        if let Some(dir) = data {
            s.load_data(dir)?;
        }
        Ok(s)
    }

    fn load_data(&mut self, dir: &Path) -> Result<String, String> {
        let engine = match &self.cluster {
            None => Engine::open_for_queries(dir),
            Some(url) => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| crate::DataError::new(e.to_string()))
                .and_then(|rt| {
                    rt.block_on(Engine::open_on_cluster(
                        dir,
                        url,
                        std::time::Duration::from_secs(5),
                    ))
                }),
        }
        .map_err(|e| e.to_string())?;
        let files = engine.data().event_files.len();
        self.engine = Some(engine);
        self.data_dir = Some(dir.to_path_buf());
        let place = match &self.cluster {
            Some(url) => format!(", queries run on {url}"),
            None => String::new(),
        };
        Ok(format!(
            "loaded {} ({files} events files{place})",
            dir.display()
        ))
    }

    /// The evaluation instant for the next query.
    pub fn as_of(&self) -> DateTime<Utc> {
        self.as_of.unwrap_or_else(Utc::now)
    }

    /// The engine, when data is loaded.
    pub fn engine(&self) -> Option<&Engine> {
        self.engine.as_ref()
    }

    /// The names defined so far.
    pub fn segment_names(&self) -> Vec<&str> {
        self.definitions.iter().map(|d| d.name.as_str()).collect()
    }

    /// Compiles `input` (a definition or an expression, typed or read from
    /// the file `file`) with the session's definitions; a definition of an
    /// existing name replaces it. On success the input's definitions are
    /// kept. Each diagnostic is shown in the input it points into: the one
    /// just typed, or an earlier one whose definition the new input breaks
    /// (a cycle, say). Warnings in earlier inputs were shown with them.
    fn compile(
        &mut self,
        input: &str,
        file: Option<&str>,
    ) -> Result<(crate::Program, Option<String>), Reply> {
        let parsed = crate::parse(input);
        let new: Vec<String> = parsed
            .script
            .definitions
            .iter()
            .map(|d| d.name.name.clone())
            .collect();
        let is_definition = !new.is_empty();
        let kept: Vec<Definition> = self
            .definitions
            .iter()
            .filter(|d| !new.contains(&d.name))
            .cloned()
            .collect();
        self.counter += 1;
        let name: Arc<str> = match file {
            Some(f) => f.into(),
            None => format!("input#{}", self.counter).into(),
        };
        let input_text: Arc<str> = input.into();
        let mut sources = Sources::default();
        for d in &kept {
            sources.push(&d.input, &d.input_text, d.range.clone());
            sources.glue(";\n");
        }
        if !is_definition {
            sources.glue(&format!("segment {QUERY} = "));
        }
        let offset = sources.text().len();
        sources.push(&name, input, 0..input.len());
        sources.glue("\n");

        let (program, diagnostics) =
            match crate::compile(sources.text(), self.engine.as_ref().map(Engine::objects)) {
                Ok(c) => (Some(c.program), c.warnings),
                Err(d) => (None, d),
            };
        let shown: Vec<Diagnostic> = diagnostics
            .into_iter()
            .filter(|d| d.span.start >= offset || d.severity == Severity::Error)
            .collect();
        let rendered = sources.render(&shown, self.color);
        let codes = shown.iter().map(|d| d.code.as_str()).collect();
        let Some(program) = program else {
            return Err(Reply {
                diagnostics: if rendered.is_empty() {
                    "error: the input does not compile\n".to_string()
                } else {
                    rendered
                },
                codes,
                failed: true,
                ..Reply::default()
            });
        };
        if is_definition {
            self.definitions = kept;
            for def in parsed.script.definitions {
                let text = input[def.span.clone()].trim_end().trim_end_matches(';');
                self.definitions.push(Definition {
                    name: def.name.name,
                    input: Arc::clone(&name),
                    input_text: Arc::clone(&input_text),
                    range: def.span.start..def.span.start + text.len(),
                });
            }
        }
        Ok((program, (!rendered.is_empty()).then_some(rendered)))
    }

    /// Handles one complete input. A query that needs running comes back as
    /// `Ok(Query)`; everything else as a reply.
    pub fn prepare(&mut self, input: &str) -> Result<Query, Reply> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(Reply::default());
        }
        if trimmed.starts_with(':') {
            return self.meta(trimmed);
        }
        let (program, warnings) = self.compile(trimmed, None)?;
        let warnings = warnings.unwrap_or_default();
        match program.index_of(QUERY) {
            Some(segment) => {
                if self.engine.is_none() {
                    return Err(Reply {
                        failed: true,
                        diagnostics: warnings
                            + "no data loaded: use :data DIR (or start with --data DIR)\n",
                        ..Reply::default()
                    });
                }
                Ok(Query {
                    program,
                    segment,
                    as_of: self.as_of(),
                })
            }
            None => Err(Reply {
                text: format!("defined: {}\n", self.segment_names().join(", ")),
                diagnostics: warnings,
                ..Reply::default()
            }),
        }
    }

    /// Formats a query's result: the count, the first ids, the time.
    pub fn format_result(&self, ids: &[i64], elapsed: Duration) -> String {
        let shown: Vec<String> = ids.iter().take(self.show).map(i64::to_string).collect();
        let more = if ids.len() > self.show { ", …" } else { "" };
        format!(
            "{} profiles{}{} ({:.1} ms)\n",
            ids.len(),
            if shown.is_empty() {
                String::new()
            } else {
                format!(": {}", shown.join(", "))
            },
            more,
            elapsed.as_secs_f64() * 1000.0
        )
    }

    /// Runs a query to the end (the terminal front end runs it cancellably).
    pub fn run_blocking(&self, q: &Query) -> Reply {
        let Some(engine) = &self.engine else {
            return Reply::text("no data loaded\n");
        };
        let started = std::time::Instant::now();
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                return Reply {
                    failed: true,
                    diagnostics: format!("error: {e}\n"),
                    ..Reply::default()
                }
            }
        };
        match rt.block_on(engine.run(&q.program, q.segment, q.as_of)) {
            Ok(ids) => Reply::text(self.format_result(&ids, started.elapsed())),
            Err(e) => Reply {
                failed: true,
                diagnostics: format!("error: {e}\n"),
                ..Reply::default()
            },
        }
    }

    /// Handles an input to the end, running queries without cancellation.
    pub fn eval(&mut self, input: &str) -> Reply {
        match self.prepare(input) {
            Ok(q) => self.run_blocking(&q),
            Err(reply) => reply,
        }
    }

    fn meta(&mut self, input: &str) -> Result<Query, Reply> {
        Err(match meta(input) {
            Meta::Help => Reply::text(HELP),
            Meta::Catalog => Reply::text(catalog_table()),
            Meta::Quit => Reply {
                quit: true,
                ..Reply::default()
            },
            Meta::Segments => Reply::text(if self.definitions.is_empty() {
                "no segments defined\n".to_string()
            } else {
                self.definitions
                    .iter()
                    .map(|d| format!("{};\n", d.text()))
                    .collect()
            }),
            Meta::Show(n) => match n.parse::<usize>() {
                Ok(n) => {
                    self.show = n;
                    Reply::text(format!("queries show {n} ids\n"))
                }
                Err(_) => Reply::text(format!("queries show {} ids (`:show N` to change)\n", self.show)),
            },
            Meta::AsOf("") => Reply::text(match self.as_of {
                Some(t) => format!("as of {}\n", t.to_rfc3339()),
                None => "as of now\n".to_string(),
            }),
            Meta::AsOf("now") => {
                self.as_of = None;
                Reply::text("as of now\n")
            }
            Meta::AsOf(t) => match crate::syntax::literal::parse_datetime(t) {
                Some(t) => {
                    self.as_of = Some(t);
                    Reply::text(format!("as of {}\n", t.to_rfc3339()))
                }
                None => Reply {
                    failed: true,
 diagnostics: format!("error: invalid date-time `{t}` (write 2026-01-31 or 2026-01-31T10:00:00Z)\n"),
                    ..Reply::default()
                },
            },
            Meta::Data("") => Reply::text(match &self.data_dir {
                Some(d) => format!("data: {}\n", d.display()),
                None => "no data loaded (`:data DIR`)\n".to_string(),
            }),
            Meta::Data(dir) => match self.load_data(Path::new(dir)) {
                Ok(msg) => Reply::text(msg + "\n"),
                Err(e) => Reply {
                    failed: true,
 diagnostics: format!("error: {e}\n"),
                    ..Reply::default()
                },
            },
            Meta::Load(file) => match std::fs::read_to_string(file) {
                Ok(text) => {
                    let parsed = crate::parse(&text);
                    if parsed.script.expr.is_some() && parsed.script.definitions.is_empty() {
                        // A bare expression script: run it.
                        return self.prepare(&text);
                    }
                    match self.compile(&text, Some(file)) {
                        Ok((_, warnings)) => Reply {
                            text: format!("defined: {}\n", self.segment_names().join(", ")),
                            diagnostics: warnings.unwrap_or_default(),
                            ..Reply::default()
                        },
                        Err(r) => r,
                    }
                }
                Err(e) => Reply {
                    failed: true,
 diagnostics: format!("error: cannot read {file}: {e}\n"),
                    ..Reply::default()
                },
            },
            Meta::Plan("") => Reply::text("usage: :plan EXPR\n"),
            Meta::Plan(expr) => {
                let (program, _) = self.compile(expr, None)?;
                let Some(engine) = &self.engine else {
                    return Err(Reply::text("no data loaded: use :data DIR\n"));
                };
                let segment = program.index_of(QUERY).unwrap_or(program.segments.len().saturating_sub(1));
                match engine.optimized_plan(&program, segment, self.as_of()) {
                    Ok(p) => Reply::text(format!("{}\n", p.display_indent())),
                    Err(e) => Reply {
                        failed: true,
 diagnostics: format!("error: {e}\n"),
                        ..Reply::default()
                    },
                }
            }
            Meta::Sql("") => Reply::text("usage: :sql EXPR [datafusion|duckdb|postgres|sqlite|mysql]\n"),
            Meta::Sql(input) => {
                // A trailing dialect name, unless it is all there is.
                let (expr, dialect) = match input.rsplit_once(char::is_whitespace) {
                    Some((expr, last)) => match last.parse::<Dialect>() {
                        Ok(d) if !expr.trim().is_empty() => (expr.trim(), d),
                        _ => (input, Dialect::DataFusion),
                    },
                    None => (input, Dialect::DataFusion),
                };
                let (program, _) = self.compile(expr, None)?;
                let segment = program.index_of(QUERY).unwrap_or(program.segments.len().saturating_sub(1));
                let options = match &self.engine {
                    Some(e) => SqlOptions::for_data(dialect, e.data(), e.objects()),
                    None => SqlOptions::new(dialect),
                };
                match segment_sql(&program, segment, self.as_of(), &options) {
                    Ok(sql) => Reply::text(format!("{sql};\n")),
                    Err(e) => Reply {
                        failed: true,
 diagnostics: format!("error: {e}\n"),
                        ..Reply::default()
                    },
                }
            }
            Meta::Unknown(cmd) => {
                let known = ["help", "catalog", "plan", "sql", "as-of", "data", "load", "segments", "show", "quit"];
                let hint = diagnostic::did_you_mean(cmd, known)
                    .map(|k| format!(" (did you mean :{k}?)"))
                    .unwrap_or_default();
                Reply {
                    failed: true,
 diagnostics: format!("error: unknown command :{cmd}{hint}; :help lists them\n"),
                    ..Reply::default()
                }
            }
        })
    }

    /// Completion candidates for the word that ends at `pos` in `line`:
    /// (start of the word, candidates).
    pub fn complete(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let pos = pos.min(line.len());
        let before = &line[..pos];
        // Inside a string: campaign names or tags of the loaded data.
        if let Some(found) = complete_string(before, self.engine.as_ref().map(Engine::objects)) {
            return found;
        }
        let start = before
            .rfind(|c: char| {
                !(c.is_ascii_alphanumeric()
                    || c == '_'
                    || c == '.'
                    || c == ':'
                    || c == '*'
                    || c == '-')
            })
            .map_or(0, |i| i + 1);
        let word = &before[start..];
        if word.starts_with(':') {
            let cmds = [
                ":help",
                ":catalog",
                ":plan",
                ":sql",
                ":as-of",
                ":data",
                ":load",
                ":segments",
                ":show",
                ":quit",
            ];
            return (
                start,
                cmds.iter()
                    .filter(|c| c.starts_with(word))
                    .map(|c| c.to_string())
                    .collect(),
            );
        }
        let objects = self.engine.as_ref().map(Engine::objects);
        if let Some(keys) = complete_attribute_key(before, start, objects) {
            return (start, keys);
        }
        complete_words(before, start, &self.segment_names())
    }
}

/// Inside a string (`before` has an odd number of quotes): the campaign or
/// template names, or tags, of `objects` that start with what is typed,
/// each with its closing quote, and where the string's text starts. `None`
/// outside a string.
pub fn complete_string(
    before: &str,
    objects: Option<&crate::ObjectIndex>,
) -> Option<(usize, Vec<String>)> {
    if before.matches('"').count().is_multiple_of(2) {
        return None;
    }
    let quote = before.rfind('"').unwrap_or(0);
    let typed = &before[quote + 1..];
    let context = before[..quote].to_lowercase();
    let Some(objects) = objects else {
        return Some((before.len(), Vec::new()));
    };
    let kind = scoped(&context, objects);
    let pool: Vec<&String> = if let Some(key) = attribute_before(&before[..quote]) {
        // `where key = "…`: the values of that key.
        kind.attributes
            .get(key)
            .map_or(Vec::new(), |v| v.keys().collect())
    } else if context.contains("tagged") {
        kind.tags.keys().collect()
    } else {
        kind.names.keys().collect()
    };
    let found = pool
        .into_iter()
        .filter(|n| n.starts_with(typed))
        .map(|n| format!("{n}\""))
        .collect();
    Some((quote + 1, found))
}

/// The attribute keys of the data (of campaigns, or of templates after `in
/// templates`/`in messages`) for the word at `start..` of `before`, where a
/// key goes: after `where`, `where (`, or `and` inside `where ( … )`.
/// `None` elsewhere. The REPL and the language server share it.
pub fn complete_attribute_key(
    before: &str,
    start: usize,
    objects: Option<&crate::ObjectIndex>,
) -> Option<Vec<String>> {
    let head = before[..start].trim_end();
    let lower = head.to_lowercase();
    let after_where = lower.ends_with("where") || lower.ends_with("where (");
    // `where (a = "x" and …`: another key after `and`, inside the parentheses.
    let open = lower
        .rfind("where (")
        .filter(|&w| !lower[w..].contains(')'));
    let after_and = open.is_some() && lower.ends_with(" and");
    if !(after_where || after_and) {
        return None;
    }
    let kind = scoped(&lower, objects?);
    let typed = &before[start..];
    Some(
        kind.attributes
            .keys()
            .filter(|k| k.starts_with(typed))
            .cloned()
            .collect(),
    )
}

/// The objects a selector in `context` (lower case, the text before it)
/// is about: templates after `in templates` or `in messages`, else
/// campaigns.
fn scoped<'a>(context: &str, objects: &'a crate::ObjectIndex) -> &'a crate::check::Objects {
    if context.contains("in templates") || context.contains("in messages") {
        &objects.templates
    } else {
        &objects.campaigns
    }
}

/// The attribute key of `… where key =` (or `!=`) that `head` ends with.
fn attribute_before(head: &str) -> Option<&str> {
    let head = head.trim_end();
    let head = head
        .strip_suffix("!=")
        .or_else(|| head.strip_suffix('='))?
        .trim_end();
    let start = head
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let key = &head[start..];
    let lower = head.to_lowercase();
    (!key.is_empty() && lower.contains("where")).then_some(key)
}

/// Completions of the word that ends `before` and starts at `start`:
/// channels after `event.`, the keys after `same`, otherwise keywords,
/// events (with their dot) and the segment `names`. The REPL and the
/// language server share it.
pub fn complete_words(before: &str, start: usize, names: &[&str]) -> (usize, Vec<String>) {
    let word = &before[start..];
    if let Some((event, typed)) = word.split_once('.') {
        let Some(e) = Event::from_name(event) else {
            return (before.len(), Vec::new());
        };
        let mut out: Vec<String> = e
            .channels()
            .map(|c| c.name())
            .chain(["*"])
            .filter(|c| c.starts_with(typed))
            .map(|c| format!("{event}.{c}"))
            .collect();
        out.sort();
        return (start, out);
    }
    let lower = word.to_lowercase();
    // After `same`, only the keys (not reserved words elsewhere).
    let previous = before[..start].split_whitespace().next_back();
    if previous.is_some_and(|w| w.eq_ignore_ascii_case("same")) {
        let keys = ["message", "campaign", "template"];
        return (
            start,
            keys.iter()
                .filter(|k| k.starts_with(&lower))
                .map(|k| k.to_string())
                .collect(),
        );
    }
    let mut out: Vec<String> = KEYWORDS
        .iter()
        .copied()
        .chain(catalog::event_names())
        .filter(|k| k.starts_with(&lower))
        .map(|k| {
            if Event::from_name(k).is_some() {
                format!("{k}.")
            } else {
                k.to_string()
            }
        })
        .chain(
            names
                .iter()
                .copied()
                .filter(|n| n.starts_with(word))
                .map(str::to_string),
        )
        .collect();
    out.sort();
    out.dedup();
    (start, out)
}

/// The catalog as a compact table for the terminal.
pub fn catalog_table() -> String {
    let short = [
        "email", "sms", "push", "tg_bot", "tg_grp", "max_bot", "max_grp", "whatsapp", "viber", "vk",
    ];
    let mut out = format!("{:<24}", "event");
    for s in short {
        out.push_str(&format!("{s:>9}"));
    }
    out.push('\n');
    for info in &catalog::EVENTS {
        out.push_str(&format!("{:<24}", info.name));
        for c in catalog::CHANNELS {
            out.push_str(&format!(
                "{:>9}",
                if info.channels.contains(&c) {
                    "✓"
                } else {
                    "·"
                }
            ));
        }
        out.push('\n');
    }
    out.push_str("(tg = telegram, grp = group, vk = vk_notify)\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_commands_have_aliases() {
        assert_eq!(meta(":q"), Meta::Quit);
        assert_eq!(meta(":quit"), Meta::Quit);
        assert_eq!(
            meta(":p click.email exists"),
            Meta::Plan("click.email exists")
        );
        assert_eq!(meta(":as-of 2026-01-01"), Meta::AsOf("2026-01-01"));
        assert_eq!(meta(":frob"), Meta::Unknown("frob"));
    }

    #[test]
    fn completion_after_the_dot_offers_only_the_events_channels() {
        let s = Session::new(None, None).unwrap();
        let (start, c) = s.complete("x or opened.", 12);
        assert_eq!(start, 5);
        assert_eq!(
            c,
            vec!["opened.*", "opened.email", "opened.push", "opened.sms"]
        );
        let (_, c) = s.complete("cli", 3);
        assert_eq!(c, vec!["click."]);
        let (_, c) = s.complete("click.email at_l", 16);
        assert_eq!(c, vec!["at_least"]);
        let (_, c) = s.complete(":he", 3);
        assert_eq!(c, vec![":help"]);
        // SPEC §10: the new keywords, and the keys after `same`.
        let (_, c) = s.complete("opened.email th", 15);
        assert_eq!(c, vec!["then"]);
        let (_, c) = s.complete("click.email last", 16);
        assert_eq!(c, vec!["last", "last_seen"]);
        let line = "a.email then b.email within 1h same ";
        let (_, c) = s.complete(line, line.len());
        assert_eq!(c, vec!["message", "campaign", "template"]);
        let (_, c) = s.complete("x same Camp", 11);
        assert_eq!(c, vec!["campaign"]);
    }

    #[test]
    fn an_error_in_an_earlier_input_is_shown_there() {
        let mut s = Session::new(None, None).unwrap();
        assert!(!s.eval("segment b = click.email exists;").failed);
        assert!(!s.eval("segment a = b;").failed);
        let r = s.eval("segment b = a");
        assert!(r.failed);
        assert!(r.codes.contains(&"E022"), "{:?}", r.codes);
        // The cycle passes through `a`, typed in the second input.
        assert!(r.diagnostics.contains("input#2"), "{}", r.diagnostics);
        assert!(r.diagnostics.contains("input#3"), "{}", r.diagnostics);
        assert!(
            !r.diagnostics.contains("does not compile"),
            "{}",
            r.diagnostics
        );
        // The session keeps the definitions it had.
        assert_eq!(s.segment_names(), vec!["b", "a"]);
        // A warning of an earlier definition is not shown again.
        let mut s = Session::new(None, None).unwrap();
        let w = s.eval("segment w = sample 100%;");
        assert!(w.diagnostics.contains("W005"), "{}", w.diagnostics);
        let r = s.eval("segment v = w;");
        assert!(r.diagnostics.is_empty(), "{}", r.diagnostics);
        assert_eq!(r.text, "defined: w, v\n");
    }

    #[test]
    fn definitions_persist_and_can_be_replaced() {
        let mut s = Session::new(None, None).unwrap();
        let r = s.eval("segment a = click.email exists;");
        assert_eq!(r.text, "defined: a\n", "{r:?}");
        let r = s.eval("segment b = a and not opened.email exists");
        assert_eq!(r.text, "defined: a, b\n");
        let r = s.eval("segment a = click.sms exists");
        assert_eq!(r.text, "defined: b, a\n", "{r:?}");
        assert_eq!(
            s.complete("segment c = b", 13).1,
            vec!["b", "before", "between"]
        );
    }

    #[test]
    fn diagnostics_point_into_the_input_just_typed() {
        let mut s = Session::new(None, None).unwrap();
        s.eval("segment a = click.email exists;");
        let r = s.eval("clik.email exists");
        assert_eq!(r.codes, vec!["E010"]);
        assert!(r.diagnostics.contains("input#2:1:1"), "{}", r.diagnostics);
        let r = s.eval("a and nope");
        assert_eq!(r.codes, vec!["E020"]);
        assert!(
            r.diagnostics.contains("1 │ a and nope"),
            "{}",
            r.diagnostics
        );
    }

    #[test]
    fn sql_shows_a_segment_in_the_dialect_asked_for() {
        let mut s = Session::new(None, None).unwrap();
        s.eval(":as-of 2026-11-01");
        s.eval(r#"segment bf = click.email at_least 1 in campaigns "Black Friday";"#);
        let r = s.eval(":sql bf and opened.email at_least 2 days last 7d sqlite");
        assert!(r.text.starts_with("SELECT"), "{r:?}");
        assert!(
            r.text.contains("substr(replace(replace(replace(events.ts"),
            "{}",
            r.text
        );
        assert!(r.text.contains("'Black Friday'"), "{}", r.text);
        assert!(r.text.contains("'2026-10-25 00:00:00'"), "{}", r.text);
        // No dialect: DataFusion's; a segment name alone is an expression.
        let r = s.eval(":sql bf");
        assert!(r.text.contains("TIMESTAMP"), "{r:?}");
        let r = s.eval(":sql clik.email exists postgres");
        assert_eq!(r.codes, vec!["E010"]);
        assert!(s.eval(":sql").text.contains("usage"));
    }

    #[test]
    fn queries_without_data_say_how_to_load_it() {
        let mut s = Session::new(None, None).unwrap();
        let r = s.eval("click.email exists");
        assert!(r.diagnostics.contains(":data DIR"));
        assert!(s.eval(":catalog").text.contains("subscription_confirmed"));
        assert!(s.eval(":frob").diagnostics.contains("unknown command"));
        assert!(s.eval(":quit").quit);
    }
}
