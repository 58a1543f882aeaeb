"""The embedded offline voice: piper-tts, voices shipped as pip packages or as .onnx files."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from speech import audio, install_command, memory, pipeline, timings
from speech.cancellation import Cancellation, Cancelled
from speech.conf import PIPER_VOICES, get_config
from speech.engines.base import Engine, SpeechRequest, SpeechStream
from speech.errors import InvalidRequest, Overloaded
from speech.scheduler import Grant, scheduler
from speech.timings import Phone, Voiced
from speech.voices import Installed, Registry, Voice, spec_paths

try:
    import onnxruntime
    from piper import espeakbridge
    from piper.config import PiperConfig, SynthesisConfig
    from piper.const import BOS, EOS
    from piper.voice import AudioChunk, PiperVoice
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"The piper engine needs the 'piper' extra: {install_command('piper')}") from error

logger = logging.getLogger(__name__)


def _set_voice_only_when_it_changes() -> None:
    """espeak-ng copies the voice on every ``set_voice`` and frees the copy only once it has spoken,
    which phonemising never does: piper set it on every call, and word timings phonemise every word
    on its own, so each word spoken lost ~1.3 KiB. Piper calls the bridge under its own lock."""
    set_voice, initialize = espeakbridge.set_voice, espeakbridge.initialize
    current: str | None = None

    def set_voice_once(voice: str) -> None:
        nonlocal current
        if voice != current:
            current = None  # a voice that fails to load may leave espeak-ng's voice changed
            set_voice(voice)
            current = voice

    def initialize_afresh(data_dir: str) -> None:
        nonlocal current
        current = None  # initialising selects espeak-ng's default voice
        initialize(data_dir)

    espeakbridge.set_voice = set_voice_once
    espeakbridge.initialize = initialize_afresh


_set_voice_only_when_it_changes()
# Each change of espeak-ng's language still costs a voice copy: one piece's words are phonemised
# in a row, not word by word in turn with a stream in another language.
_WORD_TIMINGS = threading.Lock()

# Piper's per-sentence normalisation would make every short piece equally loud; a fixed gain
# keeps the level steady across pieces.
VOLUME = 1.6


_RUN = threading.local()  # .limit: the phonemes one model run may hold, while this thread synthesises


class _BoundedVoice(PiperVoice):
    """Piper's voice with its model runs bounded: piper runs the model once per espeak sentence, which
    is as long as the text's sentence once read out (ten digits are ~100 phonemes, an emoji its name),
    and a run's memory grows with the audio it makes (36 s of numbers: 2.5 GB). During a synthesis each
    sentence is cut into runs of at most ``_RUN.limit`` phonemes (``pipeline.runs``), whatever the text."""

    def phonemize(self, text: str) -> list[list[str]]:
        sentences = super().phonemize(text)
        limit: int | None = getattr(_RUN, "limit", None)
        if limit is None:
            return sentences
        return [run for sentence in sentences for run in pipeline.runs(sentence, limit)]


class _CancellableSession:
    """Stands in for piper's InferenceSession so each run gets its caller's ``RunOptions``."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self.local = threading.local()

    def run(self, output_names: Any, feeds: Any) -> Any:
        return self._session.run(output_names, feeds, getattr(self.local, "options", None))


class _SharedArena:
    """One ONNX scratch arena for every session of every voice, kept from run to run.

    Per-session arenas each kept room for the longest piece they ever ran (~250 MiB apiece for a
    long sentence, three sessions per voice); handing it back after every run cost 10-15 % more CPU
    per audio second, since the next run faulted it all in again. Shared, the arena holds what the
    runs in flight at once need. Its free regions go back now and then, so fragments cannot pile up.
    """

    TRIM_SECONDS = 30.0

    def __init__(self) -> None:
        cpu = onnxruntime.OrtMemoryInfo(
            "Cpu", onnxruntime.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, onnxruntime.OrtMemType.DEFAULT
        )
        # Grow by what a run asks for, not to the next power of two.
        onnxruntime.create_and_register_allocator(cpu, onnxruntime.OrtArenaCfg({"arena_extend_strategy": 1}))
        self._lock = threading.Lock()
        self._trimmed = time.monotonic()

    def run_options(self, first: bool = False) -> onnxruntime.RunOptions:
        """Options for one run, which trims the arena when a trim is due. Trimming adds ~20 ms to the
        run, so a listener's ``first`` audio leaves it to a later run unless it is long overdue (a
        site whose texts are all one piece long)."""
        options = onnxruntime.RunOptions()
        with self._lock:
            due = time.monotonic() - self._trimmed >= self.TRIM_SECONDS * (2 if first else 1)
            if due:
                self._trimmed = time.monotonic()
        if due:  # this run hands the arena's free regions back when it ends, and malloc's free pages go now
            options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
            memory.give_back_free_pages()
        return options


