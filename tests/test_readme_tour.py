"""The README's tour, pasted line by line into a fresh shell: every command exits 0 and prints the
output the README shows.

The tour is the `## A five-minute tour` section. In its ```console blocks a line starting with `$ `
is a command and the lines after it, up to the next command, its output: a line `...` is output
left out, `...` inside a line stands for any text, and every other line must appear in the
command's output (stdout and stderr; spaces around a line do not count), consecutive lines
consecutively. A ```python block runs as
a script; a comment line after its last expression is that expression's repr. An HTML comment
`<!-- tour-test: skip `COMMAND PREFIX` because REASON -->` leaves out the commands starting with
the prefix; there are few, and each must still match a command.

One bash process reads the commands from a pipe, as a terminal would, in a temporary working
directory holding a copy of `examples/`, with a temporary HOME (so `~/.safestack`), the venv's bin
on PATH and this checkout's `src` on PYTHONPATH. Two substitutions keep it off shared resources:
the tour's PostgreSQL database `safestack` becomes a fresh one (created by the tour's own
`db upgrade`, dropped afterwards) and port 8787 a free port (SAFESTACK_PORT). Each command has a
deadline; at the end the whole process group (background servers too) is killed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from services import PG_URL, unavailable

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TOUR_HEADING = "## A five-minute tour"
MAX_SKIPPED = 4  # commands the test may leave out; each is named with its reason in the README
DEADLINE_S = 180.0  # per command: the slowest (judging a file, loading models) take ~10 s idle
TOUR_DATABASE = "postgres@127.0.0.1:5432/safestack"
TOUR_PORT = "localhost:8787"
SKIP = re.compile(r"<!--\s*tour-test: skip `([^`]+)` because (.+?)\s*-->")


@dataclass
class Step:
    line: int  # in README.md, for the failure message
    command: str
    expected: list[list[str]] = field(default_factory=list)  # runs of consecutive lines
    skipped: str | None = None


def tour_steps(readme: str) -> tuple[list[Step], dict[str, str]]:
    """The tour's commands in order, with their expected output, and the skip markers."""
    lines = readme.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == TOUR_HEADING)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    skips = {m.group(1): m.group(2) for m in SKIP.finditer("\n".join(lines[start:end]))}
    steps: list[Step] = []
    i = start
    while i < end:
        fence = lines[i].strip()
        if fence in ("```console", "```python"):
            body_start = i + 1
            i += 1
            while lines[i].strip() != "```":
                i += 1
            body = lines[body_start:i]
            if fence == "```console":
                steps.extend(_console_steps(body, body_start + 1))
            else:
                steps.append(_python_step(body, body_start + 1))
        i += 1
    for step in steps:
        step.skipped = next((why for p, why in skips.items() if step.command.startswith(p)), None)
    return steps, skips


def _console_steps(body: list[str], first_line: int) -> Iterator[Step]:
    step: Step | None = None
    for offset, line in enumerate(body):
        if line.startswith("$ "):
            if step is not None:
                yield step
            step = Step(first_line + offset, line[2:])
            step.expected.append([])
        elif step is None:
            raise AssertionError(f"README.md:{first_line + offset}: output before any command")
        elif line.strip() == "...":
            step.expected.append([])
        else:
            step.expected[-1].append(line)
    if step is not None:
        yield step


def _python_step(body: list[str], first_line: int) -> Step:
    """The block as a script; a last `# repr` comment line is what its last line evaluates to."""
    code, expected = body, []
    if body and body[-1].startswith("# "):
        *code, last = body[:-1]
        code = [*code, f"print(repr(({last})))"]
        expected = [[body[-1][2:]]]
    script = "\n".join(["python - <<'TOUR_PY'", *code, "TOUR_PY"])
    return Step(first_line, script, expected)


def _matches(expected: str, actual: str) -> bool:
    """Equal but for the spaces around the line (Rich centres titles); `...` matches any text."""
    pattern = ".*".join(re.escape(part) for part in expected.strip().split("..."))
    return re.fullmatch(pattern, actual.strip()) is not None


def missing_output(step: Step, output: str) -> list[str] | None:
    """The first run of expected lines not found, consecutively, in the output; None if all are."""
    actual = output.splitlines()
    for run in step.expected:
        if not run:
            continue
        found = any(
            all(_matches(e, a) for e, a in zip(run, actual[i : i + len(run)], strict=True))
            for i in range(len(actual) - len(run) + 1)
        )
        if not found:
            return run
    return None


@dataclass
class Outcome:
    step: Step
    code: int | None  # None: the deadline passed
    output: str
    seconds: float


