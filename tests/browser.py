"""Drive a real headless Chromium from the standard library: the DevTools protocol over a pipe.

Chromium started with ``--remote-debugging-pipe`` reads protocol commands on file descriptor 3
and writes replies and events on 4, each a JSON message ended by a NUL byte. That is all the
HTML report's tests and ``benchmarks/html_report.py`` need — open a page, run a script in it, read
the DOM, see every network request — so no browser-automation package (Playwright would be a
40 MB dependency whose own browser download cannot be reached here) is involved::

    with Chromium.launch() as browser:            # None when no chromium is installed
        browser.open(Path("report.html").as_uri())
        browser.evaluate("document.title")

``find_chromium()`` is ``None`` where Chromium is absent (Debian: ``apt-get install chromium``);
the tests skip there.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import tempfile
import time
from typing import Any

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-extensions", "--disable-default-apps",
         "--mute-audio", "--hide-scrollbars", "--remote-debugging-pipe")


def find_chromium() -> str | None:
    for name in NAMES:
        path = shutil.which(name)
        if path is not None:
            return path
    return None


class BrowserError(RuntimeError):
    """The browser answered an error, died, or did not answer in time."""


class Chromium:
    """One headless Chromium and one page in it."""

    def __init__(self, executable: str, *, width: int = 1400, height: int = 1000, timeout: float = 60) -> None:
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="qr-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # The child's ends, moved above 9 so that the spawn's dup2 onto 3 and 4 cannot clobber them;
        # posix_spawn (not fork + preexec_fn) is safe in a process with threads (pytest-xdist workers).
        r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
        w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)
        argv = [executable, *FLAGS, f"--user-data-dir={self.profile}", f"--window-size={width},{height}",
                "about:blank"]
        actions = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
        actions += [(os.POSIX_SPAWN_DUP2, r, 3), (os.POSIX_SPAWN_DUP2, w, 4)]
        self.pid = os.posix_spawn(executable, argv, os.environ, file_actions=actions)
        for fd in (to_browser_r, from_browser_w, r, w):
            os.close(fd)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None
        self._target = ""

    @classmethod
    def launch(cls, **kwargs: Any) -> Chromium | None:
        path = find_chromium()
        return None if path is None else cls(path, **kwargs)

    # --- protocol ---------------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("no answer from chromium in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise BrowserError("chromium closed the protocol pipe")
                self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def send(self, method: str, params: dict[str, Any] | None = None, *, page: bool = True) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if page and self.session is not None:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_event(self, method: str, timeout: float | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for i, event in enumerate(self.events):
                if event["method"] == method:
                    return self.events.pop(i)
            message = self._read_message(deadline)
            if "method" in message:
                self.events.append(message)

    # --- a page -----------------------------------------------------------------------------
    def open(self, url: str) -> None:
        """Open ``url`` in a fresh page and wait for its load event; network events are recorded."""
        if self.session is not None:
            self.send("Target.closeTarget", {"targetId": self._target}, page=False)
            self.session = None
        target = self._target = self.send("Target.createTarget", {"url": "about:blank"}, page=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 page=False)["sessionId"]
        for domain in ("Page", "Runtime", "Network"):
            self.send(f"{domain}.enable")
        self.events.clear()
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}: {result['exceptionDetails'].get('exception', {})}")
        return result["result"].get("value")

    def key(self, key: str, code: int, text: str = "") -> None:
        """Press and release a key in the focused element (``key("Enter", 13, "\r")``)."""
        for kind in ("keyDown", "keyUp"):
            event = {"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code,
                     "nativeVirtualKeyCode": code}
            if kind == "keyDown" and text:
                event["text"] = text
            self.send("Input.dispatchKeyEvent", event)

    def type(self, text: str) -> None:
        """Type ``text`` into the focused element, as a keyboard would."""
        self.send("Input.insertText", {"text": text})

    def wait_for(self, expression: str, timeout: float = 20) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for {expression}")
            time.sleep(0.02)

    def requests(self) -> list[str]:
        """URLs of every request the page made (or tried to make) so far."""
        self.evaluate("1")  # drain pending events
        return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"]

    def close(self) -> None:
        with contextlib.suppress(BrowserError, OSError):
            self.send("Browser.close", page=False)
        deadline = time.monotonic() + 10
        while os.waitpid(self.pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                break
            time.sleep(0.05)
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
