"""The voices a site has: pip-packaged piper voices, voices named in settings, and the voice store.

The store is a folder (``SPEECH["VOICES_DIR"]``) of ``NAME.onnx`` + ``NAME.onnx.json`` pairs, filled
by ``manage.py voices install``. It is read again whenever the folder changes, so a voice installed
while the site runs appears without a restart. A multi-speaker model is one voice per speaker,
``MODEL#SPEAKER``; the model's own name speaks as its first speaker.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from speech.conf import get_config
from speech.openai_names import OPENAI_VOICES

SPEAKER_SEPARATOR = "#"
# What a voice (model) may be called: it names files in the store, so no separators, no leading dot.
VOICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_+-]{0,99}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def valid_name(name: str) -> bool:
    """Whether ``name`` may name a voice in the store (``de_DE-thorsten-medium``; not ``../x``)."""
    return bool(VOICE_NAME.match(name))


def printable(text: object) -> str:
    """``text`` without control characters (terminal escapes, bidi overrides) for a terminal or a log."""
    return _CONTROL.sub("", str(text))


class VoiceConfigError(ValueError):
    """A voice's ``.onnx.json`` is missing or is not a piper voice config."""


@dataclass(frozen=True)
class Voice:
    id: str
    model: Path
    config: Path
    language: str  # BCP 47, e.g. "de-DE"
    language_name: str  # in English
    language_native: str
    quality: str
    sample_rate: int
    speakers: int
    speaker: str | None = None
    speaker_id: int | None = None
    source: str = "store"  # "package", "settings" or "store"

    @property
    def model_name(self) -> str:
        return self.id.split(SPEAKER_SEPARATOR)[0]

    def describe(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "language_name": self.language_name,
            "language_native": self.language_native,
            "quality": self.quality,
            "sample_rate": self.sample_rate,
            "speakers": self.speakers,
            "speaker": self.speaker,
        }


def bcp47(code: str) -> str:
    """``de_DE`` or ``en-us`` -> ``de-DE``, ``en-US``."""
    parts = code.replace("_", "-").split("-")
    return "-".join([parts[0].lower(), *(part.upper() if len(part) == 2 else part for part in parts[1:])])


def same_language(language: str, wanted: str) -> bool:
    """``de-DE`` is wanted by ``de``, ``de-DE`` and ``de_de``; not by ``de-AT``."""
    wanted = bcp47(wanted).lower()
    language = language.lower()
    return language == wanted or language.split("-")[0] == wanted


def read_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VoiceConfigError(f"{path.name} is missing") from None
    except (OSError, ValueError) as error:
        raise VoiceConfigError(f"{path.name} cannot be read as JSON: {error}") from None
    audio = data.get("audio") if isinstance(data, dict) else None
    if not isinstance(audio, dict) or not isinstance(audio.get("sample_rate"), int) or "phoneme_id_map" not in data:
        raise VoiceConfigError(f"{path.name} is not a piper voice config (no audio.sample_rate or phoneme_id_map)")
    config: dict[str, Any] = data
    return config


def from_files(name: str, model: Path, config: Path, source: str) -> list[Voice]:
    """The voice(s) of one model: one per speaker."""
    data = read_config(config)
    language = data.get("language") or {}
    code = language.get("code") or data.get("espeak", {}).get("voice") or name.split("-")[0]
    base = {
        "model": model,
        "config": config,
        "language": bcp47(code),
        "language_name": language.get("name_english") or bcp47(code),
        "language_native": language.get("name_native") or language.get("name_english") or bcp47(code),
        "quality": data["audio"].get("quality") or "",
        "sample_rate": data["audio"]["sample_rate"],
        "speakers": max(1, int(data.get("num_speakers") or 1)),
        "source": source,
    }
    if base["speakers"] == 1:
        return [Voice(id=name, **base)]
    speaker_ids: dict[str, int] = data.get("speaker_id_map") or {str(i): i for i in range(base["speakers"])}
    return [
        Voice(id=f"{name}{SPEAKER_SEPARATOR}{speaker}", speaker=speaker, speaker_id=number, **base)
        for speaker, number in sorted(speaker_ids.items(), key=lambda item: item[1])
    ]


