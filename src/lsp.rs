//! `seg lsp`: a language server over stdio (the Language Server Protocol,
//! with rust-analyzer's `lsp-server` for the transport).
//!
//! What it offers: diagnostics on open and on every change (incremental
//! sync), with the codes, messages, help and related locations of `seg
//! check`; completion (keywords, events, the channels of the event just
//! typed, segment names); go to definition, find references and rename of
//! segment names; hover (an event's catalog entry, a segment's definition,
//! a window's absolute interval at now);
//! document symbols (the segments); formatting (`seg fmt`).
//! Positions are UTF-16 code units, as the protocol's default says.

use std::collections::HashMap;

use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument,
    Notification as NotificationTrait, PublishDiagnostics,
};
use lsp_types::request::{
    Completion, DocumentSymbolRequest, Formatting, GotoDefinition, HoverRequest, References,
    Rename, Request as RequestTrait,
};
use lsp_types::{
    CompletionItem, CompletionItemKind, CompletionOptions, CompletionParams, CompletionResponse,
    Diagnostic as LspDiagnostic, DiagnosticRelatedInformation, DiagnosticSeverity,
    DidChangeTextDocumentParams, DidCloseTextDocumentParams, DidOpenTextDocumentParams,
    DocumentFormattingParams, DocumentSymbol, DocumentSymbolParams, DocumentSymbolResponse,
    GotoDefinitionParams, GotoDefinitionResponse, Hover, HoverContents, HoverParams,
    HoverProviderCapability, Location, MarkupContent, MarkupKind, NumberOrString, OneOf, Position,
    PublishDiagnosticsParams, Range, ReferenceParams, RenameParams, ServerCapabilities, SymbolKind,
    TextDocumentSyncCapability, TextDocumentSyncKind, TextEdit, Uri, WorkspaceEdit,
};

use crate::diagnostic::{Diagnostic, Severity, Span};
use crate::syntax::ast::{ClauseKind, Expr, ExprKind, Instant, Script, SeqClauseKind, Window};
use chrono::{DateTime, Utc};

/// Runs the server on stdin/stdout until the client says `exit`; the exit
/// code (0 after a `shutdown`, 1 otherwise, as the protocol asks).
pub fn run() -> u8 {
    let (connection, io) = Connection::stdio();
    let code = match serve(&connection) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("seg lsp: {e}");
            1
        }
    };
    drop(connection);
    if let Err(e) = io.join() {
        eprintln!("seg lsp: {e}");
    }
    code
}

fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(
            TextDocumentSyncKind::INCREMENTAL,
        )),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".into()]),
            ..CompletionOptions::default()
        }),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        rename_provider: Some(OneOf::Left(true)),
        document_symbol_provider: Some(OneOf::Left(true)),
        document_formatting_provider: Some(OneOf::Left(true)),
        ..ServerCapabilities::default()
    }
}

/// The main loop; `Ok(true)` when `shutdown` came before `exit`.
fn serve(connection: &Connection) -> Result<bool, Box<dyn std::error::Error>> {
    let caps = serde_json::to_value(capabilities())?;
    let params = connection.initialize(caps)?;
    let mut server = Server::default();
    // `initializationOptions.data`: a data directory whose campaigns,
    // templates and tags complete inside strings.
    if let Some(dir) = params
        .get("initializationOptions")
        .and_then(|o| o.get("data"))
        .and_then(|d| d.as_str())
    {
        match crate::data::load_objects(std::path::Path::new(dir)) {
            Ok(objects) => server.objects = Some(objects),
            Err(e) => eprintln!("seg lsp: {dir}: {e}"),
        }
    }
    for message in &connection.receiver {
        match message {
            Message::Request(req) => {
                if connection.handle_shutdown(&req)? {
                    return Ok(true);
                }
                let response = server.request(req);
                connection.sender.send(Message::Response(response))?;
            }
            Message::Notification(n) => {
                if n.method == "exit" {
                    return Ok(false);
                }
                for out in server.notification(n) {
                    connection.sender.send(Message::Notification(out))?;
                }
            }
            Message::Response(_) => {}
        }
    }
    Ok(false)
}

