"""A push connects to the address its host was checked at, never to one a second lookup
could give (DNS rebinding), while the Host header, TLS SNI and certificate verification
stay the host name's. Host names under ``.test`` never resolve in DNS: a push to one that
arrives went to the address the injected resolver gave and the guard checked."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.delivery.addresses import AddressPolicy
from services.delivery.pinning import NOT_PINNED, pinned
from services.delivery.resolving import EndpointGuard
from services.delivery.signing import new_secret
from services.delivery.webhook import PushOutcome, WebhookSender, client

HOST = "hooks.example.test"
SECRET = new_secret()


@dataclass
class Server:
    """A minimal HTTP/1.1 endpoint on 127.0.0.1 that records what reached it."""

    port: int = 0
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)  # TLS SNI as received
    keep_alive: bool = False

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")[1:]
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines if ln)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append((headers, body))
        if self.keep_alive:  # answer, and wait for the next request on this connection
            writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            await self.handle(reader, writer)
            return
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()


@asynccontextmanager
async def serving(
    tls: ssl.SSLContext | None = None, *, keep_alive: bool = False
) -> AsyncIterator[Server]:
    server = Server(keep_alive=keep_alive)
    if tls is not None:

        def sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
            server.server_names.append(name)

        tls.sni_callback = sni
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=tls)
    server.port = listening.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listening.close()
        await listening.wait_closed()


def _guard(answers: dict[str, Sequence[str]]) -> EndpointGuard:
    async def resolve(host: str) -> Sequence[str]:
        if host not in answers:
            raise OSError("no such name")
        return answers[host]

    return EndpointGuard(AddressPolicy(allow_loopback=True), resolver=resolve)


async def _push(sender: WebhookSender, url: str) -> PushOutcome:
    return await sender.post(
        url,
        b'{"n":1}',
        secret=SECRET,
        idempotency_key="s:1",
        subscription_id="s",
        event_number=1,
        recipient="la-northshire",
    )


async def test_a_push_goes_to_the_checked_address_with_the_host_name_kept() -> None:
    async with serving() as server, client(5.0) as http:
        sender = WebhookSender(http, guard=_guard({HOST: ["127.0.0.1"]}), timeout_s=5.0)
        outcome = await _push(sender, f"http://{HOST}:{server.port}/hook")
        assert outcome.ok, outcome
        ((headers, body),) = server.requests
        assert headers["host"] == f"{HOST}:{server.port}"
        Webhook(SECRET).verify(body, headers)  # the recipient's own check


async def test_the_recipient_verifies_a_real_push_with_standard_webhooks() -> None:
    async with serving() as server, client(5.0) as http:
        sender = WebhookSender(http, guard=_guard({HOST: ["127.0.0.1"]}), timeout_s=5.0)
        assert (await _push(sender, f"http://{HOST}:{server.port}/hook")).ok
    ((headers, body),) = server.requests
    assert Webhook(SECRET).verify(body, headers) == {"n": 1}
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace(b"1", b"2"), headers)
    earlier = str(int(headers["webhook-timestamp"]) - 1)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body, {**headers, "webhook-timestamp": earlier})
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)


async def test_the_client_connects_nowhere_without_a_checked_address() -> None:
    async with serving() as server, client(5.0) as http:
        for host in ("127.0.0.1", HOST):  # an address as the host, and a name
            with pytest.raises(aiohttp.ClientConnectorError) as refused:
                await http.post(f"http://{host}:{server.port}/hook", data=b"{}")
            assert str(refused.value.os_error) == NOT_PINNED
        with pinned("other.example.test", ["127.0.0.1"]), pytest.raises(aiohttp.ClientError):
            await http.post(f"http://{HOST}:{server.port}/hook", data=b"{}")  # not its pin
        assert server.requests == []


async def test_a_kept_alive_connection_carries_no_request_once_its_pin_is_gone() -> None:
    async with serving(keep_alive=True) as server, client(5.0) as http:
        url = f"http://{HOST}:{server.port}/hook"
        with pinned(HOST, ["127.0.0.1"]):
            async with http.post(url, data=b"{}") as answer:
                assert answer.status == 204
        with pytest.raises(aiohttp.ClientConnectorError) as refused:
            await http.post(url, data=b"{}")
        assert str(refused.value.os_error) == NOT_PINNED
        assert len(server.requests) == 1


async def test_tls_checks_the_certificate_for_the_host_name_sent_as_sni(tmp_path: Path) -> None:
    trust, tls = _certificates(tmp_path, HOST)
    guard = _guard({HOST: ["127.0.0.1"], "other.example.test": ["127.0.0.1"]})
    async with serving(tls) as server, client(5.0, verify=trust) as http:
        sender = WebhookSender(http, guard=guard, timeout_s=5.0)
        assert (await _push(sender, f"https://{HOST}:{server.port}/hook")).ok
        assert server.server_names == [HOST]
        assert server.requests[0][0]["host"] == f"{HOST}:{server.port}"
        # Same address, another name: the certificate is not that name's, so no push.
        wrong = await _push(sender, f"https://other.example.test:{server.port}/hook")
        assert not wrong.ok and wrong.error == "request failed (ClientConnectorCertificateError)"
        assert len(server.requests) == 1


def _certificates(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A test CA and a server certificate it issued for ``name``: the client's trust and the
    server's context."""
    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "infoshare test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (tmp_path / "server.pem").write_bytes(leaf.public_bytes(pem))
    (tmp_path / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    trust = ssl.create_default_context(cadata=ca.public_bytes(pem).decode())
    return trust, server


@pytest.mark.parametrize("host", ["127.0.0.1", "[::FFFF:127.0.0.1]", "[::ffff:7f00:1]"])
async def test_an_address_as_the_host_is_pinned_however_it_is_spelt(host: str) -> None:
    """The guard and the client parse the URL with different libraries; an address written
    as an IPv4-mapped IPv6 one is spelt differently by each, and must still be found."""
    async with serving() as server, client(5.0) as http:
        sender = WebhookSender(http, guard=_guard({}), timeout_s=5.0)
        outcome = await _push(sender, f"http://{host}:{server.port}/hook")
        assert outcome.ok, outcome
        assert len(server.requests) == 1
