"""A fine-tune as a GGUF file for the llama.cpp target, converted with llama.cpp's own script.

llama.cpp's `convert_hf_to_gguf.py` (with its `conversion/` package) ships in llama-cpp-python's
*source* distribution on PyPI, not in its wheel. `fetch_converter` downloads that sdist once with
pip (`pip download llama-cpp-python==<installed version> --no-binary :all: --no-deps`) and keeps
only the converter under a cache directory (`make gguf-converter` runs it); `export_gguf` runs
the script on a merged model directory (with torch and transformers from the `align` extra, and
the sdist's own `gguf-py`, kept beside it) and writes `model.gguf` and `target-gguf.yaml` beside the transformers
target. Nothing is fetched unless asked: without the converter the error says how to get it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from safestack.align.finetune.export import write_target
from safestack.errors import InputError

PACKAGE = "llama-cpp-python"
PINNED = "0.3.36"  # pyproject's `local` extra; the installed version wins when there is one
SCRIPT = "convert_hf_to_gguf.py"
# What is kept of the sdist's vendor/llama.cpp/. Its own gguf-py too: the script needs names
# (e.g. MODEL_ARCH.DFLASH) that the `gguf` 0.19.0 wheel on PyPI lacks though both say 0.19.0;
# the script puts gguf-py/ first on sys.path itself.
KEEP = (SCRIPT, "conversion/", "gguf-py/gguf/")
OUTTYPES = ("f32", "f16", "bf16", "q8_0")


def converter_version() -> str:
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return PINNED


def converter_dir(cache: Path, version: str | None = None) -> Path:
    return cache / f"llama.cpp-{version or converter_version()}"


def fetch_converter(cache: Path, version: str | None = None) -> Path:
    """The converter directory under `cache`, downloading llama-cpp-python's sdist once."""
    version = version or converter_version()
    target = converter_dir(cache, version)
    if (target / SCRIPT).is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as scratch:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            f"{PACKAGE}=={version}",
            "--no-binary",
            ":all:",
            "--no-deps",
            "--quiet",
            "-d",
            scratch,
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        archives = sorted(Path(scratch).glob("*.tar.gz"))
        if done.returncode != 0 or not archives:
            last = (done.stderr.strip().splitlines() or ["no archive"])[-1]
            raise InputError(
                f"could not download {PACKAGE}=={version}'s source distribution ({last}); "
                "it holds llama.cpp's converter: check that PyPI is reachable"
            )
        staging = Path(scratch) / "converter"
        prefix = f"{archives[0].name.removesuffix('.tar.gz')}/vendor/llama.cpp/"
        with tarfile.open(archives[0]) as archive:
            for member in archive.getmembers():
                name = member.name.removeprefix(prefix)
                if name == member.name or not name.startswith(KEEP) or not member.isfile():
                    continue
                path = staging / name
                path.parent.mkdir(parents=True, exist_ok=True)
                source = archive.extractfile(member)
                assert source is not None
                path.write_bytes(source.read())
        if not (staging / SCRIPT).is_file():
            raise InputError(f"{archives[0].name} holds no vendor/llama.cpp/{SCRIPT}")
        staging.replace(target)
    return target


def export_gguf(
    merged: Path,
    out: Path,
    converter: Path,
    *,
    model_id: str,
    name: str,
    outtype: str = "f16",
) -> tuple[Path, dict[str, Any]]:
    """Convert the merged model directory to `out/model.gguf`; write `out/target-gguf.yaml`."""
    script = converter / SCRIPT
    if not script.is_file():
        raise InputError(
            f"no llama.cpp converter in {converter}: run `make gguf-converter` (or "
            "safestack.align.finetune.gguf_export.fetch_converter) first"
        )
    if outtype not in OUTTYPES:
        raise InputError(f"--outtype {outtype}: choose one of {', '.join(OUTTYPES)}")
    if not (merged / "config.json").is_file():
        raise InputError(f"{merged}: holds no config.json; give a merged model directory")
    final = out / "model.gguf"
    spec = {
        "name": f"{name}-gguf",
        "kind": "gguf",
        "options": {"path": str(final.resolve()), "model_name": model_id},
    }
    written = out / "target-gguf.yaml"
    if final.is_file() and written.is_file() and f"model_name: {model_id}" in written.read_text():
        return final, spec  # converted before (a resumed round): not again
    staging = out / ".model.gguf.staging"
    command = [
        sys.executable,
        str(script),
        str(merged),
        "--outfile",
        str(staging),
        "--outtype",
        outtype,
    ]
    env = {key: value for key, value in os.environ.items() if key != "NO_LOCAL_GGUF"}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0 or not staging.is_file():
        staging.unlink(missing_ok=True)
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise InputError(
            f"llama.cpp's converter failed on {merged}: {lines[-1] if lines else 'no output'}"
        )
    staging.replace(final)
    write_target(
        spec,
        written,
        f"{model_id} as GGUF ({outtype}) for the llama.cpp target; from {merged}",
    )
    return final, spec
