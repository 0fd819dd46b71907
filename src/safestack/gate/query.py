"""The threshold language: small boolean queries over evidence metrics, parsed, never eval()'d.

`asr(campaign="cbrn-uplift", target="post") >= 20% or finding(severity>=6, accepted=true)` is
tokenised and parsed by a recursive-descent parser into a tree of frozen nodes; metric names and
their arguments are checked against `METRICS` at load time, so a framework file with a typo fails
at its line. `evaluate` walks the tree with three-valued logic: a metric with no evidence is
`None` (unknown), and unknown never turns into "below the threshold".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

Value = str | float | bool
Op = Literal[">=", ">", "<=", "<", "=", "=="]
COMPARISONS: tuple[str, ...] = (">=", "<=", "==", ">", "<", "=")


class QueryError(ValueError):
    """A query that does not parse or names an unknown metric, argument, category or level."""


@dataclass(frozen=True, slots=True)
class ArgSpec:
    kind: Literal["str", "int", "bool", "stage"]
    ops: tuple[str, ...] = ("=",)
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric: what it measures, its arguments, and whether it is a rate or a yes/no."""

    name: str
    doc: str
    args: dict[str, ArgSpec]
    boolean: bool = False
    required: tuple[str, ...] = ()


_STAGE = ArgSpec("stage", choices=("pre", "post"))
_INT_CMP = ArgSpec("int", ops=(">=", ">", "<=", "<", "="))
METRICS: dict[str, MetricSpec] = {
    m.name: m
    for m in (
        MetricSpec(
            "asr",
            "attack success rate of pinned red-team runs (Wilson 95% interval)",
            {
                "campaign": ArgSpec("str"),
                "category": ArgSpec("str"),
                "attack": ArgSpec("str"),
                "target": _STAGE,
            },
        ),
        MetricSpec(
            "dr",
            "defect rate DR-x: share of harmful-objective answers with severity >= at (1, 3 or 4)",
            {
                "at": ArgSpec("int", choices=("1", "3", "4")),
                "campaign": ArgSpec("str"),
                "category": ArgSpec("str"),
                "target": _STAGE,
            },
            required=("at",),
        ),
        MetricSpec(
            "over_refusal",
            "share of benign look-alike requests refused in full",
            {"campaign": ArgSpec("str"), "target": _STAGE},
        ),
        MetricSpec(
            "score",
            "a metric of an imported evaluation (Inspect log or JSON results), with its interval",
            {"task": ArgSpec("str"), "metric": ArgSpec("str"), "target": _STAGE},
            required=("task",),
        ),
        MetricSpec(
            "finding",
            "true if a recorded expert finding matches (severity 0-7, accepted, category)",
            {
                "severity": _INT_CMP,
                "accepted": ArgSpec("bool"),
                "category": ArgSpec("str"),
                "target": _STAGE,
            },
            boolean=True,
        ),
    )
}

# --- tree -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Arg:
    name: str
    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class Call:
    metric: str
    args: tuple[Arg, ...]

    def arg(self, name: str) -> Arg | None:
        return next((a for a in self.args if a.name == name), None)

    def text(self) -> str:
        def show(a: Arg) -> str:
            value = f'"{a.value}"' if isinstance(a.value, str) else str(a.value).lower()
            return f"{a.name}{a.op}{value}"

        return f"{self.metric}({', '.join(show(a) for a in self.args)})"


@dataclass(frozen=True, slots=True)
class Number:
    value: float


@dataclass(frozen=True, slots=True)
class Name:
    """A bare word: `pre`, `post` or a level name in a rule; true/false anywhere."""

    value: str


@dataclass(frozen=True, slots=True)
class Compare:
    left: Node
    op: str
    right: Node


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: Literal["and", "or"]
    operands: tuple[Node, ...]


Node = Call | Number | Name | Compare | Not | BoolOp

