"""Which addresses ragql may call as an LLM provider, checked when a model is saved and
again before every connection.

A model's base URL is chosen by an administrator, but ragql is the one that connects, from
inside its own network, carrying the model's API key. Without a policy the URL field is a
request forgery tool: it reaches cloud metadata services (whose answers include the
machine's cloud credentials), services bound to loopback, and the LAN.

The rules, in order:

- Only http:// and https://, and no user:password@ part (checked by the registry's
  validation, which also owns the wording).
- Always refused, whatever the settings: link-local addresses (169.254.0.0/16,
  fe80::/10) and the cloud metadata endpoints (169.254.169.254, fd00:ec2::254,
  100.100.100.200, 192.0.0.192, metadata.google.internal, ...), multicast, unspecified
  (0.0.0.0, ::), and reserved addresses. No provider lives there.
- Refused unless `ALLOW_PRIVATE_PROVIDER_URLS=true`: loopback (127.0.0.0/8, ::1,
  localhost), private networks (10/8, 172.16/12, 192.168/16, fc00::/7), carrier-grade
  NAT (100.64/10) and every other address that is not globally routable, and ragql's own
  HOST:PORT. Ollama on the same machine is the common case, hence the setting.

A host name is judged by every address it resolves to: if any one is refused, the URL is
refused. Names are resolved again at connection time (`checked_addresses`), and the
connection goes to an address that was checked (see gql_server.llm.guarded_http), so a
name that resolved to a public address when the model was saved and to 169.254.169.254
later (DNS rebinding) is refused at the moment it matters.

Numeric host spellings that are not the usual dotted quad (http://2130706433/,
http://0x7f.1/) are resolved by the system like names and so judged by the address they
stand for.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from gql_server.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# A resolver maps (host, port) to the IP addresses it stands for (as text).
Resolver = Callable[[str, int], Awaitable[list[str]]]

DEFAULT_PORTS = {"http": 80, "https": 443}

PRIVATE_SETTING_HINT = (
    "To use a provider on this machine or your own network (such as Ollama on "
    "http://localhost:11434), set ALLOW_PRIVATE_PROVIDER_URLS=true in ragql's environment "
    "and restart it."
)

# Cloud metadata services. Most are link-local and refused as such anyway; the others sit
# in ranges that ALLOW_PRIVATE_PROVIDER_URLS would otherwise open.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, DigitalOcean, OpenStack, ...
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.169.253",  # AWS VPC DNS
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::253",
        "fd20:ce::254",  # GCP metadata over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (legacy)
    )
)
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.platformequinix.com",
    }
)
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
# ragql listening on every interface: its own address is any address of this machine.
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})

RESOLVE_TIMEOUT_SECONDS = 5.0
# Checked answers are reused this long; a connection still only ever goes to an address
# that was checked, so caching only saves the lookups (a thread-pool hop each).
RESOLVE_CACHE_SECONDS = 5.0
_RESOLVE_CACHE_MAX = 512


class AddressRefused(Exception):
    """A provider address ragql will not connect to; the message says why and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class UrlPolicy:
    """Where providers may be called. Hashable: it is part of a provider's configuration.

    `resolver` replaces the system resolver (tests control what a name resolves to);
    None means `system_resolve`, looked up at call time.
    """

    allow_private: bool = False
    own_host: str | None = None
    own_port: int | None = None
    resolver: Resolver | None = None


STRICT_POLICY = UrlPolicy()


def policy_from_settings(settings: Settings) -> UrlPolicy:
    return _policy(settings.allow_private_provider_urls, settings.host, settings.port)


@lru_cache(maxsize=16)
def _policy(allow_private: bool, host: str, port: int) -> UrlPolicy:
    return UrlPolicy(allow_private=allow_private, own_host=host.strip().lower(), own_port=port)


# --- origins ------------------------------------------------------------------------------


def url_origin(url: str | None) -> str | None:
    """scheme://host:port of `url` (lower case, default port made explicit); None if it has none.

    This is what an API key is bound to: the same key may go to any path on that origin.
    """
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".").lower()
    if scheme not in DEFAULT_PORTS or not host:
        return None
    return origin_text(scheme, host, port or DEFAULT_PORTS[scheme])


def origin_text(scheme: str, host: str, port: int) -> str:
    host = host.rstrip(".").lower()
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme.lower()}://{shown}:{port}"


# --- classification -----------------------------------------------------------------------


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one reaches through mapping, NAT64 or 6to4, if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in network for network in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _always_refused(address: IPAddress) -> str | None:
    if address in METADATA_ADDRESSES:
        return "a cloud metadata service"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified or (isinstance(address, ipaddress.IPv4Address) and address.packed[0] == 0):
        return "the unspecified address"
    broadcast = isinstance(address, ipaddress.IPv4Address) and int(address) == 0xFFFFFFFF
    if (address.is_reserved and not address.is_loopback) or broadcast:  # ::1 lies inside reserved ::/8
        return "a reserved address"
    return None