@functools.cache
def _arena() -> _SharedArena:
    return _SharedArena()


def _voice(model: str | bytes, config: Path, threads: int) -> PiperVoice:
    memory.return_large_blocks_promptly()
    _arena()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # ONNX Runtime keeps a memory plan for every input shape it has seen and never drops one:
    # ~40 KiB per phoneme count, so a server speaking varied text grew without end.
    options.enable_mem_pattern = False
    options.add_session_config_entry("session.use_env_allocators", "1")
    session = onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    return _BoundedVoice(
        config=PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8"))),
        session=_CancellableSession(session),
    )


def _aligned(model: Path) -> str | bytes:
    """The model with its phoneme durations as a second output (piper's in-memory patch), else its path."""
    try:
        import onnx
        from piper.patch_voice_with_alignment import add_alignment_output
    except ImportError:  # pragma: no cover - onnx is a dependency of the piper extra
        logger.warning("onnx is missing: word timings of %s are estimated", model.name)
        return str(model)
    patched = onnx.load(str(model))
    try:
        add_alignment_output(patched)
    except ValueError as error:  # already patched, or no duration tensor: times are estimated then
        logger.info("%s: %s", model.name, error)
    return bytes(patched.SerializeToString())


def _give_back_memory() -> None:
    """glibc keeps freed heap for reuse: without a trim, a dropped voice's ~200 MiB stay in RSS."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


@dataclass
class LocalVoice:
    """One piper voice with a wide session (every core, for a lone stream) and one narrow per slot."""

    name: str
    wide: PiperVoice
    narrow: list[PiperVoice]
    speaker_id: int | None = None  # of a multi-speaker model; its speakers share the sessions

    @classmethod
    def load(cls, name: str, spec: dict[str, Any], slots: int) -> LocalVoice:
        path, config = spec_paths(spec)
        model = _aligned(path) if spec.get("alignments", True) else str(path)
        cores = os.cpu_count() or 1
        wide = _voice(model, config, cores)
        narrow = [_voice(model, config, max(1, cores // slots)) for _ in range(slots)]
        return cls(name=name, wide=wide, narrow=narrow)

    @property
    def rate(self) -> int:
        return int(self.wide.config.sample_rate)

    def synthesize(self, text: str, speed: float, grant: Grant, cancel: Cancellation) -> Voiced:
        voice = self.wide if grant.alone else self.narrow[grant.slot]
        options = _arena().run_options(first=grant.first)
        session: _CancellableSession = voice.session
        session.local.options = options
        config = SynthesisConfig(
            speaker_id=self.speaker_id, length_scale=1.0 / speed, normalize_audio=False, volume=VOLUME
        )
        with cancel.on_cancel(lambda: setattr(options, "terminate", True)):
            _RUN.limit = pipeline.phoneme_limit(speed)
            try:
                chunks = list(voice.synthesize(text, config, include_alignments=True))
            except Exception:
                if cancel.cancelled:
                    raise Cancelled from None
                raise
            finally:
                _RUN.limit = None
        return self._voiced(text, chunks)

    def phonemes(self, text: str) -> int:
        """How many phonemes this voice speaks ``text`` with (espeak-ng, well under a millisecond for a
        piece): the pipeline bounds its pieces by this count."""
        return sum(len(sentence) for sentence in self.wide.phonemize(text))

    def _voiced(self, text: str, chunks: list[AudioChunk]) -> Voiced:
        phones: list[Phone] = []
        samples = 0
        for chunk in chunks:
            if chunk.phoneme_alignments is None or chunk.phoneme_id_samples is None:
                phones += timings.even_phones(chunk.phonemes, samples, len(chunk.audio_float_array))
            else:
                phones += _aligned_phones(chunk, samples)
            samples += len(chunk.audio_float_array)
        estimated = any(chunk.phoneme_alignments is None for chunk in chunks)
        with _WORD_TIMINGS:
            marks = timings.marks(text, phones, self._phonemes, estimated)
        return Voiced(b"".join(chunk.audio_int16_bytes for chunk in chunks), marks)

    def _phonemes(self, word: str) -> list[str]:
        return [phoneme for sentence in self.wide.phonemize(word) for phoneme in sentence]


def _aligned_phones(chunk: AudioChunk, start: int) -> list[Phone]:
    """Each phoneme's own samples, without the padding id after it (the transition to the next one)."""
    assert chunk.phoneme_alignments is not None
    assert chunk.phoneme_id_samples is not None
    samples = [int(n) for n in chunk.phoneme_id_samples]
    phones, index, at = [], 0, start
    for alignment in chunk.phoneme_alignments:
        own = len(alignment.phoneme_ids) - (alignment.phoneme != EOS)  # a padding id follows all but EOS
        if alignment.phoneme not in (BOS, EOS):
            phones.append(Phone(alignment.phoneme, at, at + sum(samples[index : index + own])))
        at += sum(samples[index : index + len(alignment.phoneme_ids)])
        index += len(alignment.phoneme_ids)
    return phones


