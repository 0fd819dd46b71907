"""`safestack media sign|verify` as an operator runs them, with a test chain made at test time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from media_images import encode, generated_image
from typer.testing import CliRunner

from c2pa_chain import make_chain
from safestack.cli.main import app

runner = CliRunner()


@pytest.fixture
def chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    paths = make_chain(tmp_path / "chain", expired=True)
    monkeypatch.setenv("SAFESTACK_DB_URL", f"sqlite:///{tmp_path / 'media.db'}")
    monkeypatch.setenv("SAFESTACK_PROVENANCE_CERT", str(paths["chain"]))
    monkeypatch.setenv("SAFESTACK_PROVENANCE_KEY", str(paths["key"]))
    return paths


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_sign_then_verify_an_image(chain: dict[str, Path], tmp_path: Path) -> None:
    source = tmp_path / "generated.png"
    source.write_bytes(encode(generated_image(5)))
    target = tmp_path / "signed.png"
    code, out, err = run("media", "sign", str(source), str(target), "--model", "pix-1")
    assert code == 0, err
    assert "signed image" in out and "pix-1" in out and target.exists()

    code, out, err = run("media", "verify", str(target), "--trust", str(chain["root"]))
    assert code == 0, out + err
    assert "TRUSTED" in out
    assert "trainedAlgorithmicMedia" in out and "pix-1" in out and "c2pa.created" in out

    code, out, _ = run("media", "verify", str(target))  # nobody said whom to trust
    assert code == 3 and "UNTRUSTED" in out and "--trust" in out

    tampered = tmp_path / "tampered.png"
    tampered.write_bytes(target.read_bytes().replace(b"pix-1", b"pix-2"))
    code, out, _ = run("media", "verify", str(tampered), "--trust", str(chain["root"]), "--json")
    assert code == 1
    report = json.loads(out)
    assert report["verdict"] == "invalid" and report["file"] == str(tampered)

    code, out, _ = run("media", "verify", str(source))
    assert code == 3 and "UNSIGNED" in out


def test_sign_and_verify_text(chain: dict[str, Path], tmp_path: Path) -> None:
    source = tmp_path / "answer.txt"
    source.write_text("A generated answer, nothing more.\n", encoding="utf-8")
    target = tmp_path / "answer.signed.txt"
    code, out, err = run("media", "sign", str(source), str(target), "--model", "chat-2")
    assert code == 0, err
    assert "signed text" in out
    code, out, _ = run("media", "verify", str(target), "--trust", str(chain["root"]))
    assert code == 0 and "TRUSTED" in out and "chat-2" in out
    target.write_text(target.read_text(encoding="utf-8").replace("nothing", "something"))
    code, out, _ = run("media", "verify", str(target), "--trust", str(chain["root"]))
    assert code == 1 and "INVALID" in out and "TAMPERED" in out


def test_expired_certificate_is_a_clear_error_and_nothing_is_written(
    chain: dict[str, Path], tmp_path: Path
) -> None:
    source = tmp_path / "generated.png"
    source.write_bytes(encode(generated_image(6)))
    target = tmp_path / "signed.png"
    code, out, err = run(
        "media",
        "sign",
        str(source),
        str(target),
        "--model",
        "pix-1",
        "--cert",
        str(chain["expired_chain"]),
        "--key",
        str(chain["expired_key"]),
    )
    assert code != 0 and not target.exists()
    assert "expired on" in err and "Traceback" not in err
    assert "PRIVATE KEY" not in out + err


def test_missing_settings_say_what_to_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAFESTACK_PROVENANCE_CERT", raising=False)
    monkeypatch.delenv("SAFESTACK_PROVENANCE_KEY", raising=False)
    source = tmp_path / "generated.png"
    source.write_bytes(encode(generated_image(7)))
    code, _, err = run("media", "sign", str(source), str(tmp_path / "out.png"), "--model", "m")
    assert code != 0 and "SAFESTACK_PROVENANCE_CERT" in err
