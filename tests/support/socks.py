"""A SOCKS5 proxy for the tests: 127.0.0.1, a free port, CONNECT to loopback targets only.

Enough of RFC 1928 (no authentication, or RFC 1929 user/password when `credentials` is given;
IPv4, IPv6 and domain-name targets, the domain resolved here as socks5h asks) for httpx, and
nothing more. It records what each client sent through it, so a test can tell that a request
really went through the proxy.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import threading
from dataclasses import dataclass, field

_LOOPBACK_NAMES = {"localhost"}
_RECORD_LIMIT = 1 << 20  # bytes kept per connection


@dataclass
class Relayed:
    """One CONNECT: where to, and the first bytes the client sent through it."""

    host: str
    port: int
    sent: bytearray = field(default_factory=bytearray)


class SocksProxy:
    """`with SocksProxy() as proxy:` relays until the block ends; `proxy.url` to use it."""

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.credentials = credentials
        self.relayed: list[Relayed] = []
        self.refused = 0  # handshakes refused (bad credentials, non-loopback target)
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._closed = False

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    def url(self, scheme: str = "socks5") -> str:
        auth = f"{self.credentials[0]}:{self.credentials[1]}@" if self.credentials else ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}"

    def sent(self) -> bytes:
        """Everything clients sent through the proxy, all connections end to end."""
        with self._lock:
            return b"".join(bytes(r.sent) for r in self.relayed)

    def __enter__(self) -> SocksProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            try:
                upstream, record = self._handshake(client)
            except (OSError, ValueError):
                with self._lock:
                    self.refused += 1
                return
            with upstream:
                back = threading.Thread(target=_pipe, args=(upstream, client, None), daemon=True)
                back.start()
                _pipe(client, upstream, record)
                back.join(timeout=5)

    def _handshake(self, client: socket.socket) -> tuple[socket.socket, Relayed]:
        version, n_methods = _read(client, 2)
        if version != 5:
            raise ValueError("not SOCKS5")
        methods = _read(client, n_methods)
        wanted = 2 if self.credentials else 0
        if wanted not in methods:
            client.sendall(b"\x05\xff")
            raise ValueError("no acceptable method")
        client.sendall(bytes([5, wanted]))
        if self.credentials:
            _, user_len = _read(client, 2)
            user = _read(client, user_len).decode()
            password = _read(client, _read(client, 1)[0]).decode()
            if (user, password) != self.credentials:
                client.sendall(b"\x01\x01")
                raise ValueError("bad credentials")
            client.sendall(b"\x01\x00")
        _, command, _, address_type = _read(client, 4)
        if address_type == 1:
            host = str(ipaddress.IPv4Address(_read(client, 4)))
        elif address_type == 4:
            host = str(ipaddress.IPv6Address(_read(client, 16)))
        elif address_type == 3:
            host = _read(client, _read(client, 1)[0]).decode()
        else:
            raise ValueError("unknown address type")
        (port,) = struct.unpack("!H", _read(client, 2))
        loopback = host in _LOOPBACK_NAMES or _is_loopback_address(host)
        if command != 1 or not loopback:  # CONNECT only, and never off this machine
            client.sendall(b"\x05\x02\x00\x01" + bytes(6))
            raise ValueError(f"refused {host}:{port}")
        try:
            upstream = socket.create_connection(
                ("127.0.0.1" if host == "localhost" else host, port), timeout=5
            )
        except OSError:
            client.sendall(b"\x05\x05\x00\x01" + bytes(6))  # connection refused
            raise
        upstream.settimeout(None)
        client.sendall(b"\x05\x00\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack("!H", 0))
        record = Relayed(host, port)
        with self._lock:
            self.relayed.append(record)
        return upstream, record


def _is_loopback_address(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ValueError("client closed during the handshake")
        data += chunk
    return data


def _pipe(source: socket.socket, target: socket.socket, record: Relayed | None) -> None:
    try:
        while chunk := source.recv(65536):
            if record is not None and len(record.sent) < _RECORD_LIMIT:
                record.sent += chunk[: _RECORD_LIMIT - len(record.sent)]
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        # Tell the other side this direction is done; the other pipe ends on its own.
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)
