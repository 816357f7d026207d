"""The common base of the fake provider servers: threaded HTTP/1.1 server, control API, process mode."""

from __future__ import annotations

import argparse
import http
import inspect
import json
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
CONTROL_PREFIX = "/_fake/"

_REASONS = {status.value: status.phrase for status in http.HTTPStatus}


class Response:
    """What a fake's handler returns: status, body bytes, content type and extra headers."""

    __slots__ = ("status", "body", "content_type", "headers")

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers


def json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(payload, default=json_default).encode(), headers=headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeServer) -> None:
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request_thread(self, request, client_address):  # type: ignore[override]
        with self.connections_lock:
            self.connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.connections_lock:
                self.connections.discard(request)

    def handle_error(self, request, client_address) -> None:
        # A client that hung up mid-request (timeouts, benchmarks stopping) is normal here.
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError | TimeoutError | OSError):
            super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Headers(dict):
    """Request headers with lower-cased names; `get` ignores case."""

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return dict.get(self, name.lower(), default)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet on purpose
        pass

    def handle_one_request(self) -> None:
        # The standard parser (email.feedparser) costs several times what a fake's answer does;
        # this reads the request line and headers directly.
        rfile = self.rfile
        try:
            line = rfile.readline(65537)
            if not line:
                self.close_connection = True
                return
            parts = line.split()
            headers = Headers()
            while True:
                header = rfile.readline(65537)
                if header in (b"\r\n", b"\n", b""):
                    break
                name, _, value = header.partition(b":")
                headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
                if len(headers) > 100:
                    break
        except (TimeoutError, ConnectionError):
            self.close_connection = True
            return
        if len(parts) != 3 or len(line) > 65536 or not parts[2].startswith(b"HTTP/1."):
            self.close_connection = True
            self._write(Response(400, b"bad request line", "text/plain"))
            return
        self.command = parts[0].decode("latin-1")
        self.path = parts[1].decode("latin-1")
        self.request_version = version = parts[2].decode("latin-1")
        self.headers = headers  # type: ignore[assignment]
        connection = headers.get("connection", "").lower()
        self.close_connection = connection == "close" or (
            version == "HTTP/1.0" and connection != "keep-alive"
        )
        self._dispatch()

    def _dispatch(self) -> None:
        length = self.headers.get("content-length")
        self.body = self.rfile.read(int(length)) if length else b""
        path, _, self.query = self.path.partition("?")
        self.path_only = path
        fake = self.server.fake
        if path.startswith(CONTROL_PREFIX):
            self._write(fake._control(self.command, path[len(CONTROL_PREFIX) :], self.body))
            return
        fake._enter()
        response = None
        try:
            response = fake.handle(self)
        except Exception:  # a bug in the fake: say so loudly, answer 500, keep serving
            traceback.print_exc()
            with fake._lock:
                fake.internal_errors += 1
            response = Response(500, traceback.format_exc().encode(), "text/plain")
        finally:
            fake._leave(response.status if response is not None else None)
        if response is None:  # the fake chose to hang up without answering
            self.close_connection = True
            return
        self._write(response)

    def _write(self, response: Response) -> None:
        body = response.body
        head = [
            f"HTTP/1.1 {response.status} {_REASONS.get(response.status, '')}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(body)}",
        ]
        if response.headers:
            head.extend(f"{name}: {value}" for name, value in response.headers.items())
        if self.close_connection:
            head.append("Connection: close")
        # One write for head and body: two small writes would meet Nagle and delayed ACKs.
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)