# --- parsing ----------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>\d+(?:\.\d+)?%?)
      | (?P<string>"[^"\\]*"|'[^'\\]*')
      | (?P<op>>=|<=|==|!=|>|<|=)
      | (?P<punct>[(),])
      | (?P<word>[A-Za-z_][A-Za-z0-9_\-]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str
    column: int


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.lastgroup is None:
            column = position + len(text[position:]) - len(text[position:].lstrip()) + 1
            raise QueryError(f"column {column}: unexpected character {text[column - 1]!r}")
        kind = match.lastgroup
        start = match.start(kind)
        tokens.append(Token(kind, match.group(kind), start + 1))
        position = match.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def expect(self, text: str) -> None:
        if self.token.text != text:
            raise self.error(f"expected {text!r}")

    def error(self, message: str) -> QueryError:
        found = self.token.text or "end of query"
        return QueryError(f"column {self.token.column}: {message}, found {found!r}")

    def parse(self) -> Node:
        node = self.or_expr()
        if self.token.kind != "end":
            raise self.error("expected 'and', 'or' or the end of the query")
        return node

    def or_expr(self) -> Node:
        operands = [self.and_expr()]
        while self.token.kind == "word" and self.token.text == "or":
            self.take()
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else BoolOp("or", tuple(operands))

    def and_expr(self) -> Node:
        operands = [self.not_expr()]
        while self.token.kind == "word" and self.token.text == "and":
            self.take()
            operands.append(self.not_expr())
        return operands[0] if len(operands) == 1 else BoolOp("and", tuple(operands))

    def not_expr(self) -> Node:
        if self.token.kind == "word" and self.token.text == "not":
            self.take()
            return Not(self.not_expr())
        return self.comparison()

    def comparison(self) -> Node:
        left = self.term()
        if self.token.kind == "op":
            op = self.take().text
            if op == "!=":
                raise self.error("'!=' is not supported; write 'not (a = b)'")
            return Compare(left, "==" if op == "=" else op, self.term())
        return left

    def term(self) -> Node:
        token = self.token
        if token.text == "(":
            self.take()
            node = self.or_expr()
            self.expect(")")
            self.take()
            return node
        if token.kind == "number":
            self.take()
            return Number(_number(token.text))
        if token.kind == "word" and self.tokens[self.i + 1].text == "(":
            return self.call()
        if token.kind == "word" and token.text not in ("and", "or", "not"):
            self.take()
            return Name(token.text)
        raise self.error("expected a metric call, a number or '('")

    def call(self) -> Call:
        name = self.take()
        if name.text not in METRICS:
            raise QueryError(
                f"column {name.column}: unknown metric '{name.text}'; known metrics: {', '.join(METRICS)}"
            )
        self.take()  # (
        args: list[Arg] = []
        while self.token.text != ")":
            if args:
                self.expect(",")
                self.take()
            if self.token.kind != "word":
                raise self.error(f"expected an argument name in {name.text}(...)")
            arg = self.take().text
            if self.token.kind != "op":
                raise self.error(f"expected '=' or a comparison after {arg}")
            op = self.take().text
            value = self.take()
            if value.kind == "string":
                parsed: Value = value.text[1:-1]
            elif value.kind == "number":
                parsed = _number(value.text)
            elif value.kind == "word" and value.text in ("true", "false"):
                parsed = value.text == "true"
            elif value.kind == "word":
                parsed = value.text
            else:
                self.i -= 1
                raise self.error(f"expected a value for {arg}")
            args.append(Arg(arg, "=" if op == "==" else op, parsed))
        self.take()  # )
        return Call(name.text, tuple(args))


def _number(text: str) -> float:
    return float(text[:-1]) / 100 if text.endswith("%") else float(text)


def parse(text: str) -> Node:
    """The tree of one query; QueryError names the column of the problem."""
    if not text.strip():
        raise QueryError("empty query")
    return _Parser(text).parse()


# --- checking ---------------------------------------------------------------------------------


def calls(node: Node) -> list[Call]:
    if isinstance(node, Call):
        return [node]
    if isinstance(node, Compare):
        return calls(node.left) + calls(node.right)
    if isinstance(node, Not):
        return calls(node.operand)
    if isinstance(node, BoolOp):
        return [c for operand in node.operands for c in calls(operand)]
    return []


def check_threshold(node: Node, categories: frozenset[str]) -> None:
    """Every metric known, every argument known and well typed, every category a policy one."""
    _check_shape(node, names=frozenset({"true", "false"}), boolean=True)
    for call in calls(node):
        spec = METRICS.get(call.metric)
        if spec is None:
            raise QueryError(f"unknown metric '{call.metric}'; known metrics: {', '.join(METRICS)}")
        seen: set[str] = set()
        for arg in call.args:
            where = f"{call.metric}({arg.name}...)"
            argspec = spec.args.get(arg.name)
            if argspec is None:
                raise QueryError(
                    f"{where}: unknown argument '{arg.name}'; {call.metric} takes "
                    f"{', '.join(spec.args)}"
                )
            if arg.name in seen:
                raise QueryError(f"{where}: argument given twice")
            seen.add(arg.name)
            if arg.op not in argspec.ops:
                raise QueryError(f"{where}: use one of {', '.join(argspec.ops)}, not {arg.op}")
            _check_value(call.metric, arg, argspec, categories)
        if call.metric == "asr" and {"category", "attack"} <= seen:
            raise QueryError("asr(...): give category or attack, not both")
        missing = [r for r in spec.required if r not in seen]
        if missing:
            raise QueryError(f"{call.metric}(...): required argument {missing[0]} is missing")


def _check_value(metric: str, arg: Arg, spec: ArgSpec, categories: frozenset[str]) -> None:
    where = f"{metric}({arg.name}=...)"
    value = arg.value
    if spec.kind == "bool" and not isinstance(value, bool):
        raise QueryError(f"{where}: expected true or false, got {value!r}")
    if spec.kind == "int" and (isinstance(value, bool) or not isinstance(value, float)):
        raise QueryError(f"{where}: expected a number, got {value!r}")
    if spec.kind in ("str", "stage") and not isinstance(value, str):
        raise QueryError(f'{where}: expected a quoted name, got {value!r} (write {arg.name}="...")')
    shown = str(int(value)) if isinstance(value, float) else str(value)
    if spec.choices and shown not in spec.choices:
        raise QueryError(f"{where}: {shown!r} is not one of {', '.join(spec.choices)}")
    if arg.name == "category" and shown not in categories:
        raise QueryError(
            f"{where}: unknown category '{shown}'; use a policy category "
            f"({', '.join(sorted(categories))})"
        )


def check_rule(node: Node, levels: tuple[str, ...]) -> None:
    """A deploy/develop rule: comparisons of `pre`/`post` with level names, and/or/not."""
    allowed = frozenset({"pre", "post", *levels})
    if calls(node):
        raise QueryError(
            "a rule compares pre/post levels with level names; metrics go in thresholds"
        )
    _check_shape(node, names=allowed, boolean=True)


def _check_shape(node: Node, names: frozenset[str], boolean: bool) -> None:
    if isinstance(node, BoolOp):
        for operand in node.operands:
            _check_shape(operand, names, True)
    elif isinstance(node, Not):
        _check_shape(node.operand, names, True)
    elif isinstance(node, Compare):
        if node.op not in COMPARISONS:
            raise QueryError(f"unknown comparison {node.op}")
        for side in (node.left, node.right):
            if isinstance(side, Compare | BoolOp | Not):
                raise QueryError("a comparison takes a metric, a number or a name on each side")
            _check_shape(side, names, False)
    elif isinstance(node, Name):
        if node.value not in names:
            raise QueryError(
                f"unknown name '{node.value}'; expected one of {', '.join(sorted(names))}"
            )
    elif isinstance(node, Call):
        spec = METRICS.get(node.metric)
        if boolean and spec is not None and not spec.boolean:
            raise QueryError(f"{node.text()} is a rate: compare it, e.g. {node.text()} >= 20%")
    elif isinstance(node, Number) and boolean:
        raise QueryError("a number alone is not a condition; compare a metric with it")


# --- evaluating -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measured:
    """A metric's value on the evidence: point estimate and 95% interval, and where it came from."""

    value: float
    low: float
    high: float
    evidence: tuple[str, ...]


class Evidence(Protocol):
    """What the evaluator asks of the evidence (gate.scorecard provides it)."""

    def measure(self, call: Call, stage: str) -> Measured | None: ...

    def holds(self, call: Call, stage: str) -> tuple[bool, tuple[str, ...]] | None: ...


Mode = Literal["point", "bound"]
Truth = bool | None


@dataclass(slots=True)
class Reading:
    """One metric read while evaluating: the call, its value, the evidence ids behind it."""

    call: str
    stage: str
    value: Measured | bool | None
    evidence: tuple[str, ...]


def evaluate(
    node: Node, evidence: Evidence, stage: str, mode: Mode, readings: list[Reading] | None = None
) -> Truth:
    """True, False or None (unknown: some evidence missing). `mode` "bound" reads each rate at the
    end of its interval that favours the threshold: the worst case the evidence cannot rule out."""
    log = readings if readings is not None else []
    if isinstance(node, BoolOp):
        values = [evaluate(o, evidence, stage, mode, log) for o in node.operands]
        if node.op == "and":
            return False if False in values else (None if None in values else True)
        return True if True in values else (None if None in values else False)
    if isinstance(node, Not):
        value = evaluate(node.operand, evidence, stage, mode, log)
        if value is None:
            return None
        return not value
    if isinstance(node, Name):
        return node.value == "true"
    if isinstance(node, Call):
        held = evidence.holds(node, stage)
        log.append(
            Reading(node.text(), stage, None if held is None else held[0], held[1] if held else ())
        )
        return None if held is None else held[0]
    if isinstance(node, Compare):
        return _compare(node, evidence, stage, mode, log)
    raise QueryError("a number alone is not a condition")


_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
}


