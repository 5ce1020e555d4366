"""An ASGI application served by uvicorn on a thread of its own, on a socket bound first.

    http = ThreadedHttp("dashboard", host="127.0.0.1", port=0)   # component name for errors
    port = http.bind()                      # ConnectorError naming the address if it is taken
    http.serve(app, server_name="cityheart-dashboard", address="127.0.0.1:0")
    http.close()                            # requests under way get 2 s; the port is freed

Binding first makes a taken port the caller's error and gives port 0 its number before
anything is served; connections wait in the socket's backlog while uvicorn starts, so
:meth:`ThreadedHttp.serve` only waits to catch a failed start. The dashboard
(:mod:`connectors.web_server`) and the HTTP ingest (:mod:`connectors.ingest.server`) use it.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

import uvicorn

from models.errors import ConnectorError

__all__ = ["ThreadedHttp"]

STARTUP_S = 10.0
"""How long :meth:`ThreadedHttp.serve` waits for uvicorn to take the socket."""


class ThreadedHttp:
    """One uvicorn server on its own daemon thread (see module doc)."""

    def __init__(self, component: str, *, host: str, port: int) -> None:
        self.component = component
        self.host = host.strip("[]")
        self.port = port
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def bind(self, address: str) -> int:
        """Bind the socket; its port. ConnectorError naming ``address`` if it cannot listen."""
        try:
            self._socket = socket.create_server(
                (self.host, self.port),
                family=socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        except OSError as exc:
            msg = f"cannot listen: {exc.strerror or exc}"
            raise ConnectorError(self.component, address, msg) from exc
        self.port = int(self._socket.getsockname()[1])
        return self.port

    def serve(self, app: Any, *, server_name: str, address: str, **options: Any) -> None:
        """Serve ``app`` on the bound socket (``options`` go to uvicorn.Config, e.g. TLS);
        ConnectorError naming ``address`` if uvicorn does not start."""
        assert self._socket is not None, "bind() first"
        config = uvicorn.Config(
            app, log_config=None, log_level=logging.WARNING, access_log=False, lifespan="off",
            ws="none", server_header=False, headers=[("Server", server_name)],
            timeout_graceful_shutdown=2, **options,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [self._socket]},
                                        name=f"{self.component}-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + STARTUP_S
        while not server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not server.started:
            raise ConnectorError(self.component, address, "the HTTP server did not start")

    def close(self) -> None:
        """Stop serving (requests under way get 2 s to finish) and release the port."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self._server = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
