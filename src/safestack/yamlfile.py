"""YAML files users write (policies, campaigns, pipelines): read them, validate them, and point at
the line of the problem: `file:line: field.path: what is wrong`. Values quoted in an error have
their secrets (api_key, token, password, ...) redacted: error messages end up in logs and CI output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from safestack.errors import SafestackError

M = TypeVar("M", bound=BaseModel)


def read_yaml(
    path: str | Path, error: type[SafestackError], what: str
) -> tuple[dict[str, Any], yaml.Node | None]:
    """The mapping in `path` and its node tree (for line numbers); `error` names the file."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise error(f"{path}: {what} file not found") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise error(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise error(f"{path}: a {what} must be a mapping of fields, got {type(data).__name__}")
    return data, root


def validate(
    model: type[M],
    data: dict[str, Any],
    source: str,
    root: yaml.Node | None,
    error: type[SafestackError],
    hint: str = "check the spelling against the documentation",
) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(describe(exc, source, root, hint)) from None


def describe(exc: ValidationError, source: str, root: yaml.Node | None, hint: str) -> str:
    """One line per problem, the first in full: `source:line: field.path: message`."""
    problems = []
    for item in exc.errors():
        loc = [str(part) for part in item["loc"]]
        field = ".".join(loc) or "(top level)"
        line = line_of(root, loc)
        where = f"{source}:{line}" if line else source
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = f"unknown field; {hint}"
        elif item["type"] == "missing":
            message = "required field is missing"
        elif "input" in item and item["type"] not in ("model_type", "dict_type"):
            shown = REDACTED if loc and is_secret_field(loc[-1]) else redact(item["input"])
            message = f"{message} (got {shown!r})"
        problems.append(f"{where}: {field}: {message}")
    more = (
        f" (and {len(problems) - 1} more problem(s): " + "; ".join(problems[1:]) + ")"
        if len(problems) > 1
        else ""
    )
    return problems[0] + more


SECRET_FIELDS = frozenset({"api_key", "key", "token", "password", "secret", "authorization"})
REDACTED = "<redacted>"


def is_secret_field(name: str) -> bool:
    """`api_key`, `token`, ... and names ending in one (`upstream_api_key`, `X-Api-Key`)."""
    normal = name.lower().replace("-", "_")
    return normal in SECRET_FIELDS or any(normal.endswith(f"_{s}") for s in SECRET_FIELDS)


def redact(value: Any) -> Any:
    """`value` with the values of secret fields, at any depth, replaced by `<redacted>`."""
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and is_secret_field(k) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def line_of(root: yaml.Node | None, loc: list[str]) -> int | None:
    """1-based line of the deepest YAML node on the error's path that exists in the file."""
    node = root
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if str(k.value) == part), None)
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            match = node.value[int(part)]
        else:
            match = None
        if match is None:
            break
        node = match
        line = node.start_mark.line + 1
    return line
