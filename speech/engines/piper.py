"""The embedded offline voice: piper-tts, voices shipped as pip packages or as .onnx files."""

from __future__ import annotations

import functools
import importlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speech import audio, memory, pipeline
from speech.cancellation import Cancellation, Cancelled
from speech.conf import PIPER_VOICES
from speech.engines.base import Engine, SpeechRequest, SpeechStream
from speech.errors import InvalidRequest
from speech.scheduler import Grant, scheduler
from speech.schemas import OPENAI_VOICES

try:
    import onnxruntime
    from piper.config import PiperConfig, SynthesisConfig
    from piper.voice import PiperVoice
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

    def run_options(self) -> onnxruntime.RunOptions:
        options = onnxruntime.RunOptions()
        with self._lock:
            due = time.monotonic() - self._trimmed >= self.TRIM_SECONDS
            if due:
                self._trimmed = time.monotonic()
        if due:  # this run hands the arena's free regions back when it ends
            options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        return options


@functools.cache
def _arena() -> _SharedArena:
    return _SharedArena()


def _voice(model: Path, config: Path, threads: int) -> PiperVoice:
    memory.return_large_blocks_promptly()
    _arena()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.use_env_allocators", "1")
    session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
    return PiperVoice(
        config=PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8"))),
        session=_CancellableSession(session),
    )


def _paths(spec: dict[str, str]) -> tuple[Path, Path]:
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
    def load(cls, name: str, spec: dict[str, str], slots: int) -> LocalVoice:
        model, config = _paths(spec)
        cores = os.cpu_count() or 1
        wide = _voice(model, config, cores)
        narrow = [_voice(model, config, max(1, cores // slots)) for _ in range(slots)]
        return cls(name=name, wide=wide, narrow=narrow)

    @property
    def rate(self) -> int:
        return int(self.wide.config.sample_rate)

    def synthesize(self, text: str, speed: float, grant: Grant, cancel: Cancellation) -> bytes:
        voice = self.wide if grant.alone else self.narrow[grant.slot]
        options = _arena().run_options()
        session: _CancellableSession = voice.session
        session.local.options = options
        config = SynthesisConfig(length_scale=1.0 / speed, normalize_audio=False, volume=VOLUME)
        with cancel.on_cancel(lambda: setattr(options, "terminate", True)):
            try:
                return b"".join(chunk.audio_int16_bytes for chunk in voice.synthesize(text, config))
            except Exception:
                if cancel.cancelled:
                    raise Cancelled from None
                raise


class PiperEngine(Engine):
    synthesises_locally = True

    def __init__(
        self,
        alias: str,
        voices: dict[str, dict[str, str]] | None = None,
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
        chunks = pipeline.stream(local, request.input, request.response_format, request.speed, cancel)
        return SpeechStream(chunks=chunks, content_type=audio.CONTENT_TYPES[request.response_format], engine=self.alias)
