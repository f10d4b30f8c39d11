//! `seg lsp` driven over stdio with JSON-RPC, as an editor drives it.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::seg;

struct Client {
    child: Child,
    stdin: ChildStdin,
    messages: Receiver<Value>,
    next_id: i64,
}

impl Client {
    fn start() -> Client {
        Client::start_with(json!({"capabilities": {}}))
    }

    fn start_with(initialize: Value) -> Client {
        let mut child = seg()
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start seg lsp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, messages) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut length = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(n) = line.strip_prefix("Content-Length: ") {
                        length = n.parse::<usize>().ok();
                    }
                }
                let mut body = vec![0; length.expect("Content-Length")];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                let value: Value = serde_json::from_slice(&body).expect("JSON");
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        let mut client = Client {
            child,
            stdin,
            messages,
            next_id: 0,
        };
        let init = client.request("initialize", initialize);
        assert!(
            init["result"]["capabilities"]["renameProvider"] == json!(true),
            "{init}"
        );
        client.notify("initialized", json!({}));
        client
    }

    fn send(&mut self, message: Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("write");
        self.stdin.flush().expect("flush");
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    fn recv(&self) -> Value {
        self.messages
            .recv_timeout(Duration::from_secs(20))
            .expect("an answer within 20 s")
    }

    /// Sends a request and returns its response (notifications before it
    /// are skipped).
    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let m = self.recv();
            if m["id"] == json!(id) {
                return m;
            }
        }
    }

    /// Opens the document `uri` (version 1) with `text`.
    fn open(&mut self, uri: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "seg", "version": 1, "text": text}}),
        );
    }

    /// The next diagnostics published.
    fn diagnostics(&self) -> Value {
        loop {
            let m = self.recv();
            if m["method"] == json!("textDocument/publishDiagnostics") {
                return m["params"].clone();
            }
        }
    }

    fn finish(mut self) {
        let r = self.request("shutdown", Value::Null);
        assert!(r.get("error").is_none(), "{r}");
        self.notify("exit", Value::Null);
        let status = self.child.wait().expect("wait");
        assert_eq!(status.code(), Some(0));
    }
}

const URI: &str = "file:///tmp/s.seg";

fn at(line: u32, character: u32) -> Value {
    json!({"textDocument": {"uri": URI}, "position": {"line": line, "character": character}})
}

#[test]
fn diagnostics_follow_every_change() {
    let mut c = Client::start();
    let text = "segment a = clik.email exists;\nsegment b = a and opened.email exists;\n";
    c.open(URI, text);
    let d = c.diagnostics();
    assert_eq!(d["diagnostics"][0]["code"], json!("E010"), "{d}");
    assert_eq!(
        d["diagnostics"][0]["range"]["start"],
        json!({"line": 0, "character": 12})
    );
    assert!(
        d["diagnostics"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("click"),
        "{d}"
    );
    // Fix the typo with an incremental change: insert `c` after `cli`.
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": URI, "version": 2},
               "contentChanges": [{"range": {"start": {"line": 0, "character": 15},
                                             "end": {"line": 0, "character": 15}},
                                   "text": "c"}]}),
    );
    let d = c.diagnostics();
    assert_eq!(d["diagnostics"], json!([]), "{d}");
    assert_eq!(d["version"], json!(2));
    // A cycle: E022 with the other end as related information.
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": URI, "version": 3},
               "contentChanges": [{"text": "segment a = b;\nsegment b = a;\n"}]}),
    );
    let d = c.diagnostics();
    assert_eq!(d["diagnostics"][0]["code"], json!("E022"), "{d}");
    assert!(d["diagnostics"][0]["relatedInformation"].is_array(), "{d}");
    c.finish();
}

