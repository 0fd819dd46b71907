"""The redact filter: typed placeholders in place of identifiers, counts in metadata, no drops."""

from __future__ import annotations

from safestack.data.document import Document
from safestack.data.filters.redact import RedactFilter, pattern_spans
from safestack.policy import default_policy

TEXT = (
    "Write to jane.roe@example.com or call +1 312-555-0199. Card 4111 1111 1111 1111, "
    "SSN 123-45-6789, IBAN GB82 WEST 1234 5698 7654 32, server 192.0.2.44. Order 1234 5678."
)


def test_placeholders_replace_identifiers_and_counts_are_recorded() -> None:
    doc = Document("1", TEXT, metadata={"redactions": {"EMAIL": 1}})
    assert RedactFilter(default_policy()).apply([doc]) == [None]
    assert "jane.roe@example.com" not in doc.text
    assert "4111" not in doc.text and "123-45-6789" not in doc.text
    for placeholder in ("[EMAIL]", "[PHONE]", "[CREDIT_CARD]", "[SSN]", "[IBAN]", "[IP_ADDRESS]"):
        assert placeholder in doc.text
    assert doc.metadata["redactions"]["EMAIL"] == 2  # one from before, one now
    assert doc.metadata["redactions"]["CREDIT_CARD"] == 1


def test_a_number_failing_its_checksum_is_left_alone() -> None:
    assert not any(
        label == "CREDIT_CARD" for *_, label in pattern_spans("Card 4111 1111 1111 1112")
    )


def test_document_without_pii_is_untouched() -> None:
    doc = Document("1", "Bake for 45 minutes at 180C.")
    RedactFilter(default_policy()).apply([doc])
    assert doc.text == "Bake for 45 minutes at 180C." and "redactions" not in doc.metadata


def test_presidio_option_redacts_the_entity_types_asked_for() -> None:
    from safestack.data.filters.redact import RedactOptions

    doc = Document("1", "Yesterday Margaret Hollingsworth met the committee in Chicago.")
    redact = RedactFilter(
        default_policy(), RedactOptions(presidio=True, presidio_entities=("PERSON",))
    )
    assert redact.apply([doc]) == [None]
    assert "Hollingsworth" not in doc.text and "[PERSON]" in doc.text
    assert doc.metadata["redactions"]["PERSON"] == 1
