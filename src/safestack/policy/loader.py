"""Reading policy files: the packaged default, or a user's YAML laid over it.

A bad file fails with the file, the line, the field path and what is allowed.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from safestack.errors import PolicyError
from safestack.policy.model import Policy

DEFAULT_POLICY_RESOURCE = "default.yaml"


def default_policy_text() -> str:
    return (
        resources.files("safestack.policy")
        .joinpath("assets", DEFAULT_POLICY_RESOURCE)
        .read_text("utf-8")
    )


@lru_cache(maxsize=1)
def default_policy() -> Policy:
    return _build(yaml.safe_load(default_policy_text()), "<default policy>", None)


def load_policy(path: str | Path | None = None) -> Policy:
    """Load a policy file; `None` gives the packaged default.

    The file is laid over the default (mappings merge, lists and scalars replace) unless it says
    `extends: none`, so a user's file holds only what it changes.
    """
    if path is None:
        return default_policy()
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise PolicyError(f"{path}: policy file not found") from None
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise PolicyError(
            f"{path}{where}: not valid YAML: {getattr(exc, 'problem', exc)}"
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError(
            f"{path}: a policy must be a mapping of fields, got {type(data).__name__}"
        )
    extends = data.pop("extends", "default")
    if extends not in ("default", "none"):
        raise PolicyError(f"{path}: extends must be 'default' or 'none', got {extends!r}")
    if extends == "default":
        data = _merge(yaml.safe_load(default_policy_text()), data)
    return _build(data, str(path), root)


def parse_policy(data: dict[str, Any], source: str = "<policy>") -> Policy:
    """Validate an in-memory policy mapping (already complete: no merge with the default)."""
    return _build(data, source, None)


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = copy.deepcopy(base)
        for key, value in override.items():
            merged[key] = _merge(base.get(key), value) if key in base else value
        return merged
    return override


def _build(data: dict[str, Any], source: str, root: yaml.Node | None) -> Policy:
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(_describe(exc, source, root)) from None


def _describe(exc: ValidationError, source: str, root: yaml.Node | None) -> str:
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        field = ".".join(loc) or "(top level)"
        line = _line_of(root, loc)
        where = f"{source}:{line}" if line else source
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field; check the spelling against `safestack policy show --yaml`"
        elif error["type"] == "missing":
            message = "required field is missing"
        elif "input" in error and error["type"] not in ("model_type", "dict_type"):
            message = f"{message} (got {error['input']!r})"
        problems.append(f"{where}: {field}: {message}")
    more = (
        f" (and {len(problems) - 1} more problem(s): " + "; ".join(problems[1:]) + ")"
        if len(problems) > 1
        else ""
    )
    return problems[0] + more


def _line_of(root: yaml.Node | None, loc: list[str]) -> int | None:
    """1-based line of the deepest YAML node on the error's path that exists in the user's file."""
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