/// The open documents, each with its syntax tree as of its last change
/// (the requests read it rather than parse again).
#[derive(Default)]
pub struct Server {
    documents: HashMap<Uri, String>,
    parsed: HashMap<Uri, crate::Parsed>,
    /// The dimension tables of the data directory the client named.
    objects: Option<crate::ObjectIndex>,
    /// Without one: per document, those of the data directory its
    /// `seg.toml` names (see [`find_config`]).
    doc_objects: HashMap<Uri, std::sync::Arc<crate::ObjectIndex>>,
    /// Each `seg.toml` read, and what its data directory gave.
    configs: HashMap<std::path::PathBuf, Option<std::sync::Arc<crate::ObjectIndex>>>,
}

impl Server {
    /// Answers a request; an unknown method or bad parameters are errors,
    /// never a panic.
    pub fn request(&mut self, req: Request) -> Response {
        let id = req.id.clone();
        let result = match req.method.as_str() {
            Completion::METHOD => parse::<CompletionParams>(req)
                .map(|p| self.completion(p))
                .and_then(to_value),
            HoverRequest::METHOD => parse::<HoverParams>(req)
                .map(|p| self.hover(p))
                .and_then(to_value),
            GotoDefinition::METHOD => parse::<GotoDefinitionParams>(req)
                .map(|p| self.definition(p))
                .and_then(to_value),
            References::METHOD => parse::<ReferenceParams>(req)
                .map(|p| self.references(p))
                .and_then(to_value),
            Rename::METHOD => parse::<RenameParams>(req).and_then(|p| self.rename(p)),
            DocumentSymbolRequest::METHOD => parse::<DocumentSymbolParams>(req)
                .map(|p| self.symbols(p))
                .and_then(to_value),
            Formatting::METHOD => parse::<DocumentFormattingParams>(req)
                .map(|p| self.format(p))
                .and_then(to_value),
            other => Err((
                ErrorCode::MethodNotFound,
                format!("seg lsp does not answer {other}"),
            )),
        };
        match result {
            Ok(value) => Response::new_ok(id, value),
            Err((code, message)) => Response::new_err(id, code as i32, message),
        }
    }

