"""Report files for match cases (issue 16 item 3): JSON and the CyberTipline XML structure, valid
against safestack's XSD; `safestack media case export`; nothing is sent anywhere."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree
from typer.testing import CliRunner

from safestack.cli.main import app
from safestack.media.reports import Reporter, case_report, report_json, report_xml, xsd_text
from safestack.store import CaseMatch, MediaCase, Store

runner = CliRunner()
MD5 = "0" * 31 + "1"
SHA256 = "ab" * 32
PDQ = "f0" * 32
INCIDENT = datetime(2026, 12, 5, 1, 2, 3, tzinfo=UTC)
REPORTER = Reporter(
    org="Acme AI", name="Ana de la Cruz", email="trust@acme.example", phone="+1 555 0100"
)


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cases.db'}"
    monkeypatch.setenv("SAFESTACK_DB_URL", url)
    return url


def open_case(url: str, **context: object) -> MediaCase:
    with Store.open(url) as store:
        return store.media_cases.open(
            md5=MD5,
            sha256=SHA256,
            pdq=PDQ,
            quality=92,
            matches=[
                CaseMatch(
                    bank="ncmec",
                    entry_id="e1",
                    kind="pdq",
                    value=PDQ,
                    distance=6,
                    variant="flip-x",
                )
            ],
            context={
                "request_id": "r1",
                "endpoint": "/v1/chat/completions",
                "key_id": "ssk_12345678",
                "key_name": "mobile app",
                "ip": "203.0.113.9",
                "user": "account-17",
                "part": "messages[0].content[1]",
                "source": "data-url",
                "format": "PNG",
                "width": 320,
                "height": 240,
                "bytes": 1234,
                "quarantine": None,
                **context,
            },
            at=INCIDENT,
        )


def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.fromstring(xsd_text().encode()))


def test_the_json_report_has_the_fields_a_cybertipline_report_asks(db_url: str) -> None:
    case = open_case(db_url)
    report = json.loads(report_json(case_report(case, REPORTER)))
    summary = report["report"]["incidentSummary"]
    assert summary["incidentDateTime"] == "2026-12-05T01:02:03Z"
    assert summary["incidentType"].startswith("Child Pornography")
    person = report["report"]["reporter"]["reportingPerson"]
    assert (person["firstName"], person["lastName"]) == ("Ana de la", "Cruz")
    assert person["email"] == "trust@acme.example"
    assert report["report"]["reporter"]["companyName"] == "Acme AI"
    reported = report["report"]["personOrUserReported"]
    assert reported["espIdentifier"] == "account-17" and reported["screenName"] == "mobile app"
    assert reported["ipCaptureEvent"] == {
        "ipAddress": "203.0.113.9",
        "eventName": "Upload",
        "dateTime": "2026-12-05T01:02:03Z",
    }
    files = report["fileDetails"]
    assert files["originalFileHash"] == [
        {"hashType": "MD5", "value": MD5},
        {"hashType": "SHA256", "value": SHA256},
    ]
    assert {"name": "PDQ", "value": PDQ} in files["details"]
    assert report["safestackCase"]["matches"][0]["distance"] == 6
    assert report["safestackCase"]["status"] == "open"
    assert "nothing was sent" in report["notice"] and "not NCMEC's official" in report["notice"]


def test_the_xml_report_is_well_formed_and_valid_against_the_xsd(db_url: str) -> None:
    case = open_case(db_url)
    text = report_xml(case_report(case, REPORTER))
    document = etree.fromstring(text.encode())
    schema().assertValid(document)
    assert document.findtext("report/incidentSummary/incidentDateTime") == "2026-12-05T01:02:03Z"
    assert document.findtext("report/personOrUserReported/ipCaptureEvent/ipAddress") == (
        "203.0.113.9"
    )
    hashes = {h.get("hashType"): h.text for h in document.findall("fileDetails/originalFileHash")}
    assert hashes == {"MD5": MD5, "SHA256": SHA256}
    [match] = document.findall("safestackCase/matches/match")
    assert match.get("bank") == "ncmec" and match.get("distance") == "6"


def test_hostile_context_values_are_escaped_not_injected(db_url: str) -> None:
    case = open_case(db_url, user='</espIdentifier><evil a="1">&', key_name="]]><!--")
    text = report_xml(case_report(case, REPORTER))
    document = etree.fromstring(text.encode())
    schema().assertValid(document)
    assert document.findtext("report/personOrUserReported/espIdentifier") == (
        '</espIdentifier><evil a="1">&'
    )
    assert document.find(".//evil") is None


def test_the_xsd_rejects_a_report_missing_a_required_field(db_url: str) -> None:
    case = open_case(db_url)
    document = etree.fromstring(report_xml(case_report(case, REPORTER)).encode())
    file = document.find("fileDetails")
    assert file is not None
    file.remove(file.find("fileId"))
    assert not schema().validate(document)


def test_a_report_without_an_ip_or_reporter_still_validates(db_url: str) -> None:
    case = open_case(db_url, ip=None, user=None)
    report = case_report(case, Reporter())
    assert report["report"]["personOrUserReported"]["ipCaptureEvent"] is None
    assert report["report"]["personOrUserReported"]["espIdentifier"] == "ssk_12345678"
    schema().assertValid(etree.fromstring(report_xml(report).encode()))
    assert Reporter().missing() == [
        "SAFESTACK_MEDIA_REPORTER_ORG",
        "SAFESTACK_MEDIA_REPORTER_NAME",
        "SAFESTACK_MEDIA_REPORTER_EMAIL",
    ]


def test_cli_exports_json_and_xml(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = open_case(db_url)
    result = runner.invoke(app, ["media", "case", "export", case.id])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["safestackCase"]["id"] == case.id
    assert "SAFESTACK_MEDIA_REPORTER_ORG" in result.stderr  # incomplete reporter: said, not fatal

    monkeypatch.setenv("SAFESTACK_MEDIA_REPORTER_ORG", "Acme AI")
    monkeypatch.setenv("SAFESTACK_MEDIA_REPORTER_NAME", "Ana Cruz")
    monkeypatch.setenv("SAFESTACK_MEDIA_REPORTER_EMAIL", "trust@acme.example")
    out = tmp_path / "report.xml"
    result = runner.invoke(
        app, ["media", "case", "export", case.id, "--format", "xml", "--out", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    assert f"xml report written to {out}" in result.stdout and result.stderr == ""
    document = etree.fromstring(out.read_bytes())
    schema().assertValid(document)
    assert document.findtext("report/reporter/companyName") == "Acme AI"


def test_cli_export_of_an_unknown_case_is_a_clear_error(db_url: str) -> None:
    result = runner.invoke(app, ["media", "case", "export", "nope"])
    assert result.exit_code != 0
    assert "no media case 'nope'" in result.stderr


def test_quarantine_key_prints_a_usable_key() -> None:
    from safestack.media.quarantine import Quarantine

    result = runner.invoke(app, ["media", "quarantine-key"])
    assert result.exit_code == 0
    Quarantine(Path("unused"), result.stdout.strip())  # a valid Fernet key


def test_cli_decrypts_a_quarantined_image_with_the_key(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safestack.media.quarantine import Quarantine, new_key

    key, folder, image = new_key(), tmp_path / "q", b"\x89PNG not really an image"
    name = Quarantine(folder, key).keep(image)
    kept = open_case(db_url, quarantine=name)
    not_kept = open_case(db_url)
    out = tmp_path / "evidence.bin"

    result = runner.invoke(app, ["media", "case", "image", kept.id, "--out", str(out)])
    assert result.exit_code != 0 and "SAFESTACK_MEDIA_QUARANTINE_KEY is not set" in result.stderr
    monkeypatch.setenv("SAFESTACK_MEDIA_QUARANTINE_KEY", key)
    monkeypatch.setenv("SAFESTACK_MEDIA_QUARANTINE_DIR", str(folder))
    result = runner.invoke(app, ["media", "case", "image", kept.id, "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes() == image
    result = runner.invoke(app, ["media", "case", "image", not_kept.id, "--out", str(out)])
    assert result.exit_code != 0 and "was not kept" in result.stderr
    assert key not in result.stderr + result.stdout
