"""The embedded offline voice: piper-tts, voices shipped as pip packages or as .onnx files."""

from __future__ import annotations

import importlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speech import audio, pipeline, timings
from speech.cancellation import Cancellation, Cancelled
from speech.conf import PIPER_VOICES
from speech.engines.base import Engine, SpeechRequest, SpeechStream
from speech.errors import InvalidRequest
from speech.scheduler import Grant, scheduler
from speech.schemas import OPENAI_VOICES
from speech.timings import Phone, Voiced

try:
    import onnxruntime
    from piper.config import PiperConfig, SynthesisConfig
    from piper.const import BOS, EOS
    from piper.voice import AudioChunk, PiperVoice
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError("The piper engine needs the 'piper' extra: pip install 'speech[piper]'") from error

logger = logging.getLogger(__name__)

# Piper's per-sentence normalisation would make every short piece equally loud; a fixed gain
# keeps the level steady across pieces.
VOLUME = 1.6


class _CancellableSession:
    """Stands in for piper's InferenceSession so each run gets its caller's ``RunOptions``."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self.local = threading.local()

    def run(self, output_names: Any, feeds: Any) -> Any:
        return self._session.run(output_names, feeds, getattr(self.local, "options", None))


def _voice(model: str | bytes, config: Path, threads: int) -> PiperVoice:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    return PiperVoice(
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


def _paths(spec: dict[str, Any]) -> tuple[Path, Path]:
    if "package" in spec:
        try:
            package = importlib.import_module(spec["package"])
        except ImportError as error:
            name = spec["package"].replace("_", "-")
            raise ImportError(f"Voice package '{spec['package']}' is missing: pip install {name}") from error
        return Path(package.model_path()), Path(package.config_path())
    model = Path(spec["model"])
    return model, Path(spec.get("config") or f"{model}.json")


@dataclass
class LocalVoice:
    """One piper voice with a wide session (every core, for a lone stream) and one narrow per slot."""

    name: str
    wide: PiperVoice
    narrow: list[PiperVoice]

    @classmethod
    def load(cls, name: str, spec: dict[str, Any], slots: int) -> LocalVoice:
        path, config = _paths(spec)
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
        options = onnxruntime.RunOptions()
        # Hand the run's scratch memory back when it ends. Otherwise each session's arena keeps
        # (and fragments) room for the longest piece it ever saw: about 250 MiB per session for a
        # 230-character sentence, growing further run after run, with three sessions per voice.
        options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        session: _CancellableSession = voice.session
        session.local.options = options
        config = SynthesisConfig(length_scale=1.0 / speed, normalize_audio=False, volume=VOLUME)
        with cancel.on_cancel(lambda: setattr(options, "terminate", True)):
            try:
                chunks = list(voice.synthesize(text, config, include_alignments=True))
            except Exception:
                if cancel.cancelled:
                    raise Cancelled from None
                raise
        return self._voiced(text, chunks)

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
    synthesises_locally = True

    def __init__(
        self,
        alias: str,
        voices: dict[str, dict[str, Any]] | None = None,
        aliases: dict[str, str] | None = None,
    ) -> None:
        super().__init__(alias)
        specs = voices or PIPER_VOICES
        self.local = {name: LocalVoice.load(name, spec, scheduler.slots) for name, spec in specs.items()}
        names = list(self.local)
        # OpenAI's voice names are spread over the installed voices so OpenAI clients work unchanged.
        self.aliases = {voice: names[i % len(names)] for i, voice in enumerate(OPENAI_VOICES)}
        self.aliases.update(aliases or {})

    def voices(self) -> list[str]:
        return [*self.local, *self.aliases]

    def resolve(self, voice: str) -> LocalVoice:
        name = self.aliases.get(voice, voice)
        if name not in self.local:
            raise InvalidRequest(
                f"Voice '{voice}' is not available. Available voices: {', '.join(self.voices())}.",
                param="voice",
            )
        return self.local[name]

    def warm_up(self) -> None:
        for local in self.local.values():
            grants = [Grant(slot=0, alone=True), *(Grant(slot=i, alone=False) for i in range(scheduler.slots))]
            for grant in grants:
                local.synthesize("Hello there.", 1.0, grant, Cancellation())
        logger.info("piper voices warmed up: %s", ", ".join(self.local))

    def speak(self, request: SpeechRequest, cancel: Cancellation) -> SpeechStream:
        local = self.resolve(request.voice)
        words = timings.Timeline()
        chunks = pipeline.stream(local, request.input, request.response_format, request.speed, cancel, words)
        content_type = audio.CONTENT_TYPES[request.response_format]
        return SpeechStream(chunks=chunks, content_type=content_type, engine=self.alias, words=words)