    /// Applies a notification; returns the diagnostics to publish.
    pub fn notification(&mut self, n: Notification) -> Vec<Notification> {
        match n.method.as_str() {
            DidOpenTextDocument::METHOD => {
                let Ok(p) = n.extract::<DidOpenTextDocumentParams>(DidOpenTextDocument::METHOD)
                else {
                    return Vec::new();
                };
                let uri = p.text_document.uri;
                self.documents.insert(uri.clone(), p.text_document.text);
                self.configure(&uri);
                self.publish(&uri, Some(p.text_document.version))
            }
            DidChangeTextDocument::METHOD => {
                let Ok(p) = n.extract::<DidChangeTextDocumentParams>(DidChangeTextDocument::METHOD)
                else {
                    return Vec::new();
                };
                let uri = p.text_document.uri;
                let Some(text) = self.documents.get_mut(&uri) else {
                    return Vec::new();
                };
                for change in p.content_changes {
                    match change.range {
                        Some(range) => {
                            let start = offset(text, range.start);
                            let end = offset(text, range.end).max(start);
                            text.replace_range(start..end, &change.text);
                        }
                        None => *text = change.text,
                    }
                }
                self.publish(&uri, Some(p.text_document.version))
            }
            DidCloseTextDocument::METHOD => {
                if let Ok(p) = n.extract::<DidCloseTextDocumentParams>(DidCloseTextDocument::METHOD)
                {
                    self.documents.remove(&p.text_document.uri);
                    self.parsed.remove(&p.text_document.uri);
                    // Clear what the editor shows for it.
                    return vec![publish(p.text_document.uri, Vec::new(), None)];
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// The dimension tables that apply to the document `uri`: the
    /// client's data directory, or the one its `seg.toml` names.
    fn objects(&self, uri: &Uri) -> Option<&crate::ObjectIndex> {
        self.objects
            .as_ref()
            .or_else(|| self.doc_objects.get(uri).map(|o| o.as_ref()))
    }

    /// Without `initializationOptions.data`: reads the `seg.toml` nearest
    /// the document (once per file), and loads the data directory it names.
    fn configure(&mut self, uri: &Uri) {
        if self.objects.is_some() {
            return;
        }
        let Some(path) = url::Url::parse(uri.as_str())
            .ok()
            .and_then(|u| u.to_file_path().ok())
        else {
            return;
        };
        let Some(config) = find_config(&path) else {
            return;
        };
        let objects = self
            .configs
            .entry(config.clone())
            .or_insert_with(|| match read_config(&config) {
                Ok(objects) => objects.map(std::sync::Arc::new),
                Err(e) => {
                    eprintln!("seg lsp: {}: {e}", config.display());
                    None
                }
            })
            .clone();
        match objects {
            Some(objects) => self.doc_objects.insert(uri.clone(), objects),
            None => self.doc_objects.remove(uri),
        };
    }

    /// Parses and checks a document after a change; its diagnostics.
    fn publish(&mut self, uri: &Uri, version: Option<i32>) -> Vec<Notification> {
        let Some(text) = self.documents.get(uri) else {
            return Vec::new();
        };
        let parsed = crate::parse(text);
        let found = match crate::compile_parsed(&parsed, self.objects(uri)) {
            Ok(c) => c.warnings,
            Err(d) => d,
        };
        let diagnostics = found.iter().map(|d| to_lsp(uri, text, d)).collect();
        self.parsed.insert(uri.clone(), parsed);
        vec![publish(uri.clone(), diagnostics, version)]
    }

    fn script(&self, uri: &Uri) -> Option<&Script> {
        self.parsed.get(uri).map(|p| &p.script)
    }

    fn text(&self, uri: &Uri) -> Result<&str, (ErrorCode, String)> {
        self.documents.get(uri).map(String::as_str).ok_or_else(|| {
            (
                ErrorCode::InvalidParams,
                format!("{} is not open", uri.as_str()),
            )
        })
    }

    fn completion(&self, p: CompletionParams) -> Option<CompletionResponse> {
        let uri = &p.text_document_position.text_document.uri;
        let text = self.documents.get(uri)?;
        let at = offset(text, p.text_document_position.position);
        let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let before = &text[line_start..at];
        // The labels of one kind, as the response.
        let all_of = |labels: Vec<String>, kind| {
            let items = labels
                .into_iter()
                .map(|label| CompletionItem {
                    label,
                    kind: Some(kind),
                    ..CompletionItem::default()
                })
                .collect();
            Some(CompletionResponse::Array(items))
        };
        if let Some((_, found)) = crate::repl::complete_string(before, self.objects(uri)) {
            return all_of(found, CompletionItemKind::VALUE);
        }
        let start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '*'))
            .map_or(0, |i| i + 1);
        if let Some(keys) = crate::repl::complete_attribute_key(before, start, self.objects(uri)) {
            return all_of(keys, CompletionItemKind::PROPERTY);
        }
        let script = self.script(uri)?;
        let names: Vec<&str> = script
            .definitions
            .iter()
            .map(|d| d.name.name.as_str())
            .collect();
        let (_, words) = crate::repl::complete_words(before, start, &names);
        let items = words
            .into_iter()
            .map(|w| {
                let kind = if names.contains(&w.as_str()) {
                    CompletionItemKind::VARIABLE
                } else if w.contains('.') {
                    CompletionItemKind::EVENT
                } else {
                    CompletionItemKind::KEYWORD
                };
                CompletionItem {
                    label: w,
                    kind: Some(kind),
                    ..CompletionItem::default()
                }
            })
            .collect();
        Some(CompletionResponse::Array(items))
    }

    /// The segment name at a position, with the spans of its definition and
    /// of every use.
    fn occurrences(&self, uri: &Uri, position: Position) -> Option<Occurrences> {
        let text = self.documents.get(uri)?;
        let at = offset(text, position);
        let script = self.script(uri)?;
        let mut names = Vec::new();
        collect_names(script, &mut names);
        // From the syntax tree; in a definition that does not parse, the
        // word under the cursor.
        let name = match names
            .iter()
            .find(|(_, span)| span.start <= at && at <= span.end)
        {
            Some((name, _)) => name.clone(),
            None => word_at(text, at)?,
        };
        let definition = script
            .definitions
            .iter()
            .find(|d| d.name.name == name)
            .map(|d| d.name.span.clone());
        let uses = names
            .into_iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, s)| s)
            .collect();
        Some(Occurrences {
            name,
            definition,
            uses,
        })
    }

