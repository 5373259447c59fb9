"""TLS policy as a client sees it: TLS >= 1.2, ECDHE + AEAD suites only for 1.2, optional client certificates."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.testkit.server import ServerProcess, StartServer
from webhook import certs


def _handshake(server: ServerProcess | int, ctx: ssl.SSLContext) -> tuple[str | None, str | None, str | None]:
    """Connect with ``ctx``; return (version, cipher, alpn) or raise the handshake's error."""
    port = server if isinstance(server, int) else server.port
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        cipher = tls.cipher()
        return tls.version(), cipher[0] if cipher else None, tls.selected_alpn_protocol()


@pytest.fixture(scope="module")
def permissive_port(https_server: ServerProcess) -> Iterator[int]:
    """A control server with the same certificate that accepts anything down to TLS 1.0 and NULL ciphers.

    Each refused client below first handshakes with it: the refusal is then the webhook's policy, not a
    client that could not offer the old protocol or suite at all.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    ctx.set_ciphers("ALL:eNULL:@SECLEVEL=0")
    ctx.load_cert_chain(https_server.cert_dir / "tls.crt", https_server.cert_dir / "tls.key")
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with contextlib.suppress(OSError), ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    listener.close()


def _client(server: ServerProcess) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(server.ca))
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx


def test_tls13_is_accepted_with_http11_alpn(https_server: ServerProcess) -> None:
    ctx = _client(https_server)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    version, _, alpn = _handshake(https_server, ctx)
    assert version == "TLSv1.3"
    assert alpn == "http/1.1"


@pytest.mark.parametrize("cipher", ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                                    "ECDHE-ECDSA-CHACHA20-POLY1305"])  # fmt: skip
def test_tls12_with_ecdhe_aead_suites_is_accepted(https_server: ServerProcess, cipher: str) -> None:
    ctx = _client(https_server)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(cipher)
    version, negotiated, _ = _handshake(https_server, ctx)
    assert (version, negotiated) == ("TLSv1.2", cipher)


@pytest.mark.parametrize(
    "ciphers",
    [
        "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384",  # CBC with ECDHE
        "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA",  # CBC, SHA-1 MAC
        "eNULL:@SECLEVEL=0",  # no encryption at all
    ],
)
def test_tls12_without_ecdhe_aead_is_refused(https_server: ServerProcess, permissive_port: int, ciphers: str) -> None:
    ctx = _client(https_server)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(ciphers)
    assert _handshake(permissive_port, ctx)[0] == "TLSv1.2"  # the client can speak it
    with pytest.raises((ssl.SSLError, OSError)):
        _handshake(https_server, ctx)
    assert https_server.get("/healthz").status_code == 200


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_tls_below_12_is_refused(https_server: ServerProcess, permissive_port: int, version: str) -> None:
    ctx = _client(https_server)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer old versions at all
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.maximum_version = getattr(ssl.TLSVersion, version)
    assert _handshake(permissive_port, ctx)[0] == version.replace("_", ".")  # the client can speak it
    with pytest.raises((ssl.SSLError, OSError)):
        _handshake(https_server, ctx)
    assert https_server.get("/healthz").status_code == 200


def test_client_ca_requires_a_certificate_signed_by_it(tmp_path: Path, start_server: StartServer) -> None:
    client_ca = certs.make_ca("clients")
    good = certs.issue_cert(client_ca, ["kube-apiserver"], client=True)
    stranger_ca = certs.make_ca("strangers")
    stranger = certs.issue_cert(stranger_ca, ["kube-apiserver"], client=True)
    (tmp_path / "client-ca.crt").write_bytes(client_ca.cert_pem())
    for name, pair in (("good", good), ("stranger", stranger)):
        (tmp_path / f"{name}.crt").write_bytes(pair.cert_pem())
        (tmp_path / f"{name}.key").write_bytes(pair.key_pem())

    server = start_server(
        "--client-ca", str(tmp_path / "client-ca.crt"),
        client_cert=(str(tmp_path / "good.crt"), str(tmp_path / "good.key")),
    )  # fmt: skip
    assert server.get("/readyz").status_code == 200
    assert server.post("/validate", b'{"kind":"x"}').status_code == 400  # reaches the app

    for cert in (None, (str(tmp_path / "stranger.crt"), str(tmp_path / "stranger.key"))):
        ctx = ssl.create_default_context(cafile=str(server.ca))
        if cert:
            ctx.load_cert_chain(*cert)
        with httpx.Client(base_url=server.url, verify=ctx) as client, pytest.raises(httpx.TransportError):
            client.get("/healthz")
    assert server.get("/healthz").status_code == 200
