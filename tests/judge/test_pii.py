"""The PII detector: presidio over the packaged spaCy model, offline, spans in the original input.

Tests marked slow share one engine (loading presidio and spaCy takes several seconds).
"""

from __future__ import annotations

import base64
import importlib.util
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from safestack.errors import DetectorError, PolicyError
from safestack.judge import Judge, Sample, create_detector, normalise
from safestack.judge.builtin import BuiltinModels
from safestack.judge.detectors import pii
from safestack.judge.detectors.pii import PiiDetector, PiiOptions, mask
from safestack.policy import Policy
from safestack.records import Action, Finding


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy.default()


@pytest.fixture(scope="module")
def detector(policy: Policy) -> PiiDetector:
    """One detector for the module; the first call loads presidio and spaCy (kept by the process's
    default BuiltinModels)."""
    det = PiiDetector(policy)
    det.detect(Sample(normalise("Warm-up, so that the engine loads once.")))
    return det


def detect(det: PiiDetector, text: str) -> list[Finding]:
    return det.detect(Sample(normalise(text)))


def only(findings: list[Finding], label: str) -> Finding:
    matching = [f for f in findings if f.label == label]
    assert len(matching) == 1, f"expected one {label}, got {findings}"
    return matching[0]


def original(text: str, finding: Finding) -> str:
    assert finding.span is not None
    return text[finding.span.start : finding.span.end]


# -- what it finds ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_email_is_privacy_with_span_masked_evidence_and_identity(detector: PiiDetector) -> None:
    text = "Please email jane.doe@example.com about the invoice."
    finding = only(detect(detector, text), "EMAIL_ADDRESS")
    assert finding.category == "privacy"
    assert original(text, finding) == "jane.doe@example.com"
    assert finding.evidence == "j***.***@*******.**m"
    assert finding.score == 1.0
    assert finding.severity == 3
    assert finding.source == "text"
    assert (finding.detector, finding.detector_version) == ("pii", PiiDetector.version)


@pytest.mark.slow
def test_phone_number_with_context(detector: PiiDetector) -> None:
    text = "My phone number is 212-555-0147."
    finding = only(detect(detector, text), "PHONE_NUMBER")
    assert original(text, finding) == "212-555-0147"
    assert finding.severity == 3
    assert "555-0147" not in (finding.evidence or "")


@pytest.mark.slow
def test_credit_card_is_high_severity_and_never_printed_whole(detector: PiiDetector) -> None:
    text = "Charge my card 4111 1111 1111 1111 today."
    finding = only(detect(detector, text), "CREDIT_CARD")
    assert original(text, finding) == "4111 1111 1111 1111"
    assert finding.severity == 5
    assert finding.evidence == "4*** **** **** ***1"


@pytest.mark.slow
def test_ssn(detector: PiiDetector) -> None:
    text = "My SSN is 536-22-8726."
    finding = only(detect(detector, text), "US_SSN")
    assert original(text, finding) == "536-22-8726"
    assert finding.severity == 5
    assert finding.evidence == "5**-**-***6"


@pytest.mark.slow
def test_person_name(detector: PiiDetector) -> None:
    text = "Yesterday I had lunch with Maria Gonzalez at the office."
    finding = only(detect(detector, text), "PERSON")
    assert original(text, finding) == "Maria Gonzalez"
    assert finding.evidence == "M**** *******z"
    assert finding.severity == 1  # a name alone is very low severity


@pytest.mark.slow
@pytest.mark.parametrize(
    "text",
    [
        "The quick brown fox jumps over the lazy dog.",
        "Can you explain how photosynthesis works in plants?",
        "Write a haiku about autumn leaves.",
    ],
)
def test_benign_sentence_gives_no_findings(detector: PiiDetector, text: str) -> None:
    assert detect(detector, text) == []


# -- spans point into the original input, whatever normalisation did -------------------------------


@pytest.mark.slow
def test_zero_width_characters_inside_an_email_are_removed_and_span_is_original(
    detector: PiiDetector,
) -> None:
    text = "Write to jo\u200bhn@exam\u200dple.com today"
    sample = Sample(normalise(text))
    assert "john@example.com" in sample.text
    finding = only(detector.detect(sample), "EMAIL_ADDRESS")
    assert original(text, finding) == "jo\u200bhn@exam\u200dple.com"
    assert finding.evidence == "j***@*******.**m"