    /// An event or channel: its catalog entry; a segment name: its
    /// definition.
    fn hover(&self, p: HoverParams) -> Option<Hover> {
        let uri = &p.text_document_position_params.text_document.uri;
        let text = self.documents.get(uri)?;
        let at = offset(text, p.text_document_position_params.position);
        let is_part = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '*';
        let start = text[..at].rfind(|c: char| !is_part(c)).map_or(0, |i| i + 1);
        let end = text[at..]
            .find(|c: char| !is_part(c))
            .map_or(text.len(), |i| at + i);
        let word = &text[start..end];
        let window = self.script(uri).and_then(|script| window_at(script, at));
        let value = match (window, word.split_once('.')) {
            (Some(window), _) => describe_window(window, Utc::now()),
            (None, Some((event, channel))) => {
                let e = crate::catalog::Event::from_name(event)?;
                let info = e.info();
                // On the channel part: where the event exists.
                let channels: Vec<&str> = e.channels().map(|c| c.name()).collect();
                let on_channel = at > start + event.len();
                let mut v = format!(
                    "**{}**: {}\n\nchannels: {}",
                    e.name(),
                    info.description,
                    channels.join(", ")
                );
                if on_channel && channel != "*" {
                    match crate::catalog::Channel::from_name(channel) {
                        Some(c) if e.exists_in(c) => v.push_str(&format!("\n\n`{channel}`: yes")),
                        _ => v.push_str(&format!("\n\n`{channel}`: not a channel of `{event}`")),
                    }
                }
                v
            }
            (None, None) => {
                let script = self.script(uri)?;
                let d = script.definitions.iter().find(|d| d.name.name == word)?;
                format!("```seg\n{}\n```", text.get(d.span.clone())?.trim_end())
            }
        };
        Some(Hover {
            contents: HoverContents::Markup(MarkupContent {
                kind: MarkupKind::Markdown,
                value,
            }),
            // A window's text is more than the word under the cursor.
            range: window.is_none().then(|| range(text, &(start..end))),
        })
    }

    fn definition(&self, p: GotoDefinitionParams) -> Option<GotoDefinitionResponse> {
        let uri = p.text_document_position_params.text_document.uri;
        let found = self.occurrences(&uri, p.text_document_position_params.position)?;
        let text = self.documents.get(&uri)?;
        let span = found.definition?;
        Some(GotoDefinitionResponse::Scalar(Location::new(
            uri.clone(),
            range(text, &span),
        )))
    }

    fn references(&self, p: ReferenceParams) -> Option<Vec<Location>> {
        let uri = p.text_document_position.text_document.uri;
        let found = self.occurrences(&uri, p.text_document_position.position)?;
        let text = self.documents.get(&uri)?;
        Some(
            found
                .uses
                .iter()
                .filter(|s| p.context.include_declaration || Some(*s) != found.definition.as_ref())
                .map(|s| Location::new(uri.clone(), range(text, s)))
                .collect(),
        )
    }

