"""A recorded external service for pulled-source tests: a real HTTP server on loopback.

    service = RecordedService(document).start()     # http://127.0.0.1:<free port>/latest
    service.status = 500                            # answers 500 from now on
    service.stop(); service.start()                 # down (connection refused), then back on
    service.requests                                # how many requests it answered
    service.hold = threading.Event()                # answers wait until it is set

It serves ``document`` (JSON) on any GET, on the same port across a stop and a start.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


class RecordedService:
    """Serve a recorded JSON answer; break and mend on demand."""

    def __init__(self, document: Any) -> None:
        self.document = document
        self.status = 200
        self.port = 0
        self.requests = 0
        self.headers: list[dict[str, str]] = []
        self.hold: threading.Event | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/latest"

    def start(self) -> RecordedService:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                service.requests += 1
                service.headers.append({k.lower(): v for k, v in self.headers.items()})
                if service.hold is not None:
                    service.hold.wait(30)
                if service.status != 200:
                    body = b'{"error": "upstream unavailable"}'
                else:
                    body = orjson.dumps(service.document)
                self.send_response(service.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