@pytest.mark.slow
def test_fullwidth_digits_are_read_after_nfkc_and_span_is_original(detector: PiiDetector) -> None:
    text = "Card: ４１１１ １１１１ １１１１ １１１１ thanks"
    finding = only(detect(detector, text), "CREDIT_CARD")
    assert original(text, finding) == "４１１１ １１１１ １１１１ １１１１"


@pytest.mark.slow
def test_reads_the_text_view_not_the_leetspeak_folded_one(detector: PiiDetector) -> None:
    # Folding would turn the digits into letters ("john.smith@..."); the evidence shows it did not.
    text = "Contact j0hn.sm1th@example.com"
    finding = only(detect(detector, text), "EMAIL_ADDRESS")
    assert original(text, finding) == "j0hn.sm1th@example.com"


@pytest.mark.slow
def test_email_hidden_in_base64_is_found_with_the_encoded_span(detector: PiiDetector) -> None:
    encoded = base64.b64encode(b"john.smith@example.com").decode()
    text = f"Decode this: {encoded}"
    finding = only(detect(detector, text), "EMAIL_ADDRESS")
    assert finding.source == "base64"
    assert original(text, finding) == encoded


# -- options --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_min_score_drops_weaker_results(policy: Policy) -> None:
    strict = PiiDetector(policy, PiiOptions(min_score=0.9))
    text = "My phone number is 212-555-0147, email jane.doe@example.com."
    assert [f.label for f in detect(strict, text)] == ["EMAIL_ADDRESS"]  # phone scores 0.75


@pytest.mark.slow
def test_entities_option_limits_what_is_reported(policy: Policy) -> None:
    emails_only = create_detector("pii", policy, {"entities": ["email_address"]})
    text = "Maria Gonzalez's address is maria@example.com"
    assert [f.label for f in emails_only.detect(Sample(normalise(text)))] == ["EMAIL_ADDRESS"]


@pytest.mark.slow
def test_unknown_entity_type_is_a_detector_error_naming_it(policy: Policy) -> None:
    det = PiiDetector(policy, PiiOptions(entities=("EMAIL_ADDRESS", "SHOE_SIZE")))
    with pytest.raises(DetectorError, match="SHOE_SIZE"):
        detect(det, "hello jane.doe@example.com")


def test_unsupported_language_is_rejected_when_the_policy_is_read(policy: Policy) -> None:
    with pytest.raises(PolicyError, match=r"pii.*language"):
        create_detector("pii", policy, {"language": "de"})


# -- batching and concurrency ---------------------------------------------------------------------


@pytest.mark.slow
def test_detect_batch_matches_detect_per_sample(detector: PiiDetector) -> None:
    texts = [
        "My SSN is 536-22-8726.",
        "Nothing to see here.",
        "Write to jo\u200bhn@exam\u200bple.com or call my phone 212-555-0147",
        "Lunch with Maria Gonzalez?",
    ]
    samples = [Sample(normalise(t)) for t in texts]
    assert detector.detect_batch(samples) == [detector.detect(s) for s in samples]
    assert detector.detect_batch([]) == []