    // lsp-types' `WorkspaceEdit` is keyed by `Uri`, whose interior cell
    // caches its parse and does not change its hash.
    #[allow(clippy::mutable_key_type)]
    fn rename(&self, p: RenameParams) -> Result<serde_json::Value, (ErrorCode, String)> {
        let uri = p.text_document_position.text_document.uri;
        let text = self.text(&uri)?;
        let Some(found) = self.occurrences(&uri, p.text_document_position.position) else {
            return Err((
                ErrorCode::InvalidParams,
                "no segment name here to rename".into(),
            ));
        };
        let new = p.new_name;
        let parsed = self.parsed.get(&uri);
        if parsed.is_none_or(crate::Parsed::has_errors) {
            // Names in definitions that do not parse would be missed.
            return Err((
                ErrorCode::RequestFailed,
                "fix the syntax errors before renaming".into(),
            ));
        }
        let script = self
            .script(&uri)
            .ok_or_else(|| (ErrorCode::InvalidParams, "not open".to_string()))?;
        if let Some(problem) = bad_name(&new, script) {
            return Err((
                ErrorCode::InvalidParams,
                format!("cannot rename `{}` to `{new}`: {problem}", found.name),
            ));
        }
        let edits = found
            .uses
            .iter()
            .map(|s| TextEdit::new(range(text, s), new.clone()))
            .collect();
        let mut changes = HashMap::new();
        changes.insert(uri, edits);
        to_value(WorkspaceEdit::new(changes))
    }

    #[allow(deprecated)] // DocumentSymbol::deprecated must be written out.
    fn symbols(&self, p: DocumentSymbolParams) -> Option<DocumentSymbolResponse> {
        let text = self.documents.get(&p.text_document.uri)?;
        let script = self.script(&p.text_document.uri)?;
        let symbols = script
            .definitions
            .iter()
            .map(|d| DocumentSymbol {
                name: d.name.name.clone(),
                detail: Some("segment".into()),
                kind: SymbolKind::VARIABLE,
                tags: None,
                deprecated: None,
                range: range(text, &d.span),
                selection_range: range(text, &d.name.span),
                children: None,
            })
            .collect();
        Some(DocumentSymbolResponse::Nested(symbols))
    }

    fn format(&self, p: DocumentFormattingParams) -> Option<Vec<TextEdit>> {
        let text = self.documents.get(&p.text_document.uri)?;
        let formatted = crate::fmt::format(text)?;
        if formatted == *text {
            return Some(Vec::new());
        }
        Some(vec![TextEdit::new(
            range(text, &(0..text.len())),
            formatted,
        )])
    }
}

struct Occurrences {
    name: String,
    definition: Option<Span>,
    /// The definition's name and every reference, in order.
    uses: Vec<Span>,
}

/// The name at `at` when it is not an event, a channel or a keyword.
fn word_at(text: &str, at: usize) -> Option<String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let start = text[..at].rfind(|c: char| !is_name(c)).map_or(0, |i| i + 1);
    let end = text[at..]
        .find(|c: char| !is_name(c))
        .map_or(text.len(), |i| at + i);
    let word = &text[start..end];
    let dotted = text[..start].ends_with('.') || text[end..].starts_with('.');
    let keyword = crate::syntax::literal::KEYWORDS.contains(&word.to_lowercase().as_str());
    let named = word
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    (named && !dotted && !keyword).then(|| word.to_string())
}

/// Why `name` cannot be a new segment name in `script`, if it cannot.
fn bad_name(name: &str, script: &Script) -> Option<String> {
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Some("not a name (letters, digits and `_`, not starting with a digit)".into());
    }
    let lower = name.to_lowercase();
    if crate::syntax::literal::KEYWORDS.contains(&lower.as_str()) {
        return Some("it is a keyword".into());
    }
    if script.definitions.iter().any(|d| d.name.name == name) {
        return Some("a segment of that name exists".into());
    }
    None
}