def spec_paths(spec: dict[str, str]) -> tuple[Path, Path]:
    """Model and config of a voice named in settings: ``{"package": ...}`` or ``{"model": ..., "config": ...}``."""
    if "package" in spec:
        try:
            package = importlib.import_module(spec["package"])
        except ImportError as error:
            name = spec["package"].replace("_", "-")
            raise ImportError(f"Voice package '{spec['package']}' is missing: pip install {name}") from error
        return Path(package.model_path()), Path(package.config_path())
    model = Path(spec["model"])
    return model, Path(spec.get("config") or f"{model}.json")


def store_dir() -> Path | None:
    directory = get_config()["VOICES_DIR"]
    return Path(directory) if directory else None


def scan_store(directory: Path) -> tuple[list[Voice], list[str]]:
    """The voices in the store, and what is wrong with the files that are not voices."""
    voices: list[Voice] = []
    problems: list[str] = []
    for model in sorted(directory.glob("*.onnx")):
        name = model.name.removesuffix(".onnx")
        try:
            voices += from_files(name, model, Path(f"{model}.json"), "store")
        except VoiceConfigError as error:
            problems.append(f"voice '{name}' in {directory}: {error}")
    return voices, problems


def _stamp(directory: Path | None) -> int | None:
    try:
        return os.stat(directory).st_mtime_ns if directory else None
    except OSError:
        return None


@dataclass(frozen=True)
class Installed:
    """Every voice a piper engine can speak with, and what OpenAI's names speak as."""

    voices: dict[str, Voice]  # by id, in listing order
    aliases: dict[str, str]  # OpenAI (or configured) name -> voice id
    problems: list[str]

    def find(self, name: str, language: str | None = None) -> Voice | None:
        if name in self.aliases:
            if language and (speaks := self.for_language(name, language)):
                return speaks
            name = self.aliases[name]
        if name in self.voices:
            return self.voices[name]
        speakers = [voice for voice in self.voices.values() if voice.model_name == name]
        return speakers[0] if speakers else None

    def for_language(self, alias: str, language: str) -> Voice | None:
        """The voice an OpenAI name speaks as for a text in ``language``: spread over that language's voices."""
        current = self.voices.get(self.aliases.get(alias, ""))
        if current and same_language(current.language, language):
            return current
        candidates = [voice for voice in self.voices.values() if same_language(voice.language, language)]
        if not candidates:
            return None
        index = OPENAI_VOICES.index(alias) if alias in OPENAI_VOICES else 0
        return candidates[index % len(candidates)]


def default_aliases(voices: list[Voice], language: str) -> dict[str, str]:
    """OpenAI's names spread over the voices of the site's language (over all voices when it has none)."""
    ours = [voice for voice in voices if same_language(voice.language, language.split("-")[0])] or voices
    return {name: ours[i % len(ours)].id for i, name in enumerate(OPENAI_VOICES)} if ours else {}


class StoreCache:
    """What ``read`` makes of the voice store, kept until the store moves or its ``folder`` (the store's
    own by default) changes: read again when that folder's modification time does."""

    def __init__(self, read: Callable[[Path | None], Installed], folder: str = "") -> None:
        self._read = read
        self._folder = folder
        self._lock = threading.Lock()
        self._cache: tuple[tuple[Path | None, int | None], Installed] | None = None

    def get(self) -> Installed:
        directory = store_dir()
        key = (directory, _stamp(directory / self._folder if directory else None))
        with self._lock:
            if self._cache is None or self._cache[0] != key:
                self._cache = (key, self._read(directory))
            return self._cache[1]


class Registry:
    """The installed voices of one engine, read again when the store folder changes."""

    def __init__(self, specs: dict[str, dict[str, str]], aliases: dict[str, str]) -> None:
        self.configured: list[Voice] = []
        for name, spec in specs.items():
            model, config = spec_paths(spec)
            self.configured += from_files(name, model, config, "package" if "package" in spec else "settings")
        self.aliases = aliases
        self._installed = StoreCache(self._read)

    def installed(self) -> Installed:
        return self._installed.get()

    def _read(self, directory: Path | None) -> Installed:
        stored, problems = scan_store(directory) if directory and directory.is_dir() else ([], [])
        taken = {voice.id for voice in self.configured}
        voices = {voice.id: voice for voice in [*self.configured, *(v for v in stored if v.id not in taken)]}
        aliases = default_aliases(list(voices.values()), settings.LANGUAGE_CODE)
        aliases.update({**get_config()["VOICE_ALIASES"], **self.aliases})
        return Installed(voices=voices, aliases=aliases, problems=problems)
