"""A small driver for headless Chromium over the DevTools protocol, standard library only, for
tests/test_browser.py.

Chromium is started with `--remote-debugging-pipe`: it reads protocol messages (JSON, each ended by a
NUL byte) on its file descriptor 3 and writes its answers and events on descriptor 4. `Browser` owns
the process and the two pipes; `Tab` is one page (a flattened session) that records, per visit, every
request URL (the page's and its workers'), every console error and uncaught exception, and every
failed or unsuccessful response. `serve` serves a built site on 127.0.0.1.
"""

from __future__ import annotations

import base64
import fcntl
import functools
import http.server
import json
import os
import select
import shutil
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
MISSING = ("headless Chromium is needed for tests/test_browser.py and none was found (looked for $SNNCOMP_CHROMIUM, "
           "then {names} on PATH). Install Debian's package: `apt-get update && apt-get install -y chromium` "
           "(as root; .ci/run does this itself when it runs as root), or point SNNCOMP_CHROMIUM at a Chromium "
           "or Chrome binary.")

# Chromium's own traffic is switched off, and no host name resolves except the local server's, so
# nothing leaves the machine even when a page asks for it (the request is still recorded and fails).
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
    "--disable-default-apps", "--disable-domain-reliability", "--disable-client-side-phishing-detection",
    "--disable-features=Translate,OptimizationHints,MediaRouter,InterestFeedContentSuggestions",
    "--metrics-recording-only", "--mute-audio", "--hide-scrollbars", "--disable-dev-shm-usage",
    "--force-device-scale-factor=1", "--window-size=1280,1000", "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


def find_chromium() -> str | None:
    """The Chromium binary: $SNNCOMP_CHROMIUM when set (it must exist), else the first of CANDIDATES
    on PATH, else None."""
    env = os.environ.get("SNNCOMP_CHROMIUM")
    if env:
        path = shutil.which(env)
        if path is None:
            raise FileNotFoundError(f"SNNCOMP_CHROMIUM={env!r} is not an executable file; unset it to use "
                                    "Debian's chromium (`apt-get install -y chromium`) or name a Chromium binary")
        return path
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


def missing_message() -> str:
    return MISSING.format(names=", ".join(CANDIDATES))


