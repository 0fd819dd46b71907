"""Report files for match cases: what a NCMEC CyberTipline report asks, as JSON or as XML in the
structure of the CyberTipline Reporting API (a `report` and the file's `fileDetails`).

Nothing is sent anywhere: a person reviews the case, files the report and then marks the case
`reported` (`safestack media case review`). The XML follows the element names of the public
CyberTipline API documentation; the XSD shipped beside it (assets/cybertipline-draft.xsd) is
safestack's, written from that public field list, not NCMEC's official schema.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from safestack import __version__
from safestack.errors import MediaError
from safestack.settings import Settings
from safestack.store import MediaCase

REPORT_SCHEMA_VERSION = 1
# The CyberTipline's incident type for apparent child sexual abuse material.
INCIDENT_TYPE = "Child Pornography (possession, manufacture, and distribution)"
XSD = "cybertipline-draft.xsd"


@dataclass(frozen=True)
class Reporter:
    """Who files the report, from settings (SAFESTACK_MEDIA_REPORTER_*)."""

    org: str | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Reporter:
        return cls(
            org=settings.media_reporter_org,
            name=settings.media_reporter_name,
            email=settings.media_reporter_email,
            phone=settings.media_reporter_phone,
        )

    def missing(self) -> list[str]:
        """The settings a filed report needs that are not set."""
        return [
            f"SAFESTACK_MEDIA_REPORTER_{field.upper()}"
            for field in ("org", "name", "email")
            if not getattr(self, field)
        ]


def case_report(
    case: MediaCase, reporter: Reporter, *, now: datetime | None = None
) -> dict[str, Any]:
    """The report's content: CyberTipline's sections (camelCase, as its API names them) plus the
    case as safestack keeps it (`safestackCase`)."""
    context = case.context
    incident = _iso(case.created_at)
    ip_event = (
        {"ipAddress": context["ip"], "eventName": "Upload", "dateTime": incident}
        if context.get("ip")
        else None
    )
    first, _, last = (reporter.name or "").rpartition(" ")
    hashes = [{"hashType": "MD5", "value": case.md5}, {"hashType": "SHA256", "value": case.sha256}]
    details = [{"name": "PDQ", "value": case.pdq}] if case.pdq else []
    if case.quality is not None:
        details.append({"name": "PDQ quality", "value": str(case.quality)})
    banks = sorted({m.bank for m in case.matches})
    return {
        "schemaVersion": REPORT_SCHEMA_VERSION,
        "generatedAt": _iso(now or datetime.now(UTC)),
        "generatedBy": f"safestack {__version__}",
        "notice": "A draft for a person to review and file; nothing was sent. The structure "
        "follows the public CyberTipline Reporting API documentation; it is not NCMEC's "
        "official schema.",
        "report": {
            "incidentSummary": {"incidentType": INCIDENT_TYPE, "incidentDateTime": incident},
            "reporter": {
                "reportingPerson": {
                    "firstName": first or None,
                    "lastName": last or None,
                    "email": reporter.email,
                    "phone": reporter.phone,
                },
                "companyName": reporter.org,
            },
            "personOrUserReported": {
                # The end user as the deployment's application named them, else the API key.
                "espIdentifier": context.get("user")
                or context.get("safety_identifier")
                or context.get("key_id"),
                "espService": f"safestack gateway {context.get('endpoint') or ''}".strip(),
                "screenName": context.get("key_name"),
                "ipCaptureEvent": ip_event,
                "additionalInfo": _user_info(context),
            },
            "additionalInfo": f"Image matched {len(case.matches)} entr"
            f"{'y' if len(case.matches) == 1 else 'ies'} of hash bank(s) {', '.join(banks)} "
            f"(closest PDQ distance {min(m.distance for m in case.matches)}); the image was "
            "refused and not forwarded. safestack media case "
            f"{case.id}, review status {case.status}.",
        },
        "fileDetails": {
            "fileId": case.sha256,
            "originalFileName": context.get("part"),
            "locationOfFile": context.get("url"),
            "publiclyAvailable": False,
            "originalFileHash": hashes,
            "ipCaptureEvent": ip_event,
            "details": details,
            "additionalInfo": [
                f"{context.get('format') or 'image'} {context.get('width')}x"
                f"{context.get('height')}, {context.get('bytes')} bytes",
                "kept encrypted in the media quarantine as " + context["quarantine"]
                if context.get("quarantine")
                else "not kept (no media quarantine configured)",
            ],
        },
        "safestackCase": {
            "id": case.id,
            "status": case.status,
            "reviewer": case.reviewer,
            "decisionNote": case.decision_note,
            "reviewedAt": _iso(case.reviewed_at) if case.reviewed_at else None,
            "matches": [m.model_dump(mode="json") for m in case.matches],
            "context": {k: v for k, v in context.items() if v is not None},
        },
    }


def report_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def report_xml(report: dict[str, Any]) -> str:
    """The report as XML; checked well-formed by parsing it back before it is returned."""
    root = ET.Element(
        "cybertiplineDraft",
        {
            "schemaVersion": str(report["schemaVersion"]),
            "generatedAt": report["generatedAt"],
            "generatedBy": report["generatedBy"],
        },
    )
    root.append(ET.Comment(f" {report['notice']} "))
    body = report["report"]
    element = ET.SubElement(root, "report")
    _children(element, "incidentSummary", body["incidentSummary"])
    reporter = ET.SubElement(element, "reporter")
    _children(reporter, "reportingPerson", body["reporter"]["reportingPerson"])
    _text(reporter, "companyName", body["reporter"]["companyName"])
    person = body["personOrUserReported"]
    reported = ET.SubElement(element, "personOrUserReported")
    for name in ("espIdentifier", "espService", "screenName"):
        _text(reported, name, person[name])
    if person["ipCaptureEvent"]:
        _children(reported, "ipCaptureEvent", person["ipCaptureEvent"])
    _text(reported, "additionalInfo", person["additionalInfo"])
    _text(element, "additionalInfo", body["additionalInfo"])

    files = report["fileDetails"]
    file = ET.SubElement(root, "fileDetails")
    for name in ("fileId", "originalFileName", "locationOfFile"):
        _text(file, name, files[name])
    _text(file, "publiclyAvailable", "true" if files["publiclyAvailable"] else "false")
    for digest in files["originalFileHash"]:
        ET.SubElement(file, "originalFileHash", {"hashType": digest["hashType"]}).text = digest[
            "value"
        ]
    if files["ipCaptureEvent"]:
        _children(file, "ipCaptureEvent", files["ipCaptureEvent"])
    if files["details"]:
        details = ET.SubElement(file, "details", {"type": "HASH"})
        for pair in files["details"]:
            _children(details, "nameValuePair", pair)
    for info in files["additionalInfo"]:
        _text(file, "additionalInfo", info)

    case = report["safestackCase"]
    kept = ET.SubElement(root, "safestackCase", {"id": case["id"], "status": case["status"]})
    for name in ("reviewer", "decisionNote", "reviewedAt"):
        _text(kept, name, case[name])
    matches = ET.SubElement(kept, "matches")
    for match in case["matches"]:
        ET.SubElement(matches, "match", {k: str(v) for k, v in match.items()})
    context = ET.SubElement(kept, "context")
    for key, value in case["context"].items():
        ET.SubElement(context, "entry", {"name": str(key)}).text = str(value)

    ET.indent(root)
    text = '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
    try:
        ET.fromstring(text.encode())
    except ET.ParseError as exc:  # a bug here, never the user's: say so
        raise MediaError(f"the report XML is not well-formed ({exc}); please report this") from None
    return text


def xsd_text() -> str:
    """safestack's XSD for the XML report (written from the public field list; not NCMEC's)."""
    return resources.files("safestack.media").joinpath("assets", XSD).read_text(encoding="utf-8")


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:  # SQLite gives naive datetimes back; the store writes UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _user_info(context: dict[str, Any]) -> str | None:
    parts = [
        f"{label} {context[key]}"
        for key, label in (
            ("key_id", "API key"),
            ("forwarded_for", "X-Forwarded-For"),
            ("user_agent", "User-Agent"),
            ("request_id", "request id"),
        )
        if context.get(key)
    ]
    return "; ".join(parts) or None


def _text(parent: ET.Element, name: str, value: Any) -> None:
    """A child element with text, left out when there is no value."""
    if value is not None and value != "":
        ET.SubElement(parent, name).text = str(value)


def _children(parent: ET.Element, name: str, values: dict[str, Any]) -> None:
    element = ET.SubElement(parent, name)
    for key, value in values.items():
        _text(element, key, value)