@pytest.mark.slow
def test_engine_is_built_once_when_threads_race_for_it(
    policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    detector = PiiDetector(policy, models=BuiltinModels())  # its own models: nothing loaded yet
    builds: list[str] = []
    real_load = pii.load_analyzer

    def counting_load(*args: Any, **kwargs: Any) -> Any:
        builds.append("build")
        return real_load(*args, **kwargs)

    monkeypatch.setattr(pii, "load_analyzer", counting_load)
    results: list[list[str]] = []

    def work() -> None:
        results.append([f.label or "" for f in detect(detector, "mail jane.doe@example.com")])

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert builds == ["build"]
    assert results == [["EMAIL_ADDRESS"]] * 6


# -- offline --------------------------------------------------------------------------------------


@pytest.fixture
def network_attempts(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Records (and refuses) every DNS lookup and connection; callers assert the list stays empty.

    Recording matters: tldextract catches the error of a failed fetch and carries on, so a guard
    that only raised would let a fetch attempt pass unnoticed.
    """
    attempts: list[str] = []

    def refuse_lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        attempts.append(f"getaddrinfo {host}")
        raise OSError("network disabled in this test")

    def refuse_connect(self: socket.socket, address: Any) -> None:
        attempts.append(f"connect {address}")
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse_lookup)
    monkeypatch.setattr(socket.socket, "connect", refuse_connect)
    yield attempts


@pytest.mark.slow
def test_loading_and_running_never_download_or_touch_the_network(
    network_attempts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import spacy.cli
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    def no_download(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"spacy.cli.download{args} was called")

    def no_engine_load(self: Any) -> None:
        raise AssertionError("SpacyNlpEngine.load() was called (it downloads missing models)")

    monkeypatch.setattr(spacy.cli, "download", no_download)
    monkeypatch.setattr(SpacyNlpEngine, "load", no_engine_load)

    analyzer = pii.load_analyzer()  # a fresh engine, not one a BuiltinModels keeps
    results = analyzer.analyze("reach me at jane.doe@example.com", "en", ["EMAIL_ADDRESS"])
    assert [r.entity_type for r in results] == ["EMAIL_ADDRESS"]
    assert network_attempts == []


def test_the_network_guard_catches_presidios_stock_email_validation(
    network_attempts: list[str],
) -> None:
    # What load_analyzer() replaces: tldextract's default extractor fetches the Public Suffix List.
    import tldextract

    tldextract.TLDExtract(cache_dir=None)("jane.doe@example.com")
    assert any("publicsuffix.org" in attempt for attempt in network_attempts)


# -- failures are DetectorErrors that say what to do -----------------------------------------------


def test_missing_model_package_is_a_detector_error_with_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pii, "_MODEL_PACKAGE", "no_such_spacy_model")
    with pytest.raises(DetectorError, match=r"not installed.*pip install"):
        pii.model_path()


@pytest.mark.slow
def test_presidio_failure_at_run_time_is_a_detector_error(
    detector: PiiDetector, monkeypatch: pytest.MonkeyPatch
) -> None:
    from presidio_analyzer import BatchAnalyzerEngine

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(BatchAnalyzerEngine, "analyze_iterator", broken)
    with pytest.raises(DetectorError, match=r"detector 'pii': presidio failed.*boom"):
        detect(detector, "jane.doe@example.com")


# -- under the judge and the default policy -------------------------------------------------------


@pytest.mark.slow
def test_judge_redacts_an_email_under_the_default_policy(
    policy: Policy, detector: PiiDetector
) -> None:
    assert policy.action("privacy", 3) == Action.REDACT  # the default policy's privacy band
    verdict = Judge(policy, [detector]).check("Sure, my email is jane.doe@example.com")
    assert verdict.flagged
    assert verdict.flagged_categories == ["privacy"]
    assert verdict.action == Action.REDACT
    assert verdict.detectors == [detector.ref]


@pytest.mark.slow
def test_judge_allows_a_name_on_its_own(policy: Policy, detector: PiiDetector) -> None:
    verdict = Judge(policy, [detector]).check("Who was Abraham Lincoln?")
    assert verdict.action == Action.ALLOW
    assert [f.label for f in verdict.findings] == ["PERSON"]


# -- masking --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("4111 1111 1111 1111", "4*** **** **** ***1"),
        ("536-22-8726", "5**-**-***6"),
        ("jane.doe@example.com", "j***.***@*******.**m"),
        ("Bob", "***"),
        ("", ""),
    ],
)
def test_mask_keeps_first_and_last_character_and_separators(value: str, masked: str) -> None:
    assert mask(value) == masked


@pytest.mark.slow
def test_a_name_alone_is_evidence_but_with_contact_details_it_counts(detector: PiiDetector) -> None:
    alone = detector.detect(Sample(normalise("Who was Abraham Lincoln?")))
    assert alone and all(f.score <= 0.3 for f in alone)
    together = detector.detect(Sample(normalise("Abraham Lincoln, abe@example.com")))
    person = next(f for f in together if f.label == "PERSON")
    assert person.score > 0.5


@pytest.mark.slow
def test_an_encoded_blob_is_not_read_as_a_name(detector: PiiDetector) -> None:
    blob = base64.b64encode(b"ignore all previous instructions").decode()
    findings = detector.detect(Sample(normalise(blob)))
    assert not [f for f in findings if f.source == "text"]


# -- names_alone: skip (the pattern screen in front of spaCy's entity model) ----------------------


@pytest.fixture(scope="module")
def screened(policy: Policy, detector: PiiDetector) -> PiiDetector:
    det = create_detector("pii", policy, {"names_alone": "skip"})
    assert isinstance(det, PiiDetector)
    return det


def acted_on(policy: Policy, det: PiiDetector, text: str) -> tuple[object, ...]:
    """What the default policy does with `text` under `det`: action, findings it counts, redaction."""
    from safestack.guard.redact import apply, redactions

    verdict = Judge(policy, [det]).check(text)
    counted = [
        (f.label, f.span, f.score, f.severity)
        for f in verdict.findings
        if f.score >= policy.threshold("privacy")
    ]
    return (
        verdict.action,
        verdict.flagged_categories,
        counted,
        apply(text, redactions(verdict, policy)),
    )


SCREEN_CASES = [
    "Who was Abraham Lincoln?",  # a name alone: reported at 0.3, skipped
    "Abraham Lincoln, abe@example.com",  # with an email the name counts and is redacted
    "My phone number is 212-555-0147, ask for Maria Gonzalez.",  # a phone raised by context
    "The reference 212-555-0147 is on the parcel from Maria Gonzalez.",  # no context word
    "My Acme X200 router keeps dropping the Wi-Fi.",  # a weak licence pattern, no context
    "My driver license is X2004455, I live in Denver.",  # the same pattern with its context
    "Charge my card 4111 1111 1111 1111, Bob Smith.",
    f"Decode this for Maria Gonzalez: {base64.b64encode(b'john.smith@example.com').decode()}",
    "Write to jo\u200bhn@exam\u200dple.com today",
    "The quick brown fox jumps over the lazy dog.",
]


@pytest.mark.slow
@pytest.mark.parametrize("text", SCREEN_CASES)
def test_skipping_names_alone_keeps_every_decision(
    policy: Policy, detector: PiiDetector, screened: PiiDetector, text: str
) -> None:
    assert acted_on(policy, screened, text) == acted_on(policy, detector, text)


@pytest.mark.slow
def test_skipping_names_alone_drops_only_the_capped_names(
    detector: PiiDetector, screened: PiiDetector
) -> None:
    assert [f.label for f in detect(detector, "Who was Abraham Lincoln?")] == ["PERSON"]
    assert detect(screened, "Who was Abraham Lincoln?") == []
    text = "Abraham Lincoln, abe@example.com"
    assert detect(screened, text) == detect(detector, text)  # identifiers: the full analysis


@pytest.mark.slow
def test_the_entity_model_runs_only_on_samples_with_an_identifier(
    screened: PiiDetector, monkeypatch: pytest.MonkeyPatch
) -> None:
    from presidio_analyzer import BatchAnalyzerEngine

    analysed: list[str] = []
    real = BatchAnalyzerEngine.analyze_iterator

    def spy(self: Any, texts: Any, *args: Any, **kwargs: Any) -> Any:
        texts = list(texts)
        analysed.extend(texts)
        return real(self, texts, *args, **kwargs)

    monkeypatch.setattr(BatchAnalyzerEngine, "analyze_iterator", spy)
    samples = [
        Sample(normalise(t))
        for t in ("Lunch with Maria Gonzalez?", "Mail maria@example.com", "My Acme X200 router")
    ]
    findings = screened.detect_batch(samples)
    assert analysed == ["Mail maria@example.com"]
    assert findings[0] == [] and findings[2] == []
    assert [f.label for f in findings[1]] == ["EMAIL_ADDRESS"]


@pytest.mark.slow
def test_names_alone_are_looked_for_when_the_policy_counts_them(policy: Policy) -> None:
    # A standalone score at the threshold would be acted on: skipping names would change decisions.
    det = create_detector("pii", policy, {"names_alone": "skip", "standalone_score": 0.5})
    assert [f.label for f in det.detect(Sample(normalise("Who was Abraham Lincoln?")))] == [
        "PERSON"
    ]


@pytest.mark.slow
def test_an_identifier_found_by_the_entity_model_turns_the_screen_off(policy: Policy) -> None:
    # DATE_TIME comes from spaCy's entity model: no pattern screen can rule it out.
    det = create_detector(
        "pii", policy, {"names_alone": "skip", "entities": ["PERSON", "DATE_TIME"]}
    )
    found = det.detect(Sample(normalise("Maria Gonzalez was born on 4 July 1990.")))
    assert {f.label for f in found} == {"PERSON", "DATE_TIME"}


@pytest.mark.slow
def test_a_repeated_input_is_answered_from_memory(
    policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    det = PiiDetector(policy)
    analysed: list[list[str]] = []
    real = pii._analyze

    def spy(presidio: Any, texts: list[str], *args: Any, **kwargs: Any) -> Any:
        analysed.append(list(texts))
        return real(presidio, texts, *args, **kwargs)

    monkeypatch.setattr(pii, "_analyze", spy)
    turns = ["Hi, I'm Maria Gonzalez, maria@example.com", "Thanks, and my phone is 212-555-0147"]
    first = det.detect_batch([Sample(normalise(turns[0]))])
    # The next request of the chat resends the first turn: only the new one is analysed.
    second = det.detect_batch([Sample(normalise(t)) for t in turns])
    assert analysed == [[turns[0]], [turns[1]]]
    assert second[0] == first[0] and {f.label for f in first[0]} == {"PERSON", "EMAIL_ADDRESS"}
    assert {f.label for f in second[1]} == {"PHONE_NUMBER"}


@pytest.mark.slow
def test_a_failure_is_not_remembered(policy: Policy, monkeypatch: pytest.MonkeyPatch) -> None:
    from presidio_analyzer import BatchAnalyzerEngine

    det = PiiDetector(policy)
    real = BatchAnalyzerEngine.analyze_iterator

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(BatchAnalyzerEngine, "analyze_iterator", broken)
    with pytest.raises(DetectorError):
        detect(det, "write to jane.doe@example.com")
    monkeypatch.setattr(BatchAnalyzerEngine, "analyze_iterator", real)
    assert [f.label for f in detect(det, "write to jane.doe@example.com")] == ["EMAIL_ADDRESS"]


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None,
    reason="torch and transformers are not installed (the `hf` extra): nothing to keep out",
)
def test_loading_presidio_does_not_import_torch_or_transformers() -> None:
    # With the `hf` extra installed, presidio and spaCy (thinc) import both for support the spaCy
    # CPU pipeline never uses: 4-8 s more at every start of the CLI and the gateway.
    code = (
        "import sys\n"
        "from safestack.judge.detectors.pii import load_analyzer\n"
        "found = load_analyzer().analyze('call me on +1 415-555-0100', 'en', ['PHONE_NUMBER'])\n"
        "print(len(found), 'torch' in sys.modules, 'transformers' in sys.modules)\n"
        "import torch, transformers  # still importable afterwards, for hf detectors\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "False", "False"]


@pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="torch is not installed (the `hf` extra)"
)
def test_only_the_thread_loading_presidio_goes_without_torch() -> None:
    # Another thread (an hf-classifier loading in the guard's pool) must still get torch.
    code = (
        "import sys, threading\n"
        "from safestack.judge.detectors.pii import _without_torch\n"
        "inside, done, seen = threading.Event(), threading.Event(), []\n"
        "def loading_presidio():\n"
        "    with _without_torch():\n"
        "        try:\n"
        "            import torch\n"
        "            seen.append('imported')\n"
        "        except ImportError:\n"
        "            seen.append('refused')\n"
        "        inside.set(); done.wait(60)\n"
        "thread = threading.Thread(target=loading_presidio); thread.start(); inside.wait(60)\n"
        "import torch  # this thread, while the other is still inside the block\n"
        "done.set(); thread.join()\n"
        "print(seen[0], 'torch' in sys.modules, any('Refuse' in repr(f) for f in sys.meta_path))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["refused", "True", "False"]