class Shell:
    """One bash reading commands from a pipe; each command's output and exit code go to files."""

    def __init__(self, cwd: Path, env: dict[str, str], logs: Path) -> None:
        self.logs = logs
        self.count = 0
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=cwd,
            env=env,
            text=True,
            start_new_session=True,  # its own process group: close() stops background jobs too
        )

    def run(self, step: Step, deadline_s: float) -> Outcome:
        self.count += 1
        out, code = self.logs / f"{self.count}.out", self.logs / f"{self.count}.rc"
        assert self.process.stdin is not None
        # Braces, not a subshell: assignments, exports and background jobs stay in this shell.
        # The newline before `}` ends a trailing `# comment` of the README's command.
        self.process.stdin.write(
            f"{{ {step.command}\n}} > {out} 2>&1 < /dev/null\n"
            f"echo $? > {code}.tmp && mv {code}.tmp {code}\n"
        )
        self.process.stdin.flush()
        started = time.monotonic()
        while not code.exists():
            if time.monotonic() - started > deadline_s or self.process.poll() is not None:
                return Outcome(step, None, _read(out), time.monotonic() - started)
            time.sleep(0.05)
        return Outcome(step, int(code.read_text()), _read(out), time.monotonic() - started)

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def run_tour(steps: list[Step], cwd: Path, env: dict[str, str]) -> list[str]:
    """Run the steps not skipped, in order; the problems found (empty: the tour passes)."""
    logs = cwd.parent / f"{cwd.name}-logs"
    logs.mkdir()
    shell = Shell(cwd, env, logs)
    problems: list[str] = []
    try:
        for step in steps:
            if step.skipped is not None:
                continue
            outcome = shell.run(step, DEADLINE_S)
            where = f"README.md:{step.line}: $ {step.command.splitlines()[0]}"
            tail = "\n".join(outcome.output.splitlines()[-30:])
            if outcome.code is None:
                problems.append(f"{where}\n  no exit within {DEADLINE_S:.0f} s; output:\n{tail}")
                break  # the shell is still busy with it
            if outcome.code != 0:
                problems.append(f"{where}\n  exit code {outcome.code}; output:\n{tail}")
                continue
            missing = missing_output(step, outcome.output)
            if missing is not None:
                shown = "\n".join(missing)
                problems.append(f"{where}\n  expected:\n{shown}\n  got:\n{outcome.output}")
    finally:
        shell.close()
    return problems


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _pg_admin(statement: str) -> None:
    engine = create_engine(
        make_url(PG_URL).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


@pytest.fixture
def tour_database() -> Iterator[str]:
    """`user@host:port/name` of a database that does not exist yet; dropped afterwards."""
    try:
        _pg_admin("SELECT 1")
    except SQLAlchemyError as exc:
        unavailable(f"README TOUR NOT RUN: PostgreSQL at {PG_URL} unreachable ({exc.__class__})")
    server = make_url(PG_URL)
    name = f"safestack_tour_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{server.username}@{server.host}:{server.port or 5432}/{name}"
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _substitute(steps: list[Step], old: str, new: str) -> None:
    for step in steps:
        step.command = step.command.replace(old, new)
        step.expected = [[line.replace(old, new) for line in run] for run in step.expected]


# -- the harness can fail (a bash only, no safestack) -----------------------------------------


SAMPLE = f"""{TOUR_HEADING}

<!-- tour-test: skip `sleep 999` because it would only wait -->

```console
$ GREETING=hello                # a comment, as the README's commands have
$ echo "$GREETING world"; echo "a second line"
hello world
a second line
...
$ echo "run 42 stored"
run ... stored
$ sleep 999
```

```python
x = 6 * 7
x
# 42
```

## Next
"""


def _sample_env() -> dict[str, str]:
    return {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": "/nonexistent"}


def test_the_harness_reads_commands_outputs_and_skips() -> None:
    steps, skips = tour_steps(SAMPLE)
    assert [s.command.splitlines()[0] for s in steps] == [
        "GREETING=hello                # a comment, as the README's commands have",
        'echo "$GREETING world"; echo "a second line"',
        'echo "run 42 stored"',
        "sleep 999",
        "python - <<'TOUR_PY'",
    ]
    assert steps[1].expected == [["hello world", "a second line"], []]
    assert skips == {"sleep 999": "it would only wait"} and steps[3].skipped is not None


def test_the_harness_passes_a_true_tour_and_fails_a_drifted_one(tmp_path: Path) -> None:
    steps, _ = tour_steps(SAMPLE)
    (tmp_path / "good").mkdir()
    assert run_tour(steps, tmp_path / "good", _sample_env()) == []

    drifted, _ = tour_steps(
        SAMPLE.replace("hello world\n", "hello there\n").replace("6 * 7", "6 * 8")
    )
    drifted.append(Step(99, "ls /no/such/dir"))
    (tmp_path / "bad").mkdir()
    problems = run_tour(drifted, tmp_path / "bad", _sample_env())
    assert len(problems) == 3
    assert "expected:\nhello there" in problems[0]
    assert "README.md:" in problems[1] and "expected:\n42" in problems[1]
    assert problems[2].startswith("README.md:99: $ ls /no/such/dir\n  exit code 2")


# -- the README's tour ---------------------------------------------------------------------


def test_the_readme_skips_few_commands_and_each_skip_names_one() -> None:
    steps, skips = tour_steps(README.read_text(encoding="utf-8"))
    assert len(steps) > 20
    assert 0 < len(skips) <= MAX_SKIPPED
    for prefix in skips:
        assert any(s.command.startswith(prefix) for s in steps), f"no command starts {prefix!r}"


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(900)
def test_the_readme_tour_passes_in_a_fresh_shell(tour_database: str, tmp_path: Path) -> None:
    steps, _ = tour_steps(README.read_text(encoding="utf-8"))
    port = _free_port()
    _substitute(steps, TOUR_DATABASE, tour_database)
    _substitute(steps, TOUR_PORT, f"localhost:{port}")
    work, home = tmp_path / "work", tmp_path / "home"
    home.mkdir()
    shutil.copytree(ROOT / "examples", work / "examples")
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "PYTHONPATH": str(ROOT / "src"),  # this checkout, whatever the venv was installed from
        "SAFESTACK_PORT": str(port),
        "COLUMNS": "80",  # the width the README's tables were printed at
        "LANG": "C.UTF-8",
        "TERM": "dumb",
    }
    problems = run_tour(steps, work, env)
    assert not problems, "the README's tour drifted:\n\n" + "\n\n".join(problems)