class FakeServer:
    """A fake provider: `with Fake(...) as fake:` runs it in a thread; `fake.url` is its base URL.

    Subclasses define `handle(request) -> Response | None` for the provider's API, their options as
    keyword arguments of `__init__` (all changeable at runtime through `configure`), `stats()`,
    `messages()` and `reset()`. Every option and record is reachable over HTTP under `/_fake/`.
    """

    kind = "fake"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._control_client: FakeControl | None = None
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._reset_counters()

    # -- options --------------------------------------------------------------------------------
    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        parameters = inspect.signature(cls.__init__).parameters
        return {
            name: p.default
            for name, p in parameters.items()
            if name not in ("self", "host", "port")
            and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        }

    def config(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.option_defaults()}

    def configure(self, **options: Any) -> None:
        """Change options at runtime (also `POST /_fake/config`); unknown names raise ValueError."""
        known = self.option_defaults()
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ValueError(f"unknown option(s): {', '.join(unknown)}")
        for name, value in options.items():
            setattr(self, name, self._coerce_option(name, value))
        self._options_changed()

    def _coerce_option(self, name: str, value: Any) -> Any:
        return value

    def _options_changed(self) -> None:
        pass

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def control(self) -> FakeControl:
        """The same control API a separate process offers, over HTTP."""
        if self._control_client is None or self._control_client.url != self.url:
            self._control_client = FakeControl(self.url)
        return self._control_client

    def start(self) -> FakeServer:
        if self._server is not None:
            return self
        self.stopping.clear()
        self._server = _Server((self.host, self.port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"fake-{self.kind}",
            daemon=True,
        )
        self._thread.start()
        self._started()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self.stopping.set()  # releases requests held to simulate timeouts
        self._stopped()
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        if self._thread is not None:
            self._thread.join(5)
        if self._control_client is not None:
            self._control_client.close()
        self._server = None
        self._thread = None
        self._control_client = None

    def _started(self) -> None:
        pass

    def _stopped(self) -> None:
        pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # -- stats shared by every fake -------------------------------------------------------------
    def _reset_counters(self) -> None:
        self.requests = 0
        self.in_flight = 0
        self.max_concurrency_seen = 0
        self.responses_by_status: dict[str, int] = {}
        self.internal_errors = 0

    def _enter(self) -> None:
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            if self.in_flight > self.max_concurrency_seen:
                self.max_concurrency_seen = self.in_flight

    def _leave(self, status: int | None) -> None:
        # Runs before the response is written, so a client never sees a slot still taken.
        with self._lock:
            self.in_flight -= 1
            if status is not None:
                key = str(status)
                self.responses_by_status[key] = self.responses_by_status.get(key, 0) + 1

    def base_stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "in_flight": self.in_flight,
            "max_concurrency_seen": self.max_concurrency_seen,
            "responses_by_status": dict(self.responses_by_status),
            "internal_errors": self.internal_errors,
        }

    # -- what subclasses implement --------------------------------------------------------------
    def handle(self, request: _Handler) -> Response | None:
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return self.base_stats()

    def messages(self) -> list[dict[str, Any]]:
        return []

    def reset(self) -> None:
        with self._lock:
            self._reset_counters()

    def control_views(self) -> dict[str, Callable[[], Any]]:
        """Extra `GET /_fake/<name>` views; subclasses add theirs."""
        return {}

    def control_actions(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        """Extra `POST /_fake/<name>` actions taking the JSON body; subclasses add theirs."""
        return {}

    # -- control API ----------------------------------------------------------------------------
    def _control(self, method: str, name: str, body: bytes) -> Response:
        if method == "GET":
            views = {
                "stats": self.stats,
                "messages": self.messages,
                "config": self.config,
                **self.control_views(),
            }
            view = views.get(name)
            if view is None:
                return json_response(404, {"error": f"no control view {name!r}"})
            return json_response(200, view())
        if method == "POST" and name == "reset":
            self.reset()
            return json_response(200, {"reset": True})
        action = self.control_actions().get(name) if method == "POST" else None
        if action is not None:
            try:
                payload = json.loads(body or b"{}")
                return json_response(200, action(payload))
            except (ValueError, TypeError, KeyError) as exc:
                return json_response(400, {"error": str(exc)})
        if method == "POST" and name == "config":
            try:
                options = json.loads(body or b"{}")
                if not isinstance(options, dict):
                    raise ValueError("the body must be a JSON object")
                self.configure(**options)
            except (ValueError, TypeError) as exc:
                return json_response(400, {"error": str(exc)})
            return json_response(200, self.config())
        return json_response(404, {"error": f"no control endpoint {method} {name!r}"})


class RecordingServer(FakeServer):
    """Records every request it gets and answers `status` (204): a stand-in webhook receiver."""

    kind = "recorder"

    def __init__(self, status: int = 204, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.status = status
        super().__init__(host, port)

    def _reset_counters(self) -> None:
        super()._reset_counters()
        self.received: list[dict[str, Any]] = []

    def handle(self, request: _Handler) -> Response:
        record = {
            "method": request.command,
            "path": request.path_only,
            "query": request.query,
            "headers": dict(request.headers),
            "body": request.body.decode("utf-8", "replace"),
            "received_at": time.time(),
        }
        with self._lock:
            self.received.append(record)
        return Response(self.status, b"", "text/plain")

    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.received)


class FakeControl:
    """Talks to a fake's control API over HTTP, in this process or another."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def _get(self, name: str) -> Any:
        response = self.session.get(f"{self.url}{CONTROL_PREFIX}{name}", timeout=self.timeout)
        response.raise_for_status()
        return response.json()

    def _post(self, name: str, payload: dict[str, Any] | None = None) -> Any:
        response = self.session.post(
            f"{self.url}{CONTROL_PREFIX}{name}", json=payload or {}, timeout=self.timeout
        )
        if response.status_code == 400:
            raise ValueError(response.json()["error"])
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict[str, Any]:
        return self._get("stats")

    def messages(self) -> list[dict[str, Any]]:
        return self._get("messages")

    def get(self, name: str) -> Any:
        """Any other `GET /_fake/<name>` view (Missive: posts, drafts, labels, conversations)."""
        return self._get(name)

    def config(self, **options: Any) -> dict[str, Any]:
        """With options: change them; always: return the whole configuration."""
        if not options:
            return self._get("config")
        return self._post("config", options)

    def reset(self) -> None:
        self._post("reset")

    def post(self, name: str, payload: dict[str, Any] | None = None) -> Any:
        """Any other `POST /_fake/<name>` action (Missive: incoming)."""
        return self._post(name, payload)

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        """Poll stats until predicate(stats) holds; returns the stats or raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if predicate(stats):
                return stats
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout}s; stats: {stats}")
            time.sleep(0.02)

    def close(self) -> None:
        self.session.close()


