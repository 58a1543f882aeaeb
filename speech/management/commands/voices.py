"""``manage.py voices list|install|remove``: piper's catalogue and Kokoro's (:mod:`speech.kokoro_catalogue`),
installed into the voice store. A Kokoro name (``af_heart``) goes to Kokoro's catalogue, any other to piper's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from speech import catalogue, kokoro_catalogue
from speech.catalogue import CatalogueError
from speech.voices import Voice, printable, same_language, scan_store, store_dir


class Command(BaseCommand):
    help = "List piper's and Kokoro's voice catalogues, install voices into SPEECH['VOICES_DIR'], remove them."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        listing = actions.add_parser("list", help="The catalogue: language, quality, size, installed or not.")
        listing.add_argument("--language", help="Only this language: 'de', 'de-DE' or 'de_DE'.")
        listing.add_argument("--installed", action="store_true", help="Only installed voices (works offline).")
        install = actions.add_parser("install", help="Download, check and install voices.")
        install.add_argument("names", nargs="+", metavar="NAME", help="e.g. de_DE-thorsten-medium, af_heart (Kokoro)")
        install.add_argument(
            "--from", dest="source", type=Path, help="Install NAME.onnx(.json), or Kokoro's NAME.bin, from this folder."
        )
        remove = actions.add_parser("remove", help="Remove installed voices.")
        remove.add_argument("names", nargs="+", metavar="NAME")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        store = store_dir()
        if store is None:
            raise CommandError("No voice store: set SPEECH['VOICES_DIR'] (the site reads SPEECH_VOICES_DIR).")
        try:
            for name in options.get("names") or ():  # before anything is fetched or changed
                catalogue.check_name(name)
            if action == "list":
                self.show(store, options["language"], options["installed"])
            elif action == "install":
                self.install(store, options["names"], options["source"])
            else:
                for name in options["names"]:
                    if name in self.installed_kokoro(store):
                        kokoro_catalogue.remove(store, name)
                    else:
                        catalogue.remove(store, name)
                    self.stdout.write(f"removed {name}")
        except CatalogueError as error:
            raise CommandError(printable(error)) from None

    def show(self, store: Path, language: str | None, installed_only: bool) -> None:
        installed = self.installed(store)
        if installed_only:
            for voice in [*installed.values(), *self.installed_kokoro(store).values()]:
                if not language or same_language(voice.language, language):
                    self.stdout.write(
                        printable(f"{voice.id:40} {voice.language:8} {voice.language_name:20} {voice.quality}")
                    )
            return
        skipped: list[str] = []
        try:
            known = catalogue.load(store, skipped)
        except CatalogueError:
            # What is installed is known without the hub: show it, then say why the catalogue is not.
            self.stdout.write("Installed voices (the catalogue cannot be reached):")
            self.show(store, language, installed_only=True)
            self.show_kokoro(store, language)
            raise
        for entry in catalogue.matching(known, language):
            mark = "installed" if entry.name in installed else ""
            speakers = f"{entry.speakers} speakers" if entry.speakers > 1 else ""
            language_name = f"{entry.language_name} ({entry.language_native})"
            # What the catalogue says reaches a terminal: without its control characters (escapes).
            self.stdout.write(
                printable(
                    f"{entry.name:40} {entry.language:8} {language_name:36} {entry.quality:8} "
                    f"{entry.size / 1e6:6.1f} MB {speakers:14} {mark}"
                ).rstrip()
            )
        self.show_kokoro(store, language)
        self.skipped(skipped)

    def show_kokoro(self, store: Path, language: str | None) -> None:
        """Kokoro's catalogue ships with the app: listed without the hub."""
        installed = self.installed_kokoro(store)
        for entry in kokoro_catalogue.matching(kokoro_catalogue.load(), language):
            mark = "installed" if entry.name in installed else ""
            self.stdout.write(
                f"{entry.name:40} {entry.language:8} {entry.language_name:36} {'high':8} "
                f"{entry.size / 1e6:6.1f} MB {'kokoro':14} {mark}".rstrip()
            )

    def skipped(self, skipped: list[str]) -> None:
        if skipped:
            self.stderr.write(f"{len(skipped)} catalogue entries left out (not installable here):")
            for problem in skipped:
                self.stderr.write(f"  {problem}")

    def install(self, store: Path, names: list[str], source: Path | None) -> None:
        store.mkdir(parents=True, exist_ok=True)
        kokoro = [name for name in names if kokoro_catalogue.is_voice_name(name)]
        self.install_kokoro(store, kokoro, source)
        names = [name for name in names if name not in kokoro]
        if not names:
            return
        known: dict[str, catalogue.Entry] | None
        skipped: list[str] = []
        try:
            known = catalogue.load(store, skipped)
            self.skipped(skipped)
        except CatalogueError:
            if source is None:
                raise
            known = None  # files from a folder need no hub; they are checked when the catalogue is at hand
        installed = self.installed(store)
        for name in names:
            if name in installed:
                self.stdout.write(f"{name} is already installed")
            elif source is not None:
                checked = catalogue.install_from(store, name, source, known)
                self.stdout.write(
                    f"installed {name} from {source}" + ("" if checked else " (not in the catalogue: unchecked)")
                )
            elif known is not None and name in known:
                self.stdout.write(f"downloading {name} ({known[name].size / 1e6:.1f} MB)")
                catalogue.install(store, known[name])
                self.stdout.write(f"installed {name}")
            else:
                raise CatalogueError(f"No voice '{name}' in the catalogue; `manage.py voices list` shows them.")

    def install_kokoro(self, store: Path, names: list[str], source: Path | None) -> None:
        """Kokoro's voices: from its catalogue (no hub needed to know them), checked by SHA-256."""
        known = kokoro_catalogue.load()
        for name in names:
            if name in self.installed_kokoro(store):
                self.stdout.write(f"{name} is already installed")
            elif source is not None:
                checked = kokoro_catalogue.install_from(store, name, source, known)
                self.stdout.write(
                    f"installed {name} from {source}" + ("" if checked else " (no pinned SHA-256: unchecked)")
                )
            elif name in known:
                self.stdout.write(f"downloading {name} ({known[name].size / 1e6:.1f} MB, Kokoro)")
                kokoro_catalogue.install(store, known[name])
                self.stdout.write(f"installed {name}")
            else:
                raise CatalogueError(f"No Kokoro voice '{name}' in the catalogue; `manage.py voices list` shows them.")

    def installed_kokoro(self, store: Path) -> dict[str, Voice]:
        return kokoro_catalogue.scan(store)[0]

    def installed(self, store: Path) -> dict[str, Voice]:
        voices, _ = scan_store(store) if store.is_dir() else ([], [])
        return {voice.model_name: voice for voice in voices}