def address_refusal(address: IPAddress | str, port: int, policy: UrlPolicy) -> str | None:
    """Why `address` may not be called under `policy` (a sentence), or None when it may."""
    if isinstance(address, str):
        address = ipaddress.ip_address(address.split("%", 1)[0])
    shown = str(address)
    if isinstance(address, ipaddress.IPv6Address) and (embedded := _embedded_ipv4(address)) is not None:
        # ::ffff:169.254.169.254 and friends reach the IPv4 address they embed.
        address = embedded
    if (what := _always_refused(address)) is not None:
        return (
            f"The base URL points at {what} ({shown}). ragql never connects there: such "
            "addresses serve the machine itself (cloud metadata can hand out its credentials), "
            "not language models."
        )
    if policy.allow_private:
        return None
    if address.is_loopback or address.is_private or not address.is_global:
        kind = "a loopback address" if address.is_loopback else "a private or non-public address"
        return f"The base URL points at {kind} ({shown}). {PRIVATE_SETTING_HINT}"
    if policy.own_port is not None and port == policy.own_port and _is_own_address(address, policy):
        return f"The base URL points at ragql itself ({shown}:{port}). {PRIVATE_SETTING_HINT}"
    return None


def _is_own_address(address: IPAddress, policy: UrlPolicy) -> bool:
    host = policy.own_host or ""
    if host not in _WILDCARD_HOSTS:
        try:
            return ipaddress.ip_address(host.strip("[]")) == address
        except ValueError:
            return False  # a host name: its addresses are this machine's, checked below
    return _is_local_address(address)


def _is_local_address(address: IPAddress) -> bool:
    """Whether `address` belongs to this machine: binding to it succeeds only then (one
    syscall, no I/O; the kernel refuses foreign addresses with EADDRNOTAVAIL)."""
    family = socket.AF_INET if isinstance(address, ipaddress.IPv4Address) else socket.AF_INET6
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((str(address), 0))
    except OSError:
        return False
    return True


def name_refusal(host: str, policy: UrlPolicy) -> str | None:
    """Refusals that follow from the name alone, before (or without) resolving it."""
    name = host.rstrip(".").lower()
    if name in METADATA_NAMES:
        return (
            f"The base URL points at a cloud metadata service ({name}). ragql never connects "
            "there: it can hand out the machine's credentials."
        )
    if not policy.allow_private and (name in LOOPBACK_NAMES or name.endswith(".localhost")):
        return f"The base URL points at this machine ({name}). {PRIVATE_SETTING_HINT}"
    return None


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


# --- resolution ---------------------------------------------------------------------------


async def system_resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (in the loop's thread pool)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


_resolved: dict[tuple[object, str, int], tuple[float, list[str]]] = {}


async def checked_addresses(host: str, port: int, policy: UrlPolicy) -> list[str]:
    """The addresses to connect to for `host`, all of them allowed by `policy`.

    Raises AddressRefused when the name or any address it resolves to is refused, and
    OSError (socket.gaierror) when it does not resolve.
    """
    if (refusal := name_refusal(host, policy)) is not None:
        raise AddressRefused(refusal)
    literal = literal_address(host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        resolver = policy.resolver or system_resolve
        key = (resolver, host.lower(), port)
        cached = _resolved.get(key)
        if cached is not None and cached[0] > time.monotonic():
            addresses = cached[1]
        else:
            addresses = await asyncio.wait_for(resolver(host, port), RESOLVE_TIMEOUT_SECONDS)
            if not addresses:
                raise socket.gaierror(socket.EAI_NONAME, f"{host} has no addresses")
            if len(_resolved) >= _RESOLVE_CACHE_MAX:
                _resolved.clear()
            _resolved[key] = (time.monotonic() + RESOLVE_CACHE_SECONDS, addresses)
    for address in addresses:
        if (refusal := address_refusal(address, port, policy)) is not None:
            if literal is None:
                refusal = refusal.replace(
                    "The base URL points at", f"The base URL's host {host} resolves to", 1
                )
            raise AddressRefused(refusal)
    return addresses


async def url_refusal(url: str, policy: UrlPolicy) -> str | None:
    """Why the provider at `url` may not be called (for createModel/updateModel), or None.

    A name that does not resolve right now is not refused here (DNS may not know a host
    being set up yet); it is checked again, and fails clearly, when ragql connects.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None  # the registry's validation reports malformed URLs
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    try:
        await checked_addresses(parts.hostname, port or DEFAULT_PORTS[scheme], policy)
    except AddressRefused as refused:
        return refused.message
    except (OSError, TimeoutError, UnicodeError):
        return None
    return None
