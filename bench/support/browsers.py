"""One small driver interface over three real engines, so an end-to-end test is written once.

- chromium: Debian's /usr/bin/chromium through Playwright.
- firefox: firefox-esr headless over WebDriver BiDi (a tiny client over `websockets`; no geckodriver
  exists here), with its own PulseAudio null sink (without an audio server Firefox's AudioContext
  never runs).
- webkit: WebKitGTK's MiniBrowser through WebKitWebDriver + Selenium, under its own Xvfb and with
  no audio server reachable (its MSE clock stalls with one).

Every process is started in its own session and killed by process group at the end: a crashed
WebKit page leaves helper processes behind otherwise.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Protocol

ENGINES = ("chromium", "firefox", "webkit")
MINIBROWSER = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser"

# Runs in the page before any other script where the engine allows it (WebKit: right after load).
# Collects what the page reports as errors, for engines without a console-log protocol.
ERROR_HOOK = """
if (!window.__errors) {
  window.__errors = [];
  const push = (text) => window.__errors.push(String(text));
  const original = console.error.bind(console);
  console.error = (...args) => { push(args.join(' ')); original(...args); };
  addEventListener('error', (e) => push(e.message || 'error event'), true);
  addEventListener('unhandledrejection', (e) => push('unhandled rejection: ' + e.reason));
}
"""


class BrowserPage(Protocol):
    engine: str

    def goto(self, url: str) -> None: ...
    def type(self, selector: str, text: str) -> None: ...
    def click(self, selector: str) -> None: ...
    def hover(self, selector: str) -> None:
        """A trusted pointer move onto the element's middle, with no click."""
        ...

    def evaluate(self, expression: str, timeout: float = 30) -> Any:
        """Value of a JS expression (awaited if a promise), passed through JSON."""
        ...

    def console_errors(self) -> list[str]: ...
    def crashed(self) -> bool: ...
    def close(self) -> None: ...


class Browser(Protocol):
    def new_page(self) -> BrowserPage: ...
    def close(self) -> None: ...


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process's whole group and wait until every member is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def wrap_json(expression: str) -> str:
    return f"Promise.resolve(({expression})).then((v) => JSON.stringify(v === undefined ? null : v))"


def center_of(page: BrowserPage, selector: str) -> tuple[int, int]:
    x, y = page.evaluate(
        f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
        " el.scrollIntoView({block: 'center'}); const r = el.getBoundingClientRect();"
        " return [Math.round(r.x + r.width / 2), Math.round(r.y + r.height / 2)]; })()"
    )
    return int(x), int(y)


# --- Chromium (Playwright) -------------------------------------------------------------------------


class ChromiumPage:
    engine = "chromium"

    def __init__(self, context: Any) -> None:
        self.context = context
        self.page = context.new_page()
        self.errors: list[str] = []
        self.crash = False
        self.page.on("console", lambda m: self.errors.extend([m.text] if m.type == "error" else []))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("crash", lambda _: setattr(self, "crash", True))

    def goto(self, url: str) -> None:
        self.page.goto(url)

    def type(self, selector: str, text: str) -> None:
        self.page.locator(selector).fill("")
        self.page.locator(selector).press_sequentially(text)

    def click(self, selector: str) -> None:
        self.page.locator(selector).click()

    def hover(self, selector: str) -> None:
        self.page.locator(selector).hover()

    def evaluate(self, expression: str, timeout: float = 30) -> Any:
        self.page.set_default_timeout(timeout * 1000)
        return json.loads(self.page.evaluate(wrap_json(expression)))

    def console_errors(self) -> list[str]:
        return list(self.errors)

    def crashed(self) -> bool:
        return self.crash

    def close(self) -> None:
        self.context.close()


class Chromium:
    def __init__(self, playwright: Any = None) -> None:
        """Launch with ``playwright`` when one is running already (one sync Playwright per thread)."""
        from playwright.sync_api import sync_playwright

        self.own = playwright is None
        self.playwright = sync_playwright().start() if playwright is None else playwright
        self.browser = self.playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )

    def new_page(self) -> ChromiumPage:
        return ChromiumPage(self.browser.new_context())

    def close(self) -> None:
        self.browser.close()
        if self.own:
            self.playwright.stop()


# --- Firefox (WebDriver BiDi) ----------------------------------------------------------------------