/// The `seg.toml` in the directory of `script` or the nearest one above.
fn find_config(script: &std::path::Path) -> Option<std::path::PathBuf> {
    script
        .ancestors()
        .skip(1)
        .map(|dir| dir.join("seg.toml"))
        .find(|p| p.is_file())
}

/// The dimension tables of the data directory a `seg.toml` names
/// (`data = "DIR"`, relative to the file, or an object-store URL); `None`
/// when it names none.
fn read_config(config: &std::path::Path) -> Result<Option<crate::ObjectIndex>, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct SegToml {
        data: Option<String>,
    }
    let text = std::fs::read_to_string(config).map_err(|e| e.to_string())?;
    let parsed: SegToml = toml::from_str(&text).map_err(|e| e.to_string())?;
    let Some(data) = parsed.data else {
        return Ok(None);
    };
    let data = std::path::PathBuf::from(data);
    let data = match crate::data::remote::url_of(&data) {
        Some(_) => data,
        None => config
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join(data),
    };
    crate::data::load_objects(&data)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// The window clause whose text holds the byte offset `at`.
fn window_at(script: &Script, at: usize) -> Option<&Window> {
    fn walk<'a>(e: &'a Expr, out: &mut Vec<(&'a Window, &'a Span)>) {
        match &e.kind {
            ExprKind::Or(items) | ExprKind::And(items) => items.iter().for_each(|i| walk(i, out)),
            ExprKind::Not(inner) => walk(inner, out),
            ExprKind::Condition(c) => out.extend(c.clauses.iter().filter_map(|c| match &c.kind {
                ClauseKind::Window(w) => Some((w, &c.span)),
                _ => None,
            })),
            ExprKind::Sequence(s) => out.extend(s.clauses.iter().filter_map(|c| match &c.kind {
                SeqClauseKind::Window(w) => Some((w, &c.span)),
                _ => None,
            })),
            ExprKind::Ref(_) | ExprKind::Sample(_) => {}
        }
    }
    let mut windows = Vec::new();
    for d in &script.definitions {
        walk(&d.expr, &mut windows);
    }
    if let Some(e) = &script.expr {
        walk(e, &mut windows);
    }
    windows
        .into_iter()
        .find(|(_, span)| span.start <= at && at < span.end)
        .map(|(w, _)| w)
}