#[test]
fn completion_definition_references_rename_symbols_and_formatting() {
    let mut c = Client::start();
    let text = "segment engaged = opened.email exists;\nsegment target = engaged and click.\n";
    c.open(URI, text);
    let _ = c.diagnostics();

    // After `click.`: only click's channels.
    let r = c.request("textDocument/completion", at(1, 35));
    let labels: Vec<&str> = r["result"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["label"].as_str())
        .collect();
    assert!(labels.contains(&"click.email"), "{labels:?}");
    assert!(labels.iter().all(|l| l.starts_with("click.")), "{labels:?}");
    // A segment name among the words.
    let r = c.request("textDocument/completion", at(1, 20));
    assert!(r.to_string().contains("\"engaged\""), "{r}");

    // `engaged` used on line 1 (which does not parse yet) is defined on
    // line 0.
    let r = c.request("textDocument/definition", at(1, 19));
    assert_eq!(
        r["result"]["range"]["start"],
        json!({"line": 0, "character": 8}),
        "{r}"
    );
    let mut rename = at(0, 10);
    rename["newName"] = json!("active");
    let r = c.request("textDocument/rename", rename);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("syntax"),
        "{r}"
    );
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": URI, "version": 2},
               "contentChanges": [{"range": {"start": {"line": 1, "character": 35},
                                             "end": {"line": 1, "character": 35}},
                                   "text": "email exists;"}]}),
    );
    assert_eq!(c.diagnostics()["diagnostics"], json!([]));
    let mut refs = at(1, 19);
    refs["context"] = json!({"includeDeclaration": true});
    let r = c.request("textDocument/references", refs);
    assert_eq!(r["result"].as_array().map(Vec::len), Some(2), "{r}");

    // Rename: refused for a keyword or a taken name, else every occurrence.
    let mut rename = at(0, 10);
    rename["newName"] = json!("and");
    let r = c.request("textDocument/rename", rename.clone());
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("keyword"),
        "{r}"
    );
    rename["newName"] = json!("target");
    let r = c.request("textDocument/rename", rename.clone());
    assert!(r["error"].is_object(), "{r}");
    rename["newName"] = json!("active");
    let r = c.request("textDocument/rename", rename);
    let edits = r["result"]["changes"][URI]
        .as_array()
        .expect("edits")
        .clone();
    assert_eq!(edits.len(), 2, "{r}");
    assert!(edits.iter().all(|e| e["newText"] == json!("active")));

    let r = c.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": URI}}),
    );
    let names: Vec<&str> = r["result"]
        .as_array()
        .expect("symbols")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, vec!["engaged", "target"]);

    // Formatting: no edit while the text has a syntax error; then the
    // canonical layout.
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": URI, "version": 3},
               "contentChanges": [{"text": "segment a = click."}]}),
    );
    let _ = c.diagnostics();
    let r = c.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": URI}, "options": {"tabSize": 4, "insertSpaces": true}}),
    );
    assert_eq!(r["result"], Value::Null, "{r}");
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": URI, "version": 4},
               "contentChanges": [{"text": "SEGMENT a=click.email   EXISTS"}]}),
    );
    let _ = c.diagnostics();
    let r = c.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": URI}, "options": {"tabSize": 4, "insertSpaces": true}}),
    );
    assert_eq!(
        r["result"][0]["newText"],
        json!("segment a = click.email exists;\n"),
        "{r}"
    );

    // Malformed and unknown requests are answered with errors, not a crash.
    let r = c.request("textDocument/definition", json!({"nonsense": 1}));
    assert!(r["error"].is_object(), "{r}");
    let r = c.request("textDocument/typeDefinition", at(0, 0));
    assert!(r["error"].is_object(), "{r}");
    c.finish();
}

#[test]
fn with_a_data_directory_names_complete_and_unknown_names_warn() {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data");
    let mut c =
        Client::start_with(json!({"capabilities": {}, "initializationOptions": {"data": data}}));
    let second = "segment b = click.email at_least 1 in campaigns \"Bl";
    let text =
        format!("segment a = click.email at_least 1 in campaigns \"Black Fridya\";\n{second}");
    c.open(URI, &text);
    let d = c.diagnostics();
    assert!(d.to_string().contains("W002"), "{d}");
    let r = c.request("textDocument/completion", at(1, second.len() as u32));
    let labels: Vec<&str> = r["result"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["label"].as_str())
        .collect();
    assert!(labels.contains(&"Black Friday\""), "{labels:?}");
    assert!(labels.iter().all(|l| l.starts_with("Bl")), "{labels:?}");

    // Attribute keys after `where` (of campaigns, or of templates), and a
    // key's values inside the string after it.
    let mut labels_at = |line: &str| -> Vec<String> {
        let text = format!("{text}\n{line}");
        c.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": URI, "version": 2},
                   "contentChanges": [{"text": text}]}),
        );
        c.diagnostics();
        let r = c.request("textDocument/completion", at(2, line.len() as u32));
        let mut labels: Vec<String> = r["result"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"))
            .iter()
            .filter_map(|i| i["label"].as_str().map(str::to_string))
            .collect();
        labels.sort();
        labels
    };
    assert_eq!(
        labels_at("segment c = click.email exists in campaigns where "),
        ["channel", "goal", "region"]
    );
    assert_eq!(
        labels_at("segment c = click.email exists in campaigns where (region = \"EU\" and g"),
        ["goal"]
    );
    assert_eq!(
        labels_at("segment c = opened.email exists in templates where a"),
        ["ab_group"]
    );
    assert_eq!(
        labels_at("segment c = click.email exists in campaigns where region != \""),
        ["APAC\"", "EU\"", "LATAM\"", "US\""]
    );
    c.finish();
}

