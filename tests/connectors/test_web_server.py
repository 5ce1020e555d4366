"""The dashboard's web server over real HTTP on loopback: which paths it serves, how it refuses
the rest, its body limit and the JSON error answers of the dispatch API.

These answers are what browsers, the ``cityheart incident`` command and proxies in front of the
server rely on; they must not change when the server underneath does.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from cityheart.dashboard import web_root
from connectors.http_api import Answer
from connectors.tokens import Claims
from connectors.web_server import CONTENT_SECURITY_POLICY, DashboardSettings, WebServer
from settings.config import Settings

pytestmark = pytest.mark.timeout(60)

LIMIT = 64 * 1024   # the API's body limit (connectors.http_api)


class RecordingApi:
    """An IncidentApi that knows one incident and records the actions it is asked to take."""

    def __init__(self) -> None:
        self.acted: list[tuple[str, dict[str, Any]]] = []

    def incidents(self, claims: Claims, *, states: list[str], limit: int) -> dict[str, Any]:
        return {"incidents": [{"id": "inc-1", "states": states, "limit": limit}]}

    def incident(self, claims: Claims, incident_id: str) -> dict[str, Any] | None:
        return {"incident": {"id": incident_id}, "events": []} if incident_id == "inc-1" else None

    def act(self, claims: Claims, incident_id: str, request: Mapping[str, Any]) -> Answer:
        self.acted.append((incident_id, dict(request)))
        return HTTPStatus.OK, {"event": {"action": request.get("action")},
                               "incident": {"id": incident_id}}

    def kpi(self, claims: Claims, *, since: str, until: str) -> Answer:
        return HTTPStatus.OK, {"since": since, "until": until, "departments": []}


@pytest.fixture
def api() -> RecordingApi:
    return RecordingApi()


@pytest.fixture
def web(base_settings: Settings, api: RecordingApi) -> Iterator[WebServer]:
    with WebServer(base_settings, DashboardSettings(port=0), static_dir=web_root(),
                   api=api) as server:
        yield server


def send(web: WebServer, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request with ``path`` sent exactly as written (no client-side normalising)."""
    address = urlsplit(web.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=20)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in {**(headers or {}),
                            **({"Content-Length": str(len(body))} if body is not None
                               else {})}.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("path", [
    "/../pyproject.toml",
    "/../../config.yaml",
    "/%2e%2e/pyproject.toml",
    "/%2e%2e%2f%2e%2e%2fconfig.yaml",
    "/js/../../../pyproject.toml",
    "/js/%2e%2e/%2e%2e/%2e%2e/pyproject.toml",
    "/..%2f..%2fpyproject.toml",
    "/%2Fetc%2Fpasswd",
    "//etc/passwd",
    "/js/",
    "/nothing.js",
])
def test_nothing_outside_the_web_folder_is_served(web: WebServer, path: str) -> None:
    for method in ("GET", "HEAD"):
        status, headers, body = send(web, method, path)
        assert status == 404, (method, path, body)
        assert b"root:" not in body and b"[project]" not in body
    status, _, body = send(web, "GET", path)
    assert body.startswith(b"no such page: ")


def test_pages_and_config_come_with_the_content_security_policy_and_head_has_no_body(
    web: WebServer,
) -> None:
    for path, kind in (("/", "text/html"), ("/index.html", "text/html"),
                       ("/js/main.js", "text/javascript"), ("/config.json", "application/json")):
        status, headers, body = send(web, "GET", path)
        assert status == 200 and headers["Content-Type"].startswith(kind), path
        assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert int(headers["Content-Length"]) == len(body) > 0
        status, head_headers, head_body = send(web, "HEAD", path)
        assert (status, head_body) == (200, b"")
        assert head_headers["Content-Type"] == headers["Content-Type"]
    status, _, body = send(web, "POST", "/index.html", b"{}")
    assert status == 405


def test_an_action_body_over_the_limit_is_refused_with_413_and_not_acted_on(
    web: WebServer, api: RecordingApi,
) -> None:
    path = "/api/incidents/inc-1/actions"
    padding = LIMIT - len(b'{"action": "comment", "comment": ""}')
    at_limit = orjson.dumps({"action": "comment", "comment": "x" * padding})
    assert len(at_limit) <= LIMIT
    status, _, body = send(web, "POST", path, at_limit)
    assert status == 200, body
    assert len(api.acted) == 1

    for size in (LIMIT + 1, 900 * 1024):
        oversized = orjson.dumps({"action": "comment", "comment": "x" * size})
        status, headers, body = send(web, "POST", path, oversized)
        assert status == 413, size
        assert headers["Content-Type"].startswith("application/json")
        assert orjson.loads(body) == {"error": "invalid",
                                      "detail": f"the body is over {LIMIT} bytes"}
    assert len(api.acted) == 1