class PiperEngine(Engine):
    """Piper voices from packages, settings and the voice store, loaded on first use; at most
    ``SPEECH["MAX_LOADED_VOICES"]`` stay loaded, the least recently used is dropped."""

    synthesises_locally = True

    def __init__(
        self,
        alias: str,
        voices: dict[str, dict[str, Any]] | None = None,
        aliases: dict[str, str] | None = None,
    ) -> None:
        super().__init__(alias)
        self.registry = Registry(voices or PIPER_VOICES, aliases or {})
        self._loaded: OrderedDict[Path, LocalVoice] = OrderedDict()
        self._loading: dict[Path, threading.Lock] = {}
        self._lock = threading.Lock()

    def installed(self) -> Installed:
        return self.registry.installed()

    @property
    def aliases(self) -> dict[str, str]:
        return self.installed().aliases

    def voices(self) -> list[str]:
        installed = self.installed()
        return [*installed.voices, *installed.aliases]

    def describe(self) -> list[dict[str, Any]]:
        """Each voice with its language, quality, rate and speakers; OpenAI's names say what they speak as."""
        installed = self.installed()
        listed = [{"id": voice.id, "speaks_as": voice.id, **voice.describe()} for voice in installed.voices.values()]
        for name, target in installed.aliases.items():
            voice = installed.voices.get(target)
            listed.append({"id": name, "speaks_as": target, **(voice.describe() if voice else {})})
        return listed

    def speaks_as(self, voice: str, language: str | None = None) -> str:
        found = self.installed().find(voice, language)
        return found.id if found else voice

    def resolve(self, voice: str, language: str | None = None) -> LocalVoice:
        installed = self.installed()
        found = installed.find(voice, language)
        if found is None:
            target = installed.aliases.get(voice)
            reason = f"maps to '{target}', which is not installed" if target else "is not available"
            raise InvalidRequest(
                f"Voice '{voice}' {reason}. Available voices: {', '.join(self.voices())}.", param="voice"
            )
        local = self.load(found)
        return local if found.speaker_id is None else replace(local, name=found.id, speaker_id=found.speaker_id)

    def load(self, voice: Voice) -> LocalVoice:
        with self._lock:
            if voice.model in self._loaded:
                self._loaded.move_to_end(voice.model)
                return self._loaded[voice.model]
            loading = self._loading.setdefault(voice.model, threading.Lock())
        with loading:  # one load per model; other voices stay usable meanwhile
            with self._lock:
                if voice.model in self._loaded:
                    return self._loaded[voice.model]
            spec = {"model": str(voice.model), "config": str(voice.config)}
            try:
                local = LocalVoice.load(voice.model_name, spec, scheduler.slots)
            except Exception as error:
                logger.exception("voice %s could not be loaded", voice.id)
                raise Overloaded(f"Voice '{voice.id}' could not be loaded: {error}", code="voice_unavailable") from None
            with self._lock:
                self._loaded[voice.model] = local
                dropped = []
                while len(self._loaded) > max(1, get_config()["MAX_LOADED_VOICES"]):
                    dropped.append(self._loaded.popitem(last=False)[1].name)
                self._loading.pop(voice.model, None)
            if dropped:
                logger.info("voices unloaded (SPEECH['MAX_LOADED_VOICES']): %s", ", ".join(dropped))
                _give_back_memory()
            return local

    def loaded(self) -> list[str]:
        with self._lock:
            return [local.name for local in self._loaded.values()]

    def warm_up(self) -> None:
        installed = self.installed()
        names = get_config()["WARM_VOICES"] or dict.fromkeys(installed.aliases.values())
        for name in list(names)[: get_config()["MAX_LOADED_VOICES"]]:
            local = self.resolve(name)
            grants = [Grant(slot=0, alone=True), *(Grant(slot=i, alone=False) for i in range(scheduler.slots))]
            for grant in grants:
                local.synthesize("Hello there.", 1.0, grant, Cancellation())
        logger.info("piper voices warmed up: %s", ", ".join(self.loaded()))

    def speak(self, request: SpeechRequest, cancel: Cancellation) -> SpeechStream:
        local = self.resolve(request.voice, request.language)
        words = timings.Timeline(request.input)
        chunks = pipeline.stream(local, request.input, request.response_format, request.speed, cancel, words)
        content_type = audio.CONTENT_TYPES[request.response_format]
        return SpeechStream(chunks=chunks, content_type=content_type, engine=self.alias, words=words)