# ----------------------------------------------------------------------------- local server


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextmanager
def serve(root: Path):
    """Serve the folder `root` on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


# ----------------------------------------------------------------------------- the browser


class ProtocolError(RuntimeError):
    """Chromium answered a command with an error, closed its pipe, or did not answer in time."""


class Browser:
    """One headless Chromium process driven through its debugging pipe."""

    def __init__(self, binary: str, timeout: float = 30.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="snncomp-chromium-")
        self.log = open(Path(self.profile) / "stderr.log", "w+b")  # noqa: SIM115 (closed in close())
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()
        # the child's ends move above 4 first, so that placing them on 3 and 4 cannot close one of them
        to_chrome_r, from_chrome_w = (self._above_four(fd) for fd in (to_chrome_r, from_chrome_w))
        args = [binary, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-pipe", "about:blank"]
        # bash (dash takes single-digit descriptors only) puts our pipe ends on descriptors 3 and 4,
        # where --remote-debugging-pipe expects them
        script = f'exec "$@" 3<&{to_chrome_r} 4>&{from_chrome_w} {to_chrome_r}<&- {from_chrome_w}>&-'
        self.proc = subprocess.Popen(["/bin/bash", "-c", script, "bash", *args],
                                     pass_fds=(to_chrome_r, from_chrome_w), stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._next = 0
        self.answers: dict[int, dict] = {}
        self.events: list[dict] = []  # events not yet taken by a Tab
        self.tabs: dict[str, Tab] = {}  # by session id, workers included (they map to their page's Tab)
        try:
            self.version = self.send("Browser.getVersion")["product"]
        except ProtocolError as exc:
            self.close()
            raise ProtocolError(f"{binary} did not start: {exc}") from None

    @staticmethod
    def _above_four(fd: int) -> int:
        if fd > 4:
            return fd
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(fd)
        return high

    # -- wire

    def post(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        """Send a command without waiting for its answer; returns its id."""
        self._next += 1
        msg = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self._w, data):]
        except BrokenPipeError:
            raise ProtocolError(f"Chromium closed its pipe; its log ends:\n{self.log_tail()}") from None
        return self._next

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float | None = None) -> dict:
        """Send a command and wait for its answer (events arriving meanwhile are kept)."""
        ident = self.post(method, params, session)
        deadline = time.monotonic() + (timeout or self.timeout)
        while ident not in self.answers:
            if not self.pump(deadline - time.monotonic()):
                raise ProtocolError(f"no answer to {method} within {timeout or self.timeout:.0f} s")
        answer = self.answers.pop(ident)
        if "error" in answer:
            raise ProtocolError(f"{method} {json.dumps(params)[:200]} failed: {answer['error']}")
        return answer.get("result", {})

    def pump(self, timeout: float) -> bool:
        """Read what Chromium has written within `timeout` seconds; False when nothing came."""
        ready, _, _ = select.select([self._r], [], [], max(timeout, 0))
        if not ready:
            return False
        chunk = os.read(self._r, 1 << 20)
        if not chunk:
            raise ProtocolError(f"Chromium closed its pipe; its log ends:\n{self.log_tail()}")
        self._buf += chunk
        *messages, self._buf = self._buf.split(b"\0")
        for raw in messages:
            msg = json.loads(raw)
            if "id" in msg:
                self.answers[msg["id"]] = msg
            else:
                self._event(msg)
        return True

    def _event(self, msg: dict):
        tab = self.tabs.get(msg.get("sessionId", ""))
        if msg["method"] == "Target.attachedToTarget" and tab is not None:
            # a worker of the page (Material's search runs in one): record its traffic too, then let it run
            child = msg["params"]["sessionId"]
            self.tabs[child] = tab
            for method in ("Network.enable", "Runtime.enable"):
                self.post(method, session=child)
            self.post("Runtime.runIfWaitingForDebugger", session=child)
        if tab is not None:
            tab.record(msg)

    def log_tail(self, n: int = 2000) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-n:]

    # -- pages

    def new_tab(self, width: int = 1280, height: int = 1000) -> Tab:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        tab = Tab(self, session)
        self.tabs[session] = tab
        for method in ("Page.enable", "Network.enable", "Runtime.enable", "Log.enable"):
            self.send(method, session=session)
        self.send("Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True},
                  session=session)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
        return tab

    def close(self):
        if self.proc.poll() is None:
            try:
                self.post("Browser.close")
                self.proc.wait(timeout=10)
            except (ProtocolError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


@dataclass
class Visit:
    """What one page load did."""

    url: str
    requests: list[str] = field(default_factory=list)  # every request URL, page and workers
    errors: list[str] = field(default_factory=list)  # console errors, uncaught exceptions, error log entries
    failed: list[str] = field(default_factory=list)  # requests that failed or got a status >= 400
    pending: dict[str, str] = field(default_factory=dict)  # request id -> URL, still in flight
    loaded: bool = False


def _console_text(params: dict) -> str:
    parts = []
    for arg in params.get("args", []):
        parts.append(str(arg.get("value", arg.get("description", arg.get("type")))))
    return " ".join(parts)


class Tab:
    """One page of the browser; `visit` loads a URL and returns what the load did."""

    def __init__(self, browser: Browser, session: str):
        self.browser = browser
        self.session = session
        self.visit_now: Visit | None = None

    def send(self, method: str, params: dict | None = None, timeout: float | None = None) -> dict:
        return self.browser.send(method, params, self.session, timeout)

    def record(self, msg: dict):
        v = self.visit_now
        if v is None:
            return
        method, p = msg["method"], msg.get("params", {})
        key = p.get("requestId")  # a worker's script is asked for by the page and finished in the worker
        if method == "Network.requestWillBeSent":
            v.requests.append(p["request"]["url"])
            v.pending[key] = p["request"]["url"]
        elif method == "Network.responseReceived" and p["response"]["status"] >= 400:
            v.failed.append(f'{p["response"]["status"]} {p["response"]["url"]}')
        elif method == "Network.loadingFinished":
            v.pending.pop(key, None)
        elif method == "Network.loadingFailed":
            url = v.pending.pop(key, "?")
            if not p.get("canceled"):
                v.failed.append(f'{p.get("errorText")} {url}')
        elif method == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
            v.errors.append(f'console.{p["type"]}: {_console_text(p)}')
        elif method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            v.errors.append(f'uncaught: {d.get("exception", {}).get("description") or d.get("text")} '
                            f'({d.get("url", "")}:{d.get("lineNumber", "?")})')
        elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
            e = p["entry"]
            v.errors.append(f'{e["source"]}: {e["text"]} {e.get("url", "")}'.strip())
        elif method == "Page.loadEventFired" and msg.get("sessionId") == self.session:
            v.loaded = True

    def visit(self, url: str, quiet: float = 0.15, timeout: float = 30.0) -> Visit:
        """Load `url`; return once the load event has fired and no request has been in flight for
        `quiet` seconds (the search worker fetches its index after the load)."""
        self.visit_now = v = Visit(url)
        answer = self.send("Page.navigate", {"url": url})
        if answer.get("errorText"):
            v.errors.append(f'navigation: {answer["errorText"]}')
            return v
        deadline = time.monotonic() + timeout
        while not v.loaded:
            if time.monotonic() > deadline:
                raise ProtocolError(f"{url} did not finish loading within {timeout:.0f} s")
            self.browser.pump(deadline - time.monotonic())
        calm_since = time.monotonic()
        while time.monotonic() < deadline:
            if v.pending:
                calm_since = time.monotonic()
            elif time.monotonic() - calm_since >= quiet:
                break
            self.browser.pump(0.05)
        return v

    def evaluate(self, expression: str, timeout: float | None = None):
        """The value of a JavaScript expression in the page (awaited when it is a promise)."""
        answer = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, timeout)
        if "exceptionDetails" in answer:
            d = answer["exceptionDetails"]
            raise ProtocolError(f"script failed: {d.get('exception', {}).get('description') or d.get('text')}")
        return answer["result"].get("value")

    def settle(self, seconds: float):
        """Let the page run for `seconds`, recording what it does."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.browser.pump(end - time.monotonic())

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def type_text(self, text: str):
        """Type `text` into the focused element the way a keyboard does: one key press per character."""
        for ch in text:
            params = {"text": ch, "unmodifiedText": ch, "key": ch}
            self.send("Input.dispatchKeyEvent", {"type": "keyDown", **params})
            self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": ch})

