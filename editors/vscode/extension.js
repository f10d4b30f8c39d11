// Starts `seg lsp` for .seg files (see docs/editors.md).
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration("seg");
  const command = config.get("path") || "seg";
  const data = config.get("data");
  client = new LanguageClient(
    "seg",
    "Seg",
    { command, args: ["lsp"] },
    {
      documentSelector: [{ scheme: "file", language: "seg" }],
      initializationOptions: data ? { data } : {},
    },
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
