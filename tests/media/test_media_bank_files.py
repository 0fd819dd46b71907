"""Reading hash lists: HMA CSV, JSON, plain; malformed hashes named by file and line, then skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from safestack.errors import MediaError
from safestack.media import read_bank_file
from safestack.store import BankEntry

PDQ = "f" * 16 + "0" * 48
SHA = "ab" * 32
MD5 = "cd" * 16


def test_hma_csv_rows_with_and_without_a_header(tmp_path: Path) -> None:
    bare = tmp_path / "bare.csv"
    bare.write_text(f"pdq,{PDQ.upper()}\nmd5,{MD5}\n\nsha256,{SHA}\n")
    assert read_bank_file(bare, "hma-csv").entries == [
        BankEntry(kind="pdq", value=PDQ),
        BankEntry(kind="md5", value=MD5),
        BankEntry(kind="sha256", value=SHA),
    ]
    headed = tmp_path / "headed.csv"
    headed.write_text(f"bank,signal_value,quality,signal_type\nx,{PDQ},87,photo_pdq\n")
    assert read_bank_file(headed, "hma-csv").entries == [
        BankEntry(kind="pdq", value=PDQ, quality=87)
    ]


def test_malformed_csv_rows_are_named_by_line_and_the_rest_imports(tmp_path: Path) -> None:
    path = tmp_path / "bank.csv"
    path.write_text(
        f"pdq,{PDQ}\npdq,{PDQ[:-1]}\npdq,{PDQ[:-1]}g\nvideo_tmk,{PDQ}\nlonely\npdq,{PDQ}\n"
    )
    parsed = read_bank_file(path, "hma-csv")
    assert len(parsed.entries) == 2
    assert [str(p) for p in parsed.problems] == [
        f"{path}:2: '{PDQ[:-1]}' is not a pdq hash (64 hex digits)",
        f"{path}:3: '{PDQ[:-1]}g' is not a pdq hash (64 hex digits)",
        f"{path}:4: unknown signal type 'video_tmk' (image hashes: "
        "hash_md5, hash_pdq, hash_sha256, md5, pdq, pdq_hash, photo_md5, photo_pdq, sha-256, sha256)",
        f"{path}:5: expected 'signal_type,hash' (e.g. pdq,<hex>)",
    ]


def test_json_list_object_and_lines(tmp_path: Path) -> None:
    listed = tmp_path / "list.json"
    listed.write_text(
        json.dumps(
            [
                {"signal_type": "pdq", "signal_value": PDQ, "quality": 90},
                {"signal_type": "pdq", "signal_value": "zz"},
                {"signal_type": "pdq", "signal_value": PDQ, "quality": 101},
                7,
            ]
        )
    )
    parsed = read_bank_file(listed, "json")
    assert parsed.entries == [BankEntry(kind="pdq", value=PDQ, quality=90)]
    assert [p.where for p in parsed.problems] == [
        f"{listed}: entry 2",
        f"{listed}: entry 3",
        f"{listed}: entry 4",
    ]
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"signals": [{"type": "sha256", "hash": SHA}]}))
    assert read_bank_file(wrapped, "json").entries == [BankEntry(kind="sha256", value=SHA)]
    lines = tmp_path / "lines.jsonl"
    lines.write_text(json.dumps({"signal_type": "md5", "signal_value": MD5}) + "\n{broken\n")
    parsed = read_bank_file(lines, "json")
    assert parsed.entries == [BankEntry(kind="md5", value=MD5)]
    [problem] = parsed.problems
    assert str(problem).startswith(f"{lines}:2: not JSON")


def test_not_json_at_all_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bank.json"
    path.write_text(f"pdq,{PDQ}\n")
    with pytest.raises(MediaError, match=r"bank.json:1: not JSON .*use --format hma-csv or plain"):
        read_bank_file(path, "json")


def test_plain_hash_a_line_and_threatexchange_type_prefix(tmp_path: Path) -> None:
    path = tmp_path / "hashes.txt"
    path.write_text(f"# exported 2026-12-01\n{PDQ}\n{MD5}\npdq {PDQ[::-1]}\nnot-hex\n")
    parsed = read_bank_file(path, "plain")
    assert parsed.entries == [
        BankEntry(kind="pdq", value=PDQ),
        BankEntry(kind="md5", value=MD5),
        BankEntry(kind="pdq", value=PDQ[::-1]),
    ]
    assert [p.where for p in parsed.problems] == [f"{path}:5"]
    assert read_bank_file(path, "plain", kind="sha256").entries[0] == BankEntry(
        kind="sha256", value=PDQ
    )


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"nope.csv: cannot read the bank file"):
        read_bank_file(tmp_path / "nope.csv", "hma-csv")