def test_the_api_answers_errors_as_json_with_a_code_and_a_detail(web: WebServer) -> None:
    def call(method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
        status, headers, data = send(web, method, path, body)
        assert headers["Content-Type"].startswith("application/json"), path
        return status, orjson.loads(data)

    assert call("GET", "/api/nothing") == (404, {
        "error": "not_found", "detail": "no such API: GET /api/nothing"})
    assert call("GET", "/api/incidents/inc-9") == (404, {
        "error": "not_found", "detail": "no incident 'inc-9'"})
    assert call("GET", "/api/incidents/inc-1/actions") == (405, {
        "error": "invalid", "detail": "POST an action here"})
    assert call("GET", "/api/incidents?limit=many") == (400, {
        "error": "invalid", "detail": "limit must be a whole number"})
    status, refused = call("POST", "/api/incidents/inc-1/actions", b"[1, 2]")
    assert (status, refused["detail"]) == (400, "the body must be a JSON object")
    status, refused = call("POST", "/api/incidents/inc-1/actions", b"{nope")
    assert (status, refused["error"]) == (400, "invalid")
    status, refused = call("GET", "/api/whoami?x=1", None)
    assert (status, refused["role"]) == (200, "operator")   # no tokens checked: a demo
    status, found = call("GET", "/api/incidents?state=open&state=acknowledged&limit=9000")
    assert found["incidents"][0]["states"] == ["open", "acknowledged"]
    assert found["incidents"][0]["limit"] == 5000
    assert call("GET", "/api/kpi?since=1d") == (200, {
        "since": "1d", "until": "now", "departments": []})
    assert call("GET", "/api/incidents/inc%2D1")[0] == 200   # path parts are unquoted
    status, _, data = send(web, "GET", "/api/whoami", headers={"Authorization": "Basic x"})
    assert (status, orjson.loads(data)["error"]) == (401, "unauthorized")


def test_without_a_dispatch_api_every_api_path_says_so(base_settings: Settings) -> None:
    with WebServer(base_settings, DashboardSettings(port=0), static_dir=web_root()) as web:
        status, _, body = send(web, "GET", "/api/incidents")
        assert (status, orjson.loads(body)["detail"]) == (404, "this server has no dispatch API")
        status, _, body = send(web, "GET", "/api/history?district=harbour&name=pm25")
        assert status == 404 and b"no history database" in body


def test_the_openapi_document_lists_the_api_as_the_code_declares_it(web: WebServer) -> None:
    status, headers, body = send(web, "GET", "/openapi.json")
    assert status == 200 and headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    document = orjson.loads(body)
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    assert {"/api/whoami", "/api/incidents", "/api/incidents/{incident_id}",
            "/api/incidents/{incident_id}/actions", "/api/kpi", "/api/history",
            "/api/reports"} <= set(paths)
    action = paths["/api/incidents/{incident_id}/actions"]["post"]
    body_schema = action["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema["required"] == ["action"]
    listed = {p["name"] for p in paths["/api/incidents"]["get"]["parameters"]}
    assert listed == {"state", "limit"}
    # the routes check their own parameters (400 with error and detail), never FastAPI's 422
    # (a 422 a route lists is its own answer: an invalid report or window, with error/detail)
    assert "HTTPValidationError" not in body.decode()
    assert all("422" not in operation["responses"] for operation in paths["/api/incidents"]
               .values() if operation is not paths["/api/incidents"].get("post"))
    assert send(web, "GET", "/docs")[0] == 404   # no docs page: it would load a CDN's scripts


def test_connections_are_kept_alive_between_requests(web: WebServer) -> None:
    address = urlsplit(web.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=20)
    try:
        ports = set()
        for path in ("/", "/config.json", "/api/whoami", "/nothing.js"):
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            assert response.status in (200, 404)
            assert connection.sock is not None
            ports.add(connection.sock.getsockname()[1])
        assert len(ports) == 1   # one connection served all four
    finally:
        connection.close()


def test_a_taken_port_is_refused_with_the_address_and_port_0_gets_a_free_one(
    base_settings: Settings, web: WebServer,
) -> None:
    from models.errors import ConnectorError

    assert web.port != 0 and web.url == f"http://127.0.0.1:{web.port}/"
    taken = WebServer(base_settings, DashboardSettings(port=web.port), static_dir=web_root())
    with pytest.raises(ConnectorError, match=f"127.0.0.1:{web.port}"):
        taken.start()
    assert send(web, "GET", "/config.json")[0] == 200   # the first one still serves


def _self_signed(directory: Any) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and its key, as PEM files in ``directory``."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return str(certfile), str(keyfile)


def test_with_a_certificate_the_page_is_served_over_https(
    base_settings: Settings, tmp_path: Any
) -> None:
    import ssl

    certfile, keyfile = _self_signed(tmp_path)
    tls = DashboardSettings(port=0, tls_certfile=certfile, tls_keyfile=keyfile)
    with WebServer(base_settings, tls, static_dir=web_root()) as server:
        assert server.url.startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=certfile)
        connection = http.client.HTTPSConnection("127.0.0.1", server.port, context=context,
                                                 timeout=30)
        connection.request("GET", "/config.json")
        response = connection.getresponse()
        assert response.status == HTTPStatus.OK
        assert orjson.loads(response.read())["city"]["name"] == base_settings.city.name
        assert response.getheader("Content-Security-Policy") == CONTENT_SECURITY_POLICY
        connection.close()
        plain = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            plain.request("GET", "/")  # plain HTTP on the TLS port gets no page
            plain.getresponse()


def test_a_certificate_without_its_key_is_refused_naming_both_keys() -> None:
    from models.errors import ConfigError
    from settings.loader import load_mapping
    from tests.support import shipped_config

    raw = shipped_config()
    raw["dashboard"]["tls_certfile"] = "cert.pem"
    with pytest.raises(ConfigError, match="tls_certfile and tls_keyfile go together"):
        load_mapping(raw, env={})
