"""The quarantine: a matched image kept encrypted (Fernet), readable only with its key, and a file
that was altered refused rather than decrypted to other bytes."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from media_images import encode, generated_image

from safestack.errors import MediaError
from safestack.media.quarantine import Quarantine, new_key

IMAGE = encode(generated_image(5))


def test_kept_images_are_encrypted_and_read_back(tmp_path: Path) -> None:
    quarantine = Quarantine(tmp_path / "q", new_key())
    name = quarantine.keep(IMAGE)
    path = tmp_path / "q" / name
    assert IMAGE[:32] not in path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "q").stat().st_mode) == 0o700
    assert quarantine.read(name) == IMAGE
    assert quarantine.keep(IMAGE) == name  # the same image, the same file
    assert [p.name for p in (tmp_path / "q").iterdir()] == [name]  # no temporary file left


def test_another_key_or_an_altered_file_is_refused(tmp_path: Path) -> None:
    quarantine = Quarantine(tmp_path, new_key())
    name = quarantine.keep(IMAGE)
    with pytest.raises(MediaError, match="does not decrypt with this key"):
        Quarantine(tmp_path, new_key()).read(name)
    token = bytearray((tmp_path / name).read_bytes())
    token[60] ^= 1
    (tmp_path / name).write_bytes(bytes(token))
    with pytest.raises(MediaError, match="does not decrypt"):
        quarantine.read(name)
    with pytest.raises(MediaError, match="not a quarantine file name"):
        quarantine.read("../../etc/passwd")


def test_a_malformed_key_is_refused_without_showing_it(tmp_path: Path) -> None:
    secret = "not-a-fernet-key-but-still-secret"
    with pytest.raises(MediaError) as caught:
        Quarantine(tmp_path, secret)
    assert secret not in str(caught.value)
    assert "safestack media quarantine-key" in str(caught.value)


def test_an_unwritable_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(MediaError, match="cannot write to the media quarantine"):
        Quarantine(blocker / "q", new_key()).keep(IMAGE)
