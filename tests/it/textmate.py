"""Tokenizes Seg scripts with the VS Code extension's TextMate grammar in a
TextMate engine (textmate-grammar-python) whose regular expressions are
Oniguruma's, as in VS Code's own engine.

usage: textmate.py GRAMMAR FILE...
Prints one JSON object: for each file, its tokens as [line, column, text,
innermost scope].
"""

import json
import logging
import sys

logging.disable(logging.WARNING)

from textmate_grammar.parsers.base import LanguageParser  # noqa: E402

grammar, *files = sys.argv[1:]
with open(grammar, encoding="utf-8") as f:
    parser = LanguageParser(json.load(f))
out = {}
for path in files:
    with open(path, encoding="utf-8") as f:
        element = parser.parse_string(f.read())
    out[path] = [[line, column, text, scopes[-1]] for (line, column), text, scopes in element.flatten()]
json.dump(out, sys.stdout)
