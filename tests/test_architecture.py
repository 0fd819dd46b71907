"""The architecture doc's rules that import-linter cannot express, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import safestack

ROOT = Path(safestack.__file__).parent


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def private_imports(module: str, source: str) -> list[str]:
    """`from safestack.<other package>... import _name` statements in one module's source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("safestack"):
            continue
        assert node.module is not None
        if _package(node.module) == _package(module):
            continue
        found += [
            f"{node.module}.{alias.name}"
            for alias in node.names
            if alias.name.startswith("_") and not alias.name.startswith("__")
        ]
    return found


def test_no_module_imports_a_private_name_from_another_package() -> None:
    offences = []
    for path in sorted(ROOT.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        offences += [f"{module}: {name}" for name in private_imports(module, path.read_text())]
    assert offences == []


def test_private_imports_are_found() -> None:
    source = "from safestack.judge.detectors.rules import _PII, PII_PATTERNS\n"
    assert private_imports("safestack.data.filters.redact", source) == [
        "safestack.judge.detectors.rules._PII"
    ]
    # Inside one package, private helpers are the package's own business.
    assert private_imports("safestack.judge.judge", source) == []


# -- no module keeps loaded models ---------------------------------------------------------------
# Loaded models are kept by objects their owner passes in (`judge.builtin.BuiltinModels`, the
# corpus filter's `FilterModels`), one per server, CLI command, red-team run or filter worker. What
# a module may keep for the life of the process is data read from a file, listed here with what it
# holds; a new entry needs the same justification (a model goes in BuiltinModels instead).
PROCESS_CACHES = {
    "safestack.policy.model.default_policy": "the packaged policy, a frozen pydantic model",
    "safestack.judge.rubrics.load_rubric": "rubric text",
    "safestack.judge.normalise._homoglyph_table": "the TR39 confusables table",
    "safestack.judge.detectors.rules._patterns": "compiled regexes from rules.yaml",
    "safestack.judge.detectors.rules._lexicon": "word lists from installed packages",
    "safestack.data.filters.adult.ut1_list": "the UT1 domain list (hashes)",
    "safestack.data.filters.adult._extract": "tldextract over its bundled suffix list",
    "safestack.data.filters.adult._host_levels": "host name splits",
    "safestack.data.filters.aggregator.people_search_domains": "a packaged domain list",
    "safestack.redteam.attacks.single_turn.jailbreak_templates": "template text",
    "safestack.data.filters.url_words.datatrove_word_lists": "word lists from datatrove's wheel",
    "safestack.align.retain._borderline_text": "a packaged YAML asset's text",
    "safestack.align.templates.template_text": "a packaged YAML asset's text",
    "safestack.align.templates.packaged_templates": "the templates parsed from it",
    "safestack.align.evaluation.capability_probes": "the packaged capability probe (YAML, regexes)",
}
# Module-level tables that start empty and fill at import, by decorators: plugin tables, not caches.
MODULE_TABLES = {
    "safestack.datasets.source.SOURCES": "the @source readers",
    "safestack.training.synthetic.GENERATORS": "the synthetic-set generators",
}
# Module globals a function rebinds.
REBOUND_GLOBALS = {
    "safestack.judge.builtin.models._default": "the Python API's default registry, used only by "
    "callers that pass no BuiltinModels (docs/architecture.md)",
    "safestack.data.executors._WORKER": "a process-pool worker's own pipeline (one per process)",
}
CACHE_DECORATORS = {"cache", "lru_cache", "cached"}
EMPTY_CONTAINERS = {"dict", "list", "set", "OrderedDict", "defaultdict", "WeakValueDictionary"}


def _modules() -> list[tuple[str, str]]:
    return [
        (".".join(path.relative_to(ROOT.parent).with_suffix("").parts), path.read_text())
        for path in sorted(ROOT.rglob("*.py"))
    ]


def _decorator_name(node: ast.expr) -> str:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Attribute):
        return target.attr
    return target.id if isinstance(target, ast.Name) else ""


