#!/usr/bin/env python3
"""Latency of `seg lsp` as an editor sees it: diagnostics after a change to a
1 000-definition script, and a completion, over stdio with JSON-RPC.

    python3 bench/lsp.py [--seg target/release/seg] [--definitions 1000] [--runs 20]

Prints the median and the worst of the runs for each.
"""
import argparse
import json
import statistics
import subprocess
import time


class Client:
    def __init__(self, seg):
        self.p = subprocess.Popen([seg, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.id = 0

    def send(self, msg):
        body = json.dumps(msg).encode()
        self.p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.p.stdin.flush()

    def recv(self):
        length = None
        while True:
            line = self.p.stdout.readline().strip()
            if not line:
                break
            if line.startswith(b"Content-Length:"):
                length = int(line.split(b":")[1])
        return json.loads(self.p.stdout.read(length))

    def request(self, method, params):
        self.id += 1
        self.send({"jsonrpc": "2.0", "id": self.id, "method": method, "params": params})
        while True:
            m = self.recv()
            if m.get("id") == self.id:
                return m

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def diagnostics(self):
        while True:
            m = self.recv()
            if m.get("method") == "textDocument/publishDiagnostics":
                return m["params"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seg", default="target/release/seg")
    ap.add_argument("--definitions", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    lines = [
        f'segment s{i} = click.email at_least {i % 7 + 1} in campaigns tagged "Online store" '
        f"last {i % 90 + 1}d and not unsubscribe_click.email exists;"
        for i in range(args.definitions)
    ]
    text = "\n".join(lines) + "\n"
    uri = "file:///bench.seg"
    c = Client(args.seg)
    c.request("initialize", {"capabilities": {}})
    c.notify("initialized", {})
    c.notify("textDocument/didOpen",
             {"textDocument": {"uri": uri, "languageId": "seg", "version": 1, "text": text}})
    c.diagnostics()
    change, complete = [], []
    last = len(lines) - 1
    for run in range(args.runs):
        # Type one character into the last definition's count, and back.
        col = lines[last].index("at_least ") + len("at_least ")
        started = time.perf_counter()
        c.notify("textDocument/didChange", {
            "textDocument": {"uri": uri, "version": run + 2},
            "contentChanges": [{"range": {"start": {"line": last, "character": col},
                                          "end": {"line": last, "character": col + 1}},
                                "text": str(run % 9 + 1)}]})
        c.diagnostics()
        change.append(time.perf_counter() - started)
        started = time.perf_counter()
        r = c.request("textDocument/completion",
                      {"textDocument": {"uri": uri}, "position": {"line": last, "character": 20}})
        complete.append(time.perf_counter() - started)
        assert r.get("result") is not None, r
    c.request("shutdown", None)
    c.notify("exit", None)
    c.p.wait(timeout=10)
    ms = lambda xs: f"median {statistics.median(xs) * 1000:.1f} ms, worst {max(xs) * 1000:.1f} ms"  # noqa: E731
    print(f"{args.definitions} definitions, {args.runs} runs")
    print(f"diagnostics after a change: {ms(change)}")
    print(f"completion: {ms(complete)}")


if __name__ == "__main__":
    main()
