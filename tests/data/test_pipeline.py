"""Pipeline definitions (validated, errors naming file and field) and applying filters to a batch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from safestack.data.document import Document, Removal
from safestack.data.filters.base import Filter, FilterOptions, corpus_filter
from safestack.data.pipeline import (
    PipelineError,
    PipelinePlan,
    PipelineSpec,
    default_pipeline_text,
    load_pipeline,
    parse_pipeline,
    pipeline_yaml,
)
from safestack.errors import RegistryError
from safestack.policy import Policy


class WordOptions(FilterOptions):
    word: str = "spam"


@corpus_filter("test-pipeline-word")
class DropWord(Filter):
    Options = WordOptions
    seen: ClassVar[list[str]] = []

    def apply(self, documents: Sequence[Document]) -> list[Removal | None]:
        assert isinstance(self.options, WordOptions)
        word = self.options.word
        type(self).seen.extend(d.id for d in documents)
        return [self.removal(word, 1.0, 0.5) if word in d.text else None for d in documents]


@corpus_filter("test-pipeline-explode")
class Explode(Filter):
    """Fails on any batch holding a document with 'boom' (and on that document alone)."""

    def apply(self, documents: Sequence[Document]) -> list[Removal | None]:
        if any("boom" in d.text for d in documents):
            raise ValueError("cannot handle boom")
        return [None] * len(documents)


@corpus_filter("test-pipeline-short")
class ShortAnswer(Filter):
    def apply(self, documents: Sequence[Document]) -> list[Removal | None]:
        return [None]


def plan(*filters: dict[str, object]) -> PipelinePlan:
    spec = parse_pipeline({"filters": list(filters)}, "p.yaml")
    return PipelinePlan.resolve(spec, Policy.default(), "p.yaml")


def doc(ident: str, text: str) -> Document:
    return Document(ident, text, source=f"in.jsonl:{ident}")


def test_the_default_pipeline_is_the_packaged_yaml() -> None:
    spec, source = load_pipeline()
    assert source == "<default pipeline>"
    assert [f.name for f in spec.filters] == ["adult", "quality", "aggregator", "harm"]
    assert spec == PipelineSpec()  # the file and the model's defaults agree
    assert spec.writer.format == "jsonl.gz" and spec.batch_size == 256
    assert "- name: redact" in default_pipeline_text()  # offered, commented out


def test_a_users_file_keeps_the_defaults_it_leaves_out(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("filters:\n  - name: quality\nreader:\n  text_field: content\n")
    spec, source = load_pipeline(path)
    assert source == str(path)
    assert [f.name for f in spec.filters] == ["quality"]
    assert spec.reader.text_field == "content" and spec.reader.id_field == "id"
    assert parse_pipeline(yaml.safe_load(pipeline_yaml(spec))) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("filters:\n  - nme: adult\n", r"p\.yaml: filters\[0\]\.name: Field required"),
        ("batch_size: 0\n", r"p\.yaml: batch_size: Input should be greater than or equal to 1"),
        ("writer:\n  format: csv\n", r"p\.yaml: writer\.format: Input should be"),
        ("reader: [1]\n", r"p\.yaml: reader: Input should be a valid dictionary"),
        ("- adult\n", r"p\.yaml: a pipeline must be a mapping"),
        ("filters: [\n", r"p\.yaml:\d+: not valid YAML"),
    ],
)
def test_definition_errors_name_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(PipelineError, match=message.replace("p\\.yaml", str(path))):
        load_pipeline(path)


def test_unknown_filters_and_bad_options_name_the_field() -> None:
    with pytest.raises(RegistryError, match=r"p\.yaml: filters\[1\]\.name: unknown filter 'nope'"):
        plan({"name": "test-pipeline-word"}, {"name": "nope"})
    with pytest.raises(PipelineError, match=r"p\.yaml: filters\[0\]\.options\.colour: Extra"):
        plan({"name": "test-pipeline-word", "options": {"colour": "red"}})


def test_bad_filter_options_in_a_file_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("filters:\n  - name: harm\n    options:\n      colour: red\n")
    with pytest.raises(PipelineError) as error:
        load_pipeline(path)
    message = str(error.value)
    assert f"{path}:4: filters.0.options.colour" in message
    assert "allowed options" in message


def test_filters_run_in_order_and_see_only_what_is_still_kept() -> None:
    DropWord.seen = []
    built = plan(
        {"name": "test-pipeline-word"}, {"name": "test-pipeline-word", "options": {"word": "ham"}}
    ).build()
    result = built.process([doc("1", "spam here"), doc("2", "ham here"), doc("3", "clean")])
    assert [d.id for d in result.kept] == ["3"]
    assert [(d.id, r.reason) for d, r in result.removed] == [
        ("1", "test-pipeline-word.spam"),
        ("2", "test-pipeline-word.ham"),
    ]
    assert DropWord.seen == ["1", "2", "3", "2", "3"]


def test_a_filter_that_raises_errors_only_the_documents_it_fails_on() -> None:
    built = plan({"name": "test-pipeline-explode"}, {"name": "test-pipeline-word"}).build()
    result = built.process([doc("1", "fine"), doc("2", "boom"), doc("3", "spam")])
    assert [d.id for d in result.kept] == ["1"]
    assert [d.id for d, _ in result.removed] == ["3"]
    (error,) = result.errors
    assert error.reason == "filter.test-pipeline-explode.failed"
    assert error.source == "in.jsonl:2" and "cannot handle boom" in error.message


def test_a_filter_breaking_its_contract_is_an_error_never_kept() -> None:
    built = plan({"name": "test-pipeline-short"}).build()
    result = built.process([doc("1", "a"), doc("2", "b")])
    # batch answer has the wrong length; one at a time it answers correctly
    assert [d.id for d in result.kept] == ["1", "2"] and not result.errors
    assert built.process([]).kept == []


def test_fingerprint_follows_definition_and_policy() -> None:
    base = plan({"name": "test-pipeline-word"})
    assert base.fingerprint == plan({"name": "test-pipeline-word"}).fingerprint
    other = plan({"name": "test-pipeline-word", "options": {"word": "ham"}})
    assert other.fingerprint != base.fingerprint
