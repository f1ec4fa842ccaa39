"""Which address a request comes from, and whether it came over TLS, behind trusted proxies.

Only a peer listed in ``BACKBEAT_TRUSTED_PROXIES`` (addresses or networks) is believed about
the client: its ``X-Forwarded-For`` is read from the right, skipping trusted proxies, and the
first other address is the client; its ``X-Forwarded-Proto`` says http or https. Anyone else's
forwarding headers are ignored, so a client cannot pick the address its failures are counted
for. (uvicorn's own proxy-header handling, which trusts 127.0.0.1 by default, is turned off in
``app.WebServer``: this is the only place that reads these headers.)

Next: ``throttle.py`` (failures per address), ``login.py`` (the ``Secure`` cookie flag).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[v6]:port"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "v4:port"
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class TrustedProxies:
    """The configured proxies, and what they say about a request."""

    def __init__(self, networks: Iterable[str]) -> None:
        self._networks: list[_Network] = [ipaddress.ip_network(n, strict=False) for n in networks]

    def trusts(self, address: str) -> bool:
        if not self._networks:
            return False
        ip = _ip(address)
        return ip is not None and any(ip in network for network in self._networks)

    def client(self, peer: str, forwarded_for: list[str]) -> str:
        """The client address: the peer's, or the nearest untrusted hop it forwarded for."""
        if not self.trusts(peer):
            return peer
        client = peer
        for hop in reversed([h for value in forwarded_for for h in value.split(",")]):
            ip = _ip(hop)
            if ip is None:  # garbage left of the last trusted hop: stop at what we know
                break
            client = str(ip)
            if not self.trusts(client):
                break
        return client


class ForwardedHeaders:
    """ASGI middleware: set ``scope["client"]`` and ``scope["scheme"]`` from a trusted proxy's
    headers (every later layer, the throttle and the cookie flags included, reads those)."""

    def __init__(self, app: ASGIApp, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            peer = scope.get("client")
            if peer and self.proxies.trusts(peer[0]):
                forwarded: list[str] = []
                proto = ""
                for name, value in scope.get("headers", []):
                    if name == b"x-forwarded-for":
                        forwarded.append(value.decode("latin-1"))
                    elif name == b"x-forwarded-proto":
                        proto = value.decode("latin-1").split(",")[-1].strip().lower()
                scope = dict(scope)
                scope["client"] = (self.proxies.client(peer[0], forwarded), 0)
                if proto in ("http", "https"):
                    secure = proto == "https"
                    if scope["type"] == "websocket":
                        scope["scheme"] = "wss" if secure else "ws"
                    else:
                        scope["scheme"] = proto
        await self.app(scope, receive, send)