#[test]
fn hover_shows_catalog_entries_definitions_and_windows() {
    let mut c = Client::start();
    let text = "segment a = click.email at_least 1 last 30d;\n\
                segment b = opened.email exists between 2026-01-01 and 2026-02-01T12:00:00Z;\n\
                segment c = a and b and delivered.sms then click.sms within 1h since 10d ago;\n";
    c.open(URI, text);
    c.diagnostics();
    let hover = |c: &mut Client, line: u32, character: u32| -> String {
        let r = c.request("textDocument/hover", at(line, character));
        r["result"]["contents"]["value"]
            .as_str()
            .unwrap_or_else(|| panic!("no hover at {line}:{character}: {r}"))
            .to_string()
    };
    // An event: its catalog entry; on the channel, whether it exists there.
    let event = hover(&mut c, 0, 13);
    assert!(
        event.starts_with("**click**") && event.contains("channels:"),
        "{event}"
    );
    // A segment name: its definition.
    let definition = hover(&mut c, 2, 12);
    assert!(
        definition.contains("segment a = click.email"),
        "{definition}"
    );
    // Windows: the absolute interval at now.
    let between = hover(&mut c, 1, 40);
    assert!(
        between.contains("`2026-01-01T00:00:00Z <= ts < 2026-02-01T12:00:00Z`"),
        "{between}"
    );
    let last = hover(&mut c, 0, 37);
    let start = last
        .split('`')
        .nth(1)
        .and_then(|s| s.strip_suffix(" < ts"))
        .unwrap_or_else(|| panic!("{last}"));
    let start = chrono::DateTime::parse_from_rfc3339(start).unwrap();
    let expected = chrono::Utc::now() - chrono::TimeDelta::days(30);
    assert!(
        (start.with_timezone(&chrono::Utc) - expected)
            .num_seconds()
            .abs()
            < 120,
        "{last}"
    );
    let since = hover(&mut c, 2, 70);
    assert!(
        since.contains(" <= ts`") && since.contains("as_of"),
        "{since}"
    );
    // Elsewhere (a keyword): no hover, not an error.
    let r = c.request("textDocument/hover", at(0, 26));
    assert!(r["error"].is_null() && r["result"].is_null(), "{r}");
    c.finish();
}

/// Without `initializationOptions.data`, a `seg.toml` beside the script (or
/// in a directory above it) names the data directory, relative to itself.
#[test]
fn a_seg_toml_above_the_script_names_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    std::fs::write(dir.path().join("seg.toml"), "data = \"shop\"\n").unwrap();
    std::os::unix::fs::symlink(format!("{examples}/data"), dir.path().join("shop")).unwrap();
    std::fs::create_dir(dir.path().join("segments")).unwrap();
    let uri = format!("file://{}/segments/s.seg", dir.path().display());
    let mut c = Client::start();
    let text = "click.email at_least 1 in campaigns \"Black Fridya\" last 90d";
    c.open(&uri, text);
    let d = c.diagnostics();
    assert!(
        d.to_string().contains("W002") && d.to_string().contains("Black Friday"),
        "{d}"
    );
    // A script outside that tree: no data, no warning.
    let elsewhere = tempfile::tempdir().unwrap();
    let other = format!("file://{}/t.seg", elsewhere.path().display());
    c.open(&other, text);
    let d = c.diagnostics();
    assert!(!d.to_string().contains("W002"), "{d}");
    // A seg.toml with a key Seg does not know: no data (said on stderr),
    // and the server goes on.
    std::fs::write(elsewhere.path().join("seg.toml"), "date = \"x\"\n").unwrap();
    let third = format!("file://{}/u.seg", elsewhere.path().display());
    c.open(&third, text);
    let d = c.diagnostics();
    assert!(!d.to_string().contains("W002"), "{d}");
    c.finish();
}
