"""Matching: a banked image and its edited copies match, unrelated images do not; the index agrees
with a brute-force scan; exact hashes match first; low-quality hashes are not trusted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from media_images import TRANSFORMS, encode, generated_image
from PIL import Image

from safestack.errors import MediaError
from safestack.media import HashIndex, ImageLimits, MatchOptions, MediaScreen, hash_image
from safestack.settings import Settings
from safestack.store import ActiveHash, BankEntry, Store

LIMITS = ImageLimits()
BANKED = range(100, 106)


def pdq_entry(seed: int, bank: str = "test") -> ActiveHash:
    hashes = hash_image(encode(generated_image(seed)), LIMITS)
    return ActiveHash(
        id=f"e{seed}", bank=bank, kind="pdq", value=hashes.pdq, quality=hashes.quality
    )


@pytest.fixture(scope="module")
def screen() -> MediaScreen:
    return MediaScreen.from_entries([pdq_entry(seed) for seed in BANKED])


@pytest.mark.parametrize("edit", sorted(TRANSFORMS))
def test_edited_copies_of_a_banked_image_match(screen: MediaScreen, edit: str) -> None:
    for seed in BANKED:
        verdict = screen.screen(TRANSFORMS[edit](generated_image(seed)))
        assert verdict.matched, f"seed {seed}, {edit}"
        assert [m.entry_id for m in verdict.matches] == [f"e{seed}"]
        assert verdict.matches[0].distance <= 31


def test_rotation_matches_through_its_dihedral_variant(screen: MediaScreen) -> None:
    image = generated_image(BANKED[0]).transpose(Image.Transpose.ROTATE_270)
    [match] = screen.screen(encode(image)).matches
    assert match.variant != "original"


def test_unrelated_generated_images_do_not_match(screen: MediaScreen) -> None:
    verdicts = [screen.screen(encode(generated_image(seed))) for seed in range(200, 260)]
    assert [v.matches for v in verdicts if v.matched] == []
    assert all(v.pdq_trusted and v.index_size == len(BANKED) for v in verdicts)


def test_exact_hashes_match_even_when_pdq_is_not_trusted() -> None:
    flat = encode(Image.new("RGB", (64, 64), (10, 200, 10)))
    hashes = hash_image(flat, LIMITS)
    entries = [
        ActiveHash(id="s", bank="exact", kind="sha256", value=hashes.sha256, quality=None),
        ActiveHash(id="p", bank="exact", kind="pdq", value=hashes.pdq, quality=None),
    ]
    verdict = MediaScreen.from_entries(entries).screen(flat)
    assert not verdict.pdq_trusted
    assert [(m.entry_id, m.kind, m.variant, m.distance) for m in verdict.matches] == [
        ("s", "sha256", "bytes", 0)
    ]


def test_bank_hashes_below_the_quality_minimum_are_not_matched() -> None:
    entry = pdq_entry(BANKED[0])
    weak = entry.model_copy(update={"quality": 40})
    assert not MediaScreen.from_entries([weak]).screen(encode(generated_image(BANKED[0]))).matched
    lenient = MediaScreen.from_entries([weak], options=MatchOptions(min_quality=30))
    assert lenient.screen(encode(generated_image(BANKED[0]))).matched


def test_the_distance_threshold_is_configurable() -> None:
    data = TRANSFORMS["resize-half"](generated_image(BANKED[1]))
    found = MediaScreen.from_entries([pdq_entry(BANKED[1])]).screen(data).matches[0].distance
    assert found > 0
    strict = MediaScreen.from_entries(
        [pdq_entry(BANKED[1])], options=MatchOptions(max_distance=found - 1)
    )
    assert not strict.screen(data).matched


def test_index_agrees_with_brute_force_on_planted_near_matches() -> None:
    rng = np.random.default_rng(7)
    codes = rng.integers(0, 256, (20_000, 32), dtype=np.uint8)
    index = HashIndex.from_codes(codes)
    queries = codes[rng.choice(len(codes), 64, replace=False)].copy()
    bits = np.unpackbits(queries, axis=1)
    for row, flips in enumerate(rng.integers(0, 32, len(queries))):  # 0 to 31 bits away
        bits[row, rng.choice(256, flips, replace=False)] ^= 1
    queries = np.packbits(bits, axis=1)
    for radius in (0, 10, 31):
        found = {(h.query, int(h.entry.id), h.distance) for h in index.search(queries, radius)}
        distances = np.bitwise_count(queries[:, None, :] ^ codes[None, :, :]).sum(axis=2)
        expected = {
            (int(q), int(i), int(distances[q, i])) for q, i in np.argwhere(distances <= radius)
        }
        assert found == expected
        assert found or radius == 0


def test_distances_past_31_fall_back_to_a_scan() -> None:
    rng = np.random.default_rng(8)
    codes = rng.integers(0, 256, (500, 32), dtype=np.uint8)
    bits = np.unpackbits(codes[:1], axis=1)
    bits[0, :40] ^= 1
    hits = HashIndex.from_codes(codes).search(np.packbits(bits, axis=1), 40)
    assert [(h.entry.id, h.distance) for h in hits] == [("0", 40)]


def test_screen_from_store_reload_and_tombstones(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, media_max_distance=20)
    seed = BANKED[2]
    data = encode(generated_image(seed), "JPEG", quality=80)
    with Store.open(settings.database_url()) as store:
        screen = MediaScreen.from_store(store, settings)
        assert not screen.screen(data).matched and screen.options.max_distance == 20
        entry = pdq_entry(seed)
        store.media_banks.add(
            "bank", [BankEntry(kind="pdq", value=entry.value, quality=entry.quality)]
        )
        screen.reload(store)
        [match] = screen.screen(data).matches
        assert match.bank == "bank"
        store.media_banks.disable("bank", "pdq", entry.value)
        screen.reload(store)
        assert not screen.screen(data).matched


def test_screen_refuses_what_it_cannot_decode(screen: MediaScreen) -> None:
    with pytest.raises(MediaError, match="upload: not a readable image"):
        screen.screen(b"GIF89a-not-really", name="upload")


def test_a_matched_verdict_opens_a_case_without_the_image(tmp_path: Path) -> None:
    from safestack.media import open_case

    seed = BANKED[3]
    data = encode(generated_image(seed), "JPEG", quality=85)
    verdict = MediaScreen.from_entries([pdq_entry(seed)]).screen(data)
    with Store.open(f"sqlite:///{tmp_path / 'cases.db'}") as store:
        case = open_case(store, verdict, {"key_id": "ssk_1"})
        assert case.status == "open"
        assert case.sha256 == verdict.hashes.sha256
        assert [m.entry_id for m in case.matches] == [f"e{seed}"]
        assert data not in repr(case).encode()
        unmatched = MediaScreen.from_entries([]).screen(data)
        with pytest.raises(ValueError, match="only a verdict that matched"):
            open_case(store, unmatched)
