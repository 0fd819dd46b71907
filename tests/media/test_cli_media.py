"""`safestack media` as an operator runs it: hash files, import a list, list banks, match uploads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from media_images import TRANSFORMS, encode, generated_image
from typer.testing import CliRunner

from safestack.cli.main import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'media.db'}"
    monkeypatch.setenv("SAFESTACK_DB_URL", url)
    return url


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def image_file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_hash_prints_every_hash_as_json_and_names_bad_files(tmp_path: Path) -> None:
    good = image_file(tmp_path / "a.png", encode(generated_image(1)))
    bad = image_file(tmp_path / "b.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    code, out, err = run("media", "hash", str(good), str(bad), "--json")
    assert code == 2
    [line] = out.splitlines()
    record = json.loads(line)
    assert record["file"] == str(good) and len(record["pdq"]) == 64 and record["quality"] >= 50
    assert f"{bad}: SVG is not an allowed image type" in err


def test_import_list_and_match_end_to_end(tmp_path: Path) -> None:
    banked = image_file(tmp_path / "banked.png", encode(generated_image(11)))
    code, out, _ = run("media", "hash", str(banked), "--json")
    pdq = json.loads(out)["pdq"]
    bank = tmp_path / "bank.csv"
    bank.write_text(f"signal_type,signal_value\npdq,{pdq}\npdq,xyz\n")

    code, out, err = run("media", "bank", "import", str(bank), "--name", "demo")
    assert code == 0, err
    assert "bank 'demo': 1 added, 0 already held, 1 malformed skipped" in out
    assert f"skipped: {bank}:3: 'xyz' is not a pdq hash" in err

    code, out, _ = run("media", "bank", "list")
    assert code == 0 and "demo" in out and "1" in out

    edited = image_file(tmp_path / "edited.jpg", TRANSFORMS["jpeg-q60"](generated_image(11)))
    other = image_file(tmp_path / "other.png", encode(generated_image(12)))
    code, out, _ = run("media", "match", str(edited), "--bank", "demo")
    assert code == 1
    assert f"{edited}: MATCH bank 'demo' pdq {pdq}" in out
    code, out, _ = run("media", "match", str(other), "--json")
    assert code == 0
    assert json.loads(out)["matched"] is False


def test_import_with_nothing_usable_and_unknown_bank_are_errors(tmp_path: Path) -> None:
    bank = tmp_path / "bank.txt"
    bank.write_text("nothing here\n")
    code, _, err = run("media", "bank", "import", str(bank), "--name", "x", "--format", "plain")
    assert code == 2
    assert "no well-formed hash found; is --format plain right?" in err
    image = image_file(tmp_path / "a.png", encode(generated_image(1)))
    code, _, err = run("media", "match", str(image), "--bank", "missing")
    assert code == 2 and "no hash bank named 'missing'" in err


def test_bank_list_when_empty() -> None:
    code, out, _ = run("media", "bank", "list")
    assert code == 0 and "no hash banks" in out


def test_case_list_and_review(db_url: str) -> None:
    from safestack.store import CaseMatch, Store

    match = CaseMatch(
        bank="demo", entry_id="e", kind="md5", value="a" * 32, distance=0, variant="bytes"
    )
    with Store.open(db_url) as store:
        case = store.media_cases.open(
            md5="a" * 32, sha256="b" * 64, pdq=None, quality=None, matches=[match]
        )
    code, out, _ = run("media", "case", "list", "--status", "open")
    assert code == 0 and case.id in out and "demo" in out
    code, out, err = run(
        "media", "case", "review", case.id, "--status", "reported", "--reviewer", "ana"
    )
    assert code == 2 and "is open; it can become confirmed or dismissed, not reported" in err
    code, out, _ = run(
        "media", "case", "review", case.id, "--status", "confirmed", "--reviewer", "ana"
    )
    assert code == 0 and f"case {case.id}: confirmed by ana" in out
    code, out, _ = run("media", "case", "list", "--status", "open")
    assert "no media cases" in out
