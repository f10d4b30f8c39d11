-- Drives Neovim's own LSP client (0.7 or later) on `seg lsp`: opens a
-- script with an error, waits for the diagnostics, asks a rename, types a
-- line and asks a completion after `click.`; writes what the editor got,
-- one line each, to $SEG_OUT. Run by tests/it/editor.rs.
local out = {}
local function log(s) table.insert(out, s) end
vim.cmd("edit " .. os.getenv("SEG_SCRIPT"))
local buf = vim.api.nvim_get_current_buf()
local id = vim.lsp.start_client({
  name = "seg",
  cmd = { os.getenv("SEG_BIN"), "lsp" },
  root_dir = vim.fn.getcwd(),
})
vim.lsp.buf_attach_client(buf, id)
vim.wait(20000, function() return #vim.diagnostic.get(buf) > 0 end, 50)
for _, d in ipairs(vim.diagnostic.get(buf)) do
  log("diagnostic " .. tostring(d.code) .. " " .. d.lnum .. ":" .. d.col)
end
local client = vim.lsp.get_client_by_id(id)
local uri = vim.uri_from_bufnr(buf)
local r = client.request_sync("textDocument/rename",
  { textDocument = { uri = uri }, position = { line = 0, character = 10 }, newName = "active" }, 10000, buf)
if r and r.result then
  for _, edits in pairs(r.result.changes) do
    for _, e in ipairs(edits) do
      log("rename " .. e.range.start.line .. ":" .. e.range.start.character .. " " .. e.newText)
    end
  end
end
-- Typed as a user would: the client sends the change.
vim.api.nvim_buf_set_lines(buf, 2, 2, false, { "segment x = engaged and click." })
vim.wait(20000, function()
  for _, d in ipairs(vim.diagnostic.get(buf)) do
    if d.code == "E001" then return true end
  end
  return false
end, 50)
local c = client.request_sync("textDocument/completion",
  { textDocument = { uri = uri }, position = { line = 2, character = 30 } }, 10000, buf)
if c and c.result then
  for _, item in ipairs(c.result.items or c.result) do log("completion " .. item.label) end
end
vim.fn.writefile(out, os.getenv("SEG_OUT"))
vim.cmd("qa!")