def _side(node: Node, evidence: Evidence, stage: str, log: list[Reading]) -> Measured | None:
    if isinstance(node, Number):
        return Measured(node.value, node.value, node.value, ())
    assert isinstance(node, Call)
    measured = evidence.measure(node, stage)
    log.append(Reading(node.text(), stage, measured, measured.evidence if measured else ()))
    return measured


def _compare(
    node: Compare, evidence: Evidence, stage: str, mode: Mode, log: list[Reading]
) -> Truth:
    left = _side(node.left, evidence, stage, log)
    right = _side(node.right, evidence, stage, log)
    if left is None or right is None:
        return None
    if mode == "point":
        return _OPS[node.op](left.value, right.value)
    # The worst case within the intervals: the largest left against the smallest right for >, ...
    if node.op in (">=", ">"):
        return _OPS[node.op](left.high, right.low)
    if node.op in ("<=", "<"):
        return _OPS[node.op](left.low, right.high)
    return left.low <= right.high and right.low <= left.high


def rule_holds(node: Node, levels: tuple[str, ...], values: dict[str, str | None]) -> Truth:
    """Evaluate a deploy/develop rule on the `pre` and `post` levels (None: not assessed)."""
    rank = {name: i for i, name in enumerate(levels)}

    def side(n: Node) -> int | None:
        assert isinstance(n, Name)
        if n.value in ("pre", "post"):
            level = values.get(n.value)
            return None if level is None else rank[level]
        return rank[n.value]

    def walk(n: Node) -> Truth:
        if isinstance(n, BoolOp):
            parts = [walk(o) for o in n.operands]
            if n.op == "and":
                return False if False in parts else (None if None in parts else True)
            return True if True in parts else (None if None in parts else False)
        if isinstance(n, Not):
            inner = walk(n.operand)
            return None if inner is None else not inner
        if isinstance(n, Compare):
            a, b = side(n.left), side(n.right)
            return None if a is None or b is None else _OPS[n.op](a, b)
        assert isinstance(n, Name)
        return n.value == "true"

    return walk(node)