# -- process mode ---------------------------------------------------------------------------------
def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {text!r}")


_CLI_TYPES: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "str": str}


def main(cls: type[FakeServer], argv: list[str] | None = None) -> None:
    """`python -m tests.fakes.<kind> --port P [--option-name value ...] [--options-json '{...}']`.

    Prints the URL on its first stdout line once listening; stops on SIGTERM or SIGINT.
    """
    parser = argparse.ArgumentParser(prog=f"python -m tests.fakes.{cls.kind}")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--options-json", default="{}", help="any options, as a JSON object")
    parameters = inspect.signature(cls.__init__).parameters
    for name in cls.option_defaults():
        # Annotations are strings here ("float", "int | None"); dicts go through --options-json.
        annotation = str(parameters[name].annotation).split(" |")[0]
        flag = f"--{name.replace('_', '-')}"
        if annotation == "bool":
            parser.add_argument(flag, dest=name, type=_parse_bool, nargs="?", const=True)
        elif annotation in _CLI_TYPES:
            parser.add_argument(flag, dest=name, type=_CLI_TYPES[annotation])
    args = parser.parse_args(argv)
    options = json.loads(args.options_json)
    for name in cls.option_defaults():
        value = getattr(args, name, None)
        if value is not None:
            options[name] = value

    fake = cls(host=args.host, port=args.port, **options)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    fake.start()
    print(fake.url, flush=True)
    while not done.wait(1.0):
        pass
    fake.stop()


class FakeProcess:
    """A fake running in its own process (benchmarks): `.url`, `.control`, `.stop()`."""

    def __init__(self, kind: str, startup_timeout: float = 15.0, **options: Any) -> None:
        self.kind = kind
        command = [
            sys.executable,
            "-m",
            f"tests.fakes.{kind}",
            "--port",
            "0",
            "--options-json",
            json.dumps(options, default=json_default),
        ]
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        try:
            self.url = self._read_url(startup_timeout)
            self.control = FakeControl(self.url)
            self._wait_until_answering(startup_timeout)
        except BaseException:
            self.stop()
            raise

    def _read_url(self, timeout: float) -> str:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline().strip() if ready else ""
        if not line.startswith("http"):
            raise RuntimeError(f"fake {self.kind} did not start (exit code {self.process.poll()})")
        return line

    def _wait_until_answering(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.control.stats()
                return
            except requests.RequestException:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> FakeProcess:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


def start_fake_process(kind: str, **options: Any) -> FakeProcess:
    """Start `python -m tests.fakes.<kind>` with these options; returns once it answers."""
    return FakeProcess(kind, **options)
