"""Piper's voice catalogue (``voices.json`` of ``rhasspy/piper-voices`` on the Hugging Face Hub) and
installing its voices into the voice store.

Downloads go through ``huggingface_hub`` (a transfer that breaks off is tried again a few times,
``HF_ENDPOINT`` for a mirror, the catalogue cached for ``HF_HUB_OFFLINE``) into
``VOICES_DIR/.downloads``. A voice enters the store only once both files match the catalogue's size
and MD5: config first, model last, each by an atomic rename, and the store lists a voice only when
its model is there. A partial or corrupt file is deleted.

Nothing the catalogue says may reach outside the store: an entry whose name is not a voice name
(``voices.VOICE_NAME``) or whose file paths are not plain relative paths is left out (``load``
reports it), every path written or deleted is checked to resolve inside the store, and clean-ups
delete only inside the store's own staging folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import EntryNotFoundError

from speech.voices import VoiceConfigError, bcp47, printable, read_config, same_language, valid_name

REPO = "rhasspy/piper-voices"
REVISION = "main"
DEFAULT_ENDPOINT = "https://huggingface.co"
DOWNLOADS = ".downloads"
HUB_CACHE = ".hub"
# How long the catalogue's hub gets to answer at all before the cached catalogue (or a clear error)
# is used: hf_hub_download alone retries an unreachable hub for 25 s and more.
PROBE_TIMEOUT = 3.0
# What hf_hub_download raises when the hub cannot be reached or the transfer breaks.
HUB_ERRORS = (OSError, EntryNotFoundError, httpx2.HTTPError)
# A file's path in the hub repository: relative, "/"-separated, no "." or ".." parts, nothing hidden.
_PART = re.compile(r"^[A-Za-z0-9_+-][A-Za-z0-9_.+-]{0,199}\Z")


class CatalogueError(Exception):
    """Something the person running ``manage.py voices`` must fix or retry; the message says how."""


@dataclass(frozen=True)
class File:
    path: str  # in the hub repository
    size: int
    md5: str


@dataclass(frozen=True)
class Entry:
    name: str
    language: str  # BCP 47
    language_name: str
    language_native: str
    quality: str
    speakers: int
    model: File
    config: File

    @property
    def size(self) -> int:
        return self.model.size + self.config.size


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def unreachable(detail: object) -> CatalogueError:
    return CatalogueError(
        f"Cannot reach the voice catalogue at {endpoint()}/{REPO} ({detail}). Set HF_ENDPOINT to a mirror, "
        "or install from files with `manage.py voices install --from DIR`."
    )


def _safe_path(path: str) -> bool:
    parts = path.split("/")
    return len(path) <= 1000 and all(_PART.match(part) and part not in (".", "..") for part in parts)


def _entry(name: str, data: dict[str, Any]) -> Entry:
    if not valid_name(name):
        raise ValueError("not a voice name (letters, digits, '_', '-', '+')")
    files = {path: File(path, int(info["size_bytes"]), str(info["md5_digest"])) for path, info in data["files"].items()}
    if unsafe := [path for path in files if not _safe_path(path)]:
        raise ValueError(f"file path {unsafe[0]!r} is not a plain relative path")
    model = next(file for path, file in files.items() if path.endswith(".onnx"))
    config = next(file for path, file in files.items() if path.endswith(".onnx.json"))
    language = data.get("language") or {}
    return Entry(
        name=name,
        language=bcp47(language.get("code") or name.split("-")[0]),
        language_name=language.get("name_english", ""),
        language_native=language.get("name_native", ""),
        quality=data.get("quality", ""),
        speakers=int(data.get("num_speakers") or 1),
        model=model,
        config=config,
    )


def load(store: Path, skipped: list[str] | None = None) -> dict[str, Entry]:
    """The catalogue by voice name; from the hub's cache when the hub is unreachable or HF_HUB_OFFLINE=1.
    Entries that are not a voice we can install safely are left out, and said why in ``skipped``."""
    problem = ""
    try:
        problem = _offline() or _probe()
        path = hf_hub_download(
            REPO,
            "voices.json",
            revision=REVISION,
            endpoint=endpoint(),
            cache_dir=store / HUB_CACHE,
            etag_timeout=PROBE_TIMEOUT,
            local_files_only=bool(problem),  # the cached catalogue at once, or the error below
        )
        data = read_json(Path(path))
    except HUB_ERRORS as error:
        raise unreachable(problem or error) from None
    except ValueError as error:
        raise CatalogueError(
            printable(f"The voice catalogue at {endpoint()}/{REPO} is not piper's voices.json: {error}")
        ) from None
    entries = {}
    for name, entry in sorted(data.items()):
        try:
            if not isinstance(entry, dict):
                raise TypeError("not a JSON object")
            entries[name] = _entry(name, entry)
        except (ValueError, KeyError, StopIteration, TypeError, AttributeError) as error:
            if skipped is not None:
                skipped.append(printable(f"{name!r}: {error}"))
    return entries


def _offline() -> str:
    return "HF_HUB_OFFLINE is set" if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on") else ""


def _probe() -> str:
    """Why the hub does not answer within ``PROBE_TIMEOUT`` seconds; "" when it answers (whatever it says)."""
    try:
        httpx2.head(f"{endpoint()}/{REPO}/resolve/{REVISION}/voices.json", timeout=PROBE_TIMEOUT)
    except httpx2.TimeoutException:
        return f"no answer within {PROBE_TIMEOUT:g} s"
    except httpx2.HTTPError as error:
        return str(error) or type(error).__name__
    return ""


def read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def matching(catalogue: dict[str, Entry], language: str | None) -> list[Entry]:
    return [entry for entry in catalogue.values() if not language or same_language(entry.language, language)]


def md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, expected: File) -> None:
    """Raise when ``path`` is not the file the catalogue describes (and delete it: it is of no use)."""
    size = path.stat().st_size
    problem = ""
    if size != expected.size:
        problem = f"is {size} bytes, the catalogue says {expected.size}"
    elif (digest := md5(path)) != expected.md5:
        problem = f"has MD5 {digest}, the catalogue says {expected.md5}"
    if problem:
        path.unlink()
        raise CatalogueError(f"{Path(expected.path).name} {problem}: corrupt, nothing was installed.")


def check_name(name: str) -> str:
    """``name`` when it may name a voice in the store, else a ``CatalogueError`` that says why."""
    if not valid_name(name):
        raise CatalogueError(
            printable(
                f"{name!r} is not a voice name: letters, digits, '_', '-' and '+' only, e.g. de_DE-thorsten-medium."
            )
        )
    return name


def inside(folder: Path, *parts: str) -> Path:
    """``folder / parts``, refused unless it resolves to a path inside ``folder`` (and is not ``folder``)."""
    root = folder.resolve()
    joined = root.joinpath(*parts)
    path = joined.parent.resolve() / joined.name  # the file itself may be a link (to a packaged model)
    if joined.name in ("", ".", "..") or path == root or not path.is_relative_to(root):
        raise CatalogueError(printable(f"{'/'.join(parts)!r} would be outside {folder}; nothing was changed."))
    return path


def _admit(store: Path, name: str, model: Path, config: Path) -> None:
    """Move a checked pair into the store: config first, model last (the store lists a voice by its model)."""
    try:
        read_config(config)
    except VoiceConfigError as error:
        raise CatalogueError(f"{name}: {error}; nothing was installed.") from None
    os.replace(config, inside(store, f"{check_name(name)}.onnx.json"))
    os.replace(model, inside(store, f"{name}.onnx"))


def install(store: Path, entry: Entry) -> None:
    # Only a folder of the store's own staging folder is made here, and only that is cleaned up.
    staging = inside(store / DOWNLOADS, check_name(entry.name))
    for file in (entry.config, entry.model):
        inside(staging, file.path)
    try:
        config = _download(entry, entry.config, staging)
        model = _download(entry, entry.model, staging)
        _admit(store, entry.name, model, config)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # whatever did not make it into the store


def download(repo: str, revision: str, path: str, staging: Path, voice: str) -> Path:
    """``path`` of the hub repository ``repo`` at ``revision``, downloaded into ``staging``; a
    ``CatalogueError`` naming ``voice`` when it is not there or the transfer fails."""
    try:
        return Path(hf_hub_download(repo, path, revision=revision, endpoint=endpoint(), local_dir=staging))
    except EntryNotFoundError:
        raise CatalogueError(f"{voice}: {path} is not on {endpoint()}; nothing was installed.") from None
    except HUB_ERRORS as error:
        raise CatalogueError(
            f"{voice}: the download of {Path(path).name} from {endpoint()} failed ({error}); "
            "nothing was installed. Run the same command again."
        ) from None


def _download(entry: Entry, file: File, staging: Path) -> Path:
    path = download(REPO, REVISION, file.path, staging, entry.name)
    verify(path, file)
    return path


def install_from(store: Path, name: str, source: Path, catalogue: dict[str, Entry] | None) -> bool:
    """Install ``NAME.onnx`` + ``NAME.onnx.json`` found under ``source``; checked against the catalogue
    when it knows the voice. Returns whether it was checked."""
    check_name(name)
    found = {}
    for suffix in (".onnx", ".onnx.json"):
        matches = sorted(source.rglob(f"{name}{suffix}"))
        if not matches:
            raise CatalogueError(f"{name}{suffix} is not under {source}.")
        found[suffix] = matches[0]
    staging = store / DOWNLOADS
    staging.mkdir(parents=True, exist_ok=True)
    model, config = staging / f"{name}.onnx.part", staging / f"{name}.onnx.json.part"
    shutil.copyfile(found[".onnx"], model)
    shutil.copyfile(found[".onnx.json"], config)
    entry = (catalogue or {}).get(name)
    try:
        if entry:
            verify(config, entry.config)
            verify(model, entry.model)
        _admit(store, name, model, config)
    finally:
        model.unlink(missing_ok=True)
        config.unlink(missing_ok=True)
    return entry is not None


def remove(store: Path, name: str) -> None:
    model, config = inside(store, f"{check_name(name)}.onnx"), inside(store, f"{name}.onnx.json")
    if not model.exists() and not config.exists():
        raise CatalogueError(f"'{name}' is not in the voice store {store}.")
    model.unlink(missing_ok=True)  # first: without its model the voice is gone at once
    config.unlink(missing_ok=True)