def module_state(module: str, source: str) -> dict[str, list[str]]:
    """What a module keeps for the life of the process: functions with a process-wide cache,
    empty containers assigned at module level, globals rebound by a function, and writes to
    `os.environ` (or `os.putenv`), which change the whole process."""
    tree = ast.parse(source)
    found: dict[str, list[str]] = {"cached": [], "containers": [], "globals": [], "environ": []}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if any(_decorator_name(d) in CACHE_DECORATORS for d in node.decorator_list):
                found["cached"].append(f"{module}.{node.name}")
        elif isinstance(node, ast.Global):
            found["globals"] += [f"{module}.{name}" for name in node.names]
        elif isinstance(node, ast.Subscript | ast.Attribute | ast.Call) and _writes_environ(node):
            found["environ"].append(f"{module}:{node.lineno}")
    for statement in tree.body:
        if isinstance(statement, ast.Assign | ast.AnnAssign) and _empty_container(statement.value):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            found["containers"] += [f"{module}.{t.id}" for t in targets if isinstance(t, ast.Name)]
    return found


def _empty_container(value: ast.expr | None) -> bool:
    if isinstance(value, ast.Dict | ast.List | ast.Set):
        return not (value.keys if isinstance(value, ast.Dict) else value.elts)
    return isinstance(value, ast.Call) and _decorator_name(value) in EMPTY_CONTAINERS


def _is_environ(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ"
    )


def _writes_environ(node: ast.expr) -> bool:
    if isinstance(node, ast.Subscript):  # os.environ[...] = / del os.environ[...]
        return _is_environ(node.value) and isinstance(node.ctx, ast.Store | ast.Del)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        method = node.func.attr
        if method == "putenv":
            return True
        mutating = {"setdefault", "update", "pop", "popitem", "clear", "__setitem__"}
        return method in mutating and _is_environ(node.func.value)
    return False


def test_no_module_keeps_loaded_models() -> None:
    cached, containers, rebound = [], [], []
    for module, source in _modules():
        state = module_state(module, source)
        cached += [name for name in state["cached"] if name not in PROCESS_CACHES]
        containers += [name for name in state["containers"] if name not in MODULE_TABLES]
        rebound += [name for name in state["globals"] if name not in REBOUND_GLOBALS]
    assert cached == [], "cache models in a BuiltinModels the owner passes in, not a module"
    assert containers == [], "a module-level cache: keep it on an object the owner passes in"
    assert rebound == [], "module state rebound by a function: keep it on an object instead"


def test_the_allowed_process_caches_still_exist() -> None:
    """An entry whose function is gone must leave the list, or the list stops meaning anything."""
    seen: set[str] = set()
    for module, source in _modules():
        state = module_state(module, source)
        seen.update(state["cached"], state["containers"], state["globals"])
    assert sorted((set(PROCESS_CACHES) | set(MODULE_TABLES) | set(REBOUND_GLOBALS)) - seen) == []


def test_only_the_cli_changes_the_environment() -> None:
    """Environment variables are the process's: only the entry point (`safestack.cli`) may set
    them, never a module at import or a library function."""
    offences = []
    for module, source in _modules():
        if not module.startswith("safestack.cli"):
            offences += module_state(module, source)["environ"]
    assert offences == []


def test_module_state_finds_model_caches_and_environment_writes() -> None:
    source = (
        "import os\n"
        "from functools import cache\n"
        "os.environ.setdefault('HF_HUB_OFFLINE', '1')\n"
        "os.environ['TOKENIZERS_PARALLELISM'] = 'false'\n"
        "_cache: dict[str, object] = {}\n"
        "_engines = dict()\n"
        "_SEVERITY = {'US_SSN': 5}\n"
        "_default = None\n"
        "@cache\n"
        "def load_heads(task): ...\n"
        "def default():\n"
        "    global _default\n"
        "    return os.environ.get('X')\n"
    )
    state = module_state("safestack.judge.builtin.x", source)
    assert state["cached"] == ["safestack.judge.builtin.x.load_heads"]
    assert state["containers"] == [
        "safestack.judge.builtin.x._cache",
        "safestack.judge.builtin.x._engines",
    ]
    assert state["globals"] == ["safestack.judge.builtin.x._default"]
    assert state["environ"] == ["safestack.judge.builtin.x:3", "safestack.judge.builtin.x:4"]