/// A window as the absolute interval it is at `as_of` (SPEC §4: `last D`
/// counts events after as_of − D; `between A and B` from A, inclusive, to
/// B, exclusive; `since A` from A on; `before B` up to B, exclusive).
fn describe_window(w: &Window, as_of: DateTime<Utc>) -> String {
    let instant = |i: &Instant| -> Option<DateTime<Utc>> {
        match i {
            Instant::At(t, _) => *t,
            Instant::Ago(d, _) => {
                as_of.checked_sub_signed(chrono::TimeDelta::try_seconds(d.seconds?)?)
            }
        }
    };
    let show = |t: Option<DateTime<Utc>>| {
        t.map_or("(malformed)".to_string(), |t| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
    };
    let interval = match w {
        Window::Last(d) => {
            let start = d
                .seconds
                .and_then(chrono::TimeDelta::try_seconds)
                .and_then(|d| as_of.checked_sub_signed(d));
            format!("`{} < ts`", show(start))
        }
        Window::Between(a, b) => format!("`{} <= ts < {}`", show(instant(a)), show(instant(b))),
        Window::Since(a) => format!("`{} <= ts`", show(instant(a))),
        Window::Before(b) => format!("`ts < {}`", show(instant(b))),
    };
    format!(
        "**window** {interval}\n\nat as_of {} (now; `seg run --as-of` evaluates at another instant)",
        show(Some(as_of))
    )
}

/// Every segment name in the script: definitions and references, in order.
fn collect_names(script: &Script, out: &mut Vec<(String, Span)>) {
    fn walk(e: &Expr, out: &mut Vec<(String, Span)>) {
        match &e.kind {
            ExprKind::Or(items) | ExprKind::And(items) => items.iter().for_each(|i| walk(i, out)),
            ExprKind::Not(inner) => walk(inner, out),
            ExprKind::Ref(id) => out.push((id.name.clone(), id.span.clone())),
            ExprKind::Condition(_) | ExprKind::Sequence(_) | ExprKind::Sample(_) => {}
        }
    }
    for d in &script.definitions {
        out.push((d.name.name.clone(), d.name.span.clone()));
        walk(&d.expr, out);
    }
    if let Some(e) = &script.expr {
        walk(e, out);
    }
}

fn publish(uri: Uri, diagnostics: Vec<LspDiagnostic>, version: Option<i32>) -> Notification {
    Notification::new(
        PublishDiagnostics::METHOD.to_string(),
        PublishDiagnosticsParams {
            uri,
            diagnostics,
            version,
        },
    )
}

fn to_lsp(uri: &Uri, text: &str, d: &Diagnostic) -> LspDiagnostic {
    let mut message = d.message.clone();
    if let Some(help) = &d.help {
        message.push_str("\nhelp: ");
        message.push_str(help);
    }
    let related: Vec<DiagnosticRelatedInformation> = d
        .secondary
        .iter()
        .map(|l| DiagnosticRelatedInformation {
            location: Location::new(uri.clone(), range(text, &l.span)),
            message: l.message.clone(),
        })
        .collect();
    LspDiagnostic {
        range: range(text, &d.span),
        severity: Some(match d.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(d.code.as_str().to_string())),
        source: Some("seg".into()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        ..LspDiagnostic::default()
    }
}

type RequestResult<T> = Result<T, (ErrorCode, String)>;

fn parse<P: serde::de::DeserializeOwned>(req: Request) -> RequestResult<P> {
    serde_json::from_value(req.params).map_err(|e| (ErrorCode::InvalidParams, e.to_string()))
}

fn to_value<T: serde::Serialize>(v: T) -> RequestResult<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| (ErrorCode::InternalError, e.to_string()))
}

/// The byte offset of a UTF-16 position (clamped to the text).
pub fn offset(text: &str, p: Position) -> usize {
    let mut line_start = 0;
    for _ in 0..p.line {
        match text[line_start..].find('\n') {
            Some(i) => line_start += i + 1,
            None => return text.len(),
        }
    }
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let mut units = 0u32;
    for (i, c) in text[line_start..line_end].char_indices() {
        if units >= p.character {
            return line_start + i;
        }
        units += c.len_utf16() as u32;
    }
    line_end
}

/// The UTF-16 position of a byte offset.
pub fn position(text: &str, offset: usize) -> Position {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() as u32;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let character = before[line_start..].encode_utf16().count() as u32;
    Position::new(line, character)
}

fn range(text: &str, span: &Span) -> Range {
    Range::new(position(text, span.start), position(text, span.end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_utf16_units() {
        let text = "ab\né𝄞x\n";
        // `x` is after é (1 unit) and 𝄞 (2 units).
        assert_eq!(offset(text, Position::new(1, 3)), 3 + 2 + 4);
        assert_eq!(position(text, 3 + 2 + 4), Position::new(1, 3));
        assert_eq!(offset(text, Position::new(9, 0)), text.len());
        assert_eq!(offset(text, Position::new(0, 99)), 2);
    }

    #[test]
    fn a_new_name_must_be_a_free_name() {
        let text = crate::parse("segment a = click.email exists;\nsegment b = a;").script;
        let text = &text;
        assert!(bad_name("and", text).unwrap().contains("keyword"));
        assert!(bad_name("b", text).unwrap().contains("exists"));
        assert!(bad_name("1x", text).is_some());
        assert_eq!(bad_name("c", text), None);
    }
}