class BiDi:
    """The few WebDriver BiDi commands we need, over one websocket; events go to `on_event`."""

    def __init__(self, url: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(url, max_size=None, legacy=True)  # lives as long as the browser, not a block
        self.ids = itertools.count(1)
        self.lock = threading.Lock()
        self.replies: dict[int, dict[str, Any]] = {}
        self.arrived = threading.Condition(self.lock)
        self.listeners: list[Any] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        with contextlib.suppress(Exception):
            for raw in self.ws:
                message = json.loads(raw)
                if message.get("type") == "event":
                    for listener in list(self.listeners):
                        listener(message["method"], message["params"])
                    continue
                with self.lock:
                    self.replies[message["id"]] = message
                    self.arrived.notify_all()
        with self.lock:
            self.replies[-1] = {"type": "error", "error": "connection closed"}
            self.arrived.notify_all()

    def send(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        command_id = next(self.ids)
        self.ws.send(json.dumps({"id": command_id, "method": method, "params": params}))
        with self.lock:
            done = self.arrived.wait_for(lambda: command_id in self.replies or -1 in self.replies, timeout)
            if not done:
                raise TimeoutError(f"BiDi {method} got no answer in {timeout} s")
            reply = self.replies.pop(command_id, None) or self.replies[-1]
        if reply["type"] == "error":
            raise RuntimeError(f"BiDi {method}: {reply.get('error')}: {reply.get('message', '')}")
        result: dict[str, Any] = reply["result"]
        return result


class FirefoxPage:
    engine = "firefox"

    def __init__(self, bidi: BiDi) -> None:
        self.bidi = bidi
        self.context = bidi.send("browsingContext.create", type="tab")["context"]
        self.errors: list[str] = []
        self.bidi.listeners.append(self._on_event)

    def _on_event(self, method: str, params: dict[str, Any]) -> None:
        mine = params.get("source", {}).get("context") in (None, self.context)
        if method == "log.entryAdded" and params.get("level") == "error" and mine:
            self.errors.append(str(params.get("text")))

    def goto(self, url: str) -> None:
        self.bidi.send("browsingContext.navigate", context=self.context, url=url, wait="complete")

    def _actions(self, source: dict[str, Any]) -> None:
        self.bidi.send("input.performActions", context=self.context, actions=[source])

    def type(self, selector: str, text: str) -> None:
        self.click(selector)
        self.evaluate(f"document.querySelector({json.dumps(selector)}).select()")
        keys = [{"type": kind, "value": "\ue003"} for kind in ("keyDown", "keyUp")]  # Backspace
        keys += [{"type": kind, "value": char} for char in text for kind in ("keyDown", "keyUp")]
        self._actions({"type": "key", "id": "keyboard", "actions": keys})

    def click(self, selector: str) -> None:
        x, y = center_of(self, selector)
        pointer = [
            {"type": "pointerMove", "x": x, "y": y},
            {"type": "pointerDown", "button": 0},
            {"type": "pointerUp", "button": 0},
        ]
        self._actions({"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": pointer})

    def hover(self, selector: str) -> None:
        x, y = center_of(self, selector)
        move = [{"type": "pointerMove", "x": x, "y": y}]
        self._actions({"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": move})

    def evaluate(self, expression: str, timeout: float = 30) -> Any:
        result = self.bidi.send(
            "script.evaluate",
            timeout=timeout,
            expression=wrap_json(expression),
            target={"context": self.context},
            awaitPromise=True,
            userActivation=False,
        )
        if result["type"] == "exception":
            raise RuntimeError(result["exceptionDetails"]["text"])
        return json.loads(result["result"]["value"])

    def console_errors(self) -> list[str]:
        return list(self.errors)

    def crashed(self) -> bool:
        try:
            return bool(self.evaluate("1", timeout=5) != 1)
        except (RuntimeError, TimeoutError):
            return True

    def close(self) -> None:
        self.bidi.listeners.remove(self._on_event)
        with contextlib.suppress(RuntimeError, TimeoutError):
            self.bidi.send("browsingContext.close", context=self.context, timeout=10)


FIREFOX_PREFS = {
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.disabledForTesting": True,
    "browser.tabs.remote.autostart": True,
}


class Firefox:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="engines-firefox-"))
        (self.dir / "profile").mkdir()
        prefs = "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in FIREFOX_PREFS.items())
        (self.dir / "profile" / "user.js").write_text(prefs)
        socket_path = self.dir / "pulse.sock"
        self.pulse = subprocess.Popen(
            [
                "pulseaudio",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--disable-shm=yes",
                "-n",
                "--load=module-null-sink sink_name=nullsink",
                f"--load=module-native-protocol-unix socket={socket_path} auth-anonymous=1",
                "--log-target=stderr",
            ],
            env={**os.environ, "PULSE_RUNTIME_PATH": str(self.dir), "HOME": str(self.dir)},
            stdout=subprocess.DEVNULL,
            stderr=(self.dir / "pulse.log").open("wb"),
            start_new_session=True,
        )
        wait_for(lambda: socket_path.exists() or self.pulse.poll() is not None, 10, "PulseAudio socket")
        if self.pulse.poll() is not None:
            raise RuntimeError(f"pulseaudio exited:\n{(self.dir / 'pulse.log').read_text()}")
        env = {
            **os.environ,
            "PULSE_SERVER": f"unix:{socket_path}",
            "HOME": str(self.dir),
            "MOZ_CRASHREPORTER_DISABLE": "1",
        }
        profile = str(self.dir / "profile")
        self.process = subprocess.Popen(
            ["firefox-esr", "--headless", "--no-remote", "--remote-debugging-port=0", "--profile", profile],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        url = self._read_bidi_url()
        self.bidi = BiDi(f"{url}/session")
        self.bidi.send("session.new", capabilities={"alwaysMatch": {"acceptInsecureCerts": True}})
        self.bidi.send("session.subscribe", events=["log.entryAdded"])

    def _read_bidi_url(self) -> str:
        assert self.process.stderr is not None
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.process.stderr.readline().decode(errors="replace")
            if not line:
                break
            seen.append(line)
            found = re.search(r"WebDriver BiDi listening on (ws://\S+)", line)
            if found:
                # Keep draining stderr so Firefox never blocks on a full pipe.
                threading.Thread(target=self.process.stderr.read, daemon=True).start()
                return found.group(1)
        self.close()
        raise RuntimeError("firefox-esr did not start WebDriver BiDi:\n" + "".join(seen))

    def new_page(self) -> FirefoxPage:
        return FirefoxPage(self.bidi)

    def close(self) -> None:
        if hasattr(self, "bidi"):
            self.bidi.ws.close()
        kill_group(self.process)
        kill_group(self.pulse)
        shutil.rmtree(self.dir, ignore_errors=True)


# --- WebKitGTK (Selenium + WebKitWebDriver under Xvfb) ---------------------------------------------


class WebKitPage:
    engine = "webkit"

    def __init__(self, browser: WebKit) -> None:
        self.browser = browser

    @property
    def driver(self) -> Any:
        return self.browser.driver

    def goto(self, url: str) -> None:
        self.driver.get(url)
        self.driver.execute_script(ERROR_HOOK)

    def type(self, selector: str, text: str) -> None:
        element = self.driver.find_element("css selector", selector)
        element.clear()
        element.send_keys(text)

    def click(self, selector: str) -> None:
        self.driver.find_element("css selector", selector).click()

    def hover(self, selector: str) -> None:
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(self.driver).move_to_element(self.driver.find_element("css selector", selector)).perform()

    def evaluate(self, expression: str, timeout: float = 30) -> Any:
        self.driver.set_script_timeout(timeout)
        script = (
            "const done = arguments[arguments.length - 1];"
            f"{wrap_json(expression)}.then(done, (e) => done(JSON.stringify({{__error: String(e)}})));"
        )
        value = json.loads(self.driver.execute_async_script(script))
        if isinstance(value, dict) and "__error" in value:
            raise RuntimeError(value["__error"])
        return value

    def console_errors(self) -> list[str]:
        errors: list[str] = self.evaluate("window.__errors || []")
        return errors

    def crashed(self) -> bool:
        try:
            return bool(self.evaluate("1", timeout=5) != 1)
        except Exception:
            return True

    def close(self) -> None:
        try:
            self.driver.get("about:blank")
        except Exception:
            self.browser.restart()  # a crashed page can leave the session unusable


class WebKit:
    def __init__(self) -> None:
        read_end, write_end = os.pipe()
        self.xvfb = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
            pass_fds=[write_end],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(write_end)
        with os.fdopen(read_end) as display:
            self.display = ":" + display.readline().strip()
        self._start()

    def _start(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.remote.client_config import ClientConfig
        from selenium.webdriver.remote.remote_connection import RemoteConnection
        from selenium.webdriver.webkitgtk.options import Options

        from bench.support.server import free_port

        port = free_port()
        env = {name: value for name, value in os.environ.items() if not name.startswith("PULSE")}
        env |= {"DISPLAY": self.display, "PULSE_SERVER": "unix:/nonexistent"}
        self.process = subprocess.Popen(
            ["/usr/bin/WebKitWebDriver", f"--port={port}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        options = Options()
        options.binary_location = MINIBROWSER
        options.add_argument("--automation")
        deadline = time.monotonic() + 30
        while True:
            try:
                connection = RemoteConnection(client_config=ClientConfig(remote_server_addr=f"http://127.0.0.1:{port}"))
                self.driver = webdriver.Remote(command_executor=connection, options=options)
                return
            except Exception:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    kill_group(self.process)
                    raise
                time.sleep(0.2)

    def restart(self) -> None:
        with contextlib.suppress(Exception):
            self.driver.quit()
        kill_group(self.process)
        self._start()

    def new_page(self) -> WebKitPage:
        return WebKitPage(self)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.driver.quit()
        kill_group(self.process)
        kill_group(self.xvfb)


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


def launch(engine: str, playwright: Any = None) -> Browser:
    """Start ``engine``; Chromium reuses ``playwright`` when given (the tests' session one)."""
    if engine == "chromium":
        return Chromium(playwright)
    browsers: dict[str, type[Browser]] = {"firefox": Firefox, "webkit": WebKit}
    return browsers[engine]()
