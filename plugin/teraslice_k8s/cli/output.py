"""What every command shares for its output: tables, config errors, a closed stdout.

- :func:`description`: a module docstring as ``--help`` text, without reStructuredText markup.
- :func:`console`: a rich console for tables. On a terminal tables fit its width (columns fold,
  so ids are wrapped, never cut with an ellipsis); elsewhere (a pipe, a file) tables take their
  natural width, so every id and path is printed whole on one line.
- :func:`config_error_lines`: a config's problems prefixed with the file (``teraslice.yaml:
  teraslice.port: ...``), except those that already name it (cannot read, not valid YAML).
- :func:`exit_on_closed_stdout`: run a command so that a reader that stopped reading
  (``... | head -1``) ends it quietly, as standard command-line tools end (exit 141, 128 +
  SIGPIPE, no traceback).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from teraslice_k8s.errors import ValidationError

#: Exit status of a command whose stdout reader went away (what shells report for SIGPIPE).
EXIT_CLOSED_STDOUT = 141
#: Console width off a terminal: wide enough for any table row on one line.
_UNBOUNDED_WIDTH = 100_000


_ROLE = re.compile(r":[a-z]+:`~?(?:[\w.]+\.)?([^`]+)`")


def description(doc: str | None) -> str | None:
    """A module docstring's first paragraph as ``--help`` text: reStructuredText markup
    (double backquotes, ``:class:`~a.B``` roles) becomes plain text."""
    if not doc:
        return None
    first = doc.strip().split("\n\n", 1)[0]
    return " ".join(_ROLE.sub(r"\1", first).replace("``", "").split())


def console(*, stderr: bool = False) -> Any:
    """A ``rich.console.Console`` for tables and summaries (see the module docstring)."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # rich exits 1 here; the command's wrapper ends it as other tools end (141).
            raise BrokenPipeError

    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return _Console(stderr=stderr)
    return _Console(stderr=stderr, width=_UNBOUNDED_WIDTH, no_color=True)


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Any:
    """A rich table whose cells fold instead of being cut (ids stay whole)."""
    from rich.table import Table

    result = Table(title=title, show_lines=False)
    for column in columns:
        result.add_column(column, overflow="fold")
    for row in rows:
        result.add_row(*("" if v is None else str(v) for v in row))
    return result


def config_error_lines(path: object, error: ValidationError) -> list[str]:
    """The problems of a config file's ValidationError, each naming the file once: a field's
    problem gets ``<path>: `` in front; a whole-file one (cannot read it, not YAML) already
    names it."""
    return [f"{path}: {problem}" if problem.path else problem.message for problem in error.problems]


def exit_on_closed_stdout(run: Callable[[], int]) -> int:
    """``run()``; if its reader closed stdout, :data:`EXIT_CLOSED_STDOUT` without a traceback."""
    try:
        code = run()
        sys.stdout.flush()
    except BrokenPipeError:
        # Python would try to flush stdout again at exit and print "Exception ignored";
        # pointing it at /dev/null makes that flush succeed.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_CLOSED_STDOUT
    return code


def print_warnings(warnings: Sequence[Any], prefix: str = "") -> None:
    """Job validation warnings (Teraslice's ``warnings`` objects) as ``warning: <description>``
    lines on stderr: deprecations, unknown keys (with the suggested name), replaced keys."""
    for warning in warnings:
        reason = warning.get("reason", {}).get("reason", {}) if isinstance(warning, dict) else {}
        text = reason.get("description", warning) if isinstance(reason, dict) else warning
        print(f"warning: {prefix}{text}", file=sys.stderr)
