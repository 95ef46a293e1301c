"""Environment variables in the cluster config: their names, and ``${NAME}`` references.

:data:`ENV_NAME_RE` is the syntax of a variable name (``env_vars`` keys, Secret-backed
variables, reference names). :func:`substitute_env` resolves references in a config document
before validation (ours; how the chart keeps secrets out of ConfigMaps): ``${NAME}`` in every
string value becomes the environment variable ``NAME``; ``$${`` writes a literal ``${``. An
unset variable, an unclosed ``${`` or an invalid name is a problem at the value's key path. The
result is a string (no YAML re-parsing) and is not scanned again. Keys are never substituted,
and values never appear in error messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from teraslice_k8s.errors import Problem, ValidationError, join_path

#: Names the Kubernetes API accepts on every version we support (>= 1.25, before the
#: relaxed-env-name feature gate).
ENV_NAME_RE = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*\Z")
#: ``$${`` (escape), ``${...}`` (reference) or a lone ``${`` (unclosed), leftmost first.
_REFERENCE_RE = re.compile(r"(?P<escape>\$\$\{)|\$\{(?P<name>[^}]*)\}|(?P<open>\$\{)")


def _substitute_text(text: str, path: str, environ: Mapping[str, str], problems: list[Problem]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group("escape"):
            return "${"
        name = match.group("name")
        if name is None:
            problems.append(Problem(path, "unclosed ${: write ${NAME}, or $${ for a literal ${"))
        elif not ENV_NAME_RE.match(name):
            problems.append(
                Problem(
                    path, f"${{{name}}} does not name an environment variable; write $${{ for a literal ${{"
                )
            )
        elif name not in environ:
            problems.append(Problem(path, f"environment variable {name} is not set"))
        else:
            return environ[name]
        return match.group(0)

    return _REFERENCE_RE.sub(replace, text)


def _substitute(value: Any, path: str, environ: Mapping[str, str], problems: list[Problem]) -> Any:
    if isinstance(value, str):
        return _substitute_text(value, path, environ, problems) if "${" in value else value
    if isinstance(value, Mapping):
        return {k: _substitute(v, join_path(path, str(k)), environ, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, join_path(path, i), environ, problems) for i, v in enumerate(value)]
    return value


def substitute_env(data: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """A copy of ``data`` with ``${NAME}`` in every string value replaced by ``environ[NAME]``.

    Keys are left alone; ``$${`` becomes a literal ``${``; substituted text is not scanned
    again. Raises ``ValidationError`` listing every unset variable (``<key path>: environment
    variable NAME is not set``), unclosed ``${`` and invalid name; values never appear in messages.
    """
    problems: list[Problem] = []
    result = _substitute(data, "", environ, problems)
    if problems:
        raise ValidationError(problems, subject="config")
    return result  # type: ignore[no-any-return]
