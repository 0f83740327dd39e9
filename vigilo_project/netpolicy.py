"""Where workers may connect: the network policy of every outgoing call (agent targets, model providers).

A policy is one of:
- `"allow-all"`: any destination but link-local and cloud metadata addresses;
- `"deny-all"`: none;
- `{"allow": [entries]}`: what an entry admits. An entry is a host name (`api.openai.com`), a wildcard
  (`*.example.com`: any name under example.com, not example.com itself), an IP address (`10.1.2.3`, `::1`) or a
  CIDR (`10.0.0.0/8`, `fd00::/8`), each optionally with one port (`api.openai.com:443`, `[::1]:8080`,
  `10.0.0.0/8:8443`; without one, any port).

It is decided on what the name resolved to, and every address must pass:
- a cloud metadata address (`METADATA_ADDRESSES`) only by an entry naming that very address, or by an entry
  naming the metadata host name being called (`METADATA_NAMES`, which are refused before any lookup otherwise);
- another link-local address (169.254.0.0/16, fe80::/10) only by an IP or CIDR entry inside those ranges;
- any other address: under allow-all always; under a list, by an IP or CIDR entry containing it, or by a name
  entry matching the host, a wildcard for public addresses only (whoever controls names under a domain should
  not be able to point one at a private address).

The default policy is a list made from the URLs a caller is configured with (the model providers, the run's
target), whose entries never admit link-local or metadata addresses. Plain Python, no Django and no I/O: the
caller resolves the name (vigilo_project/httpjson.py) and connects to an address that passed.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_ALL = "allow-all"
DENY_ALL = "deny-all"
DEFAULT = "default"
MAX_ENTRIES = 1000
LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
# AWS, GCP, Azure and Oracle use 169.254.169.254; AWS's IPv6 endpoint is fd00:ec2::254; Alibaba's is 100.100.100.200.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200"))
METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.goog"})
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_IP_LIKE = re.compile(r"^[0-9.]+(?:/[0-9]+)?$|:")


class PolicyInvalid(ValueError):
    """A policy value that is wrong; `problems` are (where, message), `where` relative to the value
    (`""`, `".allow"`, `".allow[2]"`)."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{source}{where}: {message}" for where, message in problems))
        self.problems = problems


class Policy(Protocol):
    """What httpjson asks before it connects."""

    def refusal_before_dns(self, host: str, port: int) -> str | None: ...

    def decide(self, host: str, port: int, addresses: Sequence[IPAddress]) -> str | None: ...


@dataclass(frozen=True)
class Entry:
    text: str  # canonical: lower-case name, compressed address, `[v6]:port`
    port: int | None = None
    name: str | None = None  # the exact name, or what a wildcard's names end with (without the dot)
    wildcard: bool = False
    network: IPNetwork | None = None
    explicit: bool = True  # False: made by the default policy from a configured URL

    def names(self, host: str) -> bool:
        if self.name is None:
            return False
        return host.endswith(f".{self.name}") if self.wildcard else host == self.name

    def admits(self, host: str, ip: IPAddress, kind: str) -> bool:
        if self.network is not None:
            if ip.version != self.network.version or ip not in self.network:
                return False
            if kind == "cloud metadata":
                return self.explicit and self.network.num_addresses == 1
            if kind == "link-local":
                return self.explicit and any(
                    self.network.version == ll.version and self.network.subnet_of(ll)  # type: ignore[arg-type]
                    for ll in LINK_LOCAL
                )
            return True
        if not self.names(host):
            return False
        if kind in ("cloud metadata", "link-local"):
            return self.explicit and not self.wildcard and host in METADATA_NAMES
        return kind == "public" or not self.wildcard


@dataclass(frozen=True)
class NetworkPolicy:
    """One policy: `mode` is allow-all, deny-all or a list of `entries`; `source` names it in refusals
    ("VIGILO_NETWORK_POLICY", "target.network")."""

    mode: str
    entries: tuple[Entry, ...] = ()
    source: str = "the network policy"

    def as_value(self) -> str | dict[str, list[str]]:
        """The policy as a setting or a target field writes it, entries in canonical form."""
        return self.mode if self.mode != "list" else {"allow": [e.text for e in self.entries]}

    def refusal_before_dns(self, host: str, port: int) -> str | None:
        """Why a call to host:port is refused whatever the name resolves to; None when the answer decides.
        An IP literal is decided here entirely."""
        host = host_normalized(host)
        literal = _literal(host)
        if self.mode == DENY_ALL:
            return f"network policy refused {_with_port(host, port)}: {self.source} refuses every call (deny-all)"
        if literal is not None:
            return self._address_refusal(host, port, literal, literal=True)
        if host in METADATA_NAMES and not any(
            e.explicit and not e.wildcard and e.names(host) and _port_ok(e, port) for e in self.entries
        ):
            return (
                f"network policy refused {host} (a cloud metadata name): cloud metadata is refused unless an entry "
                f"names it ({self.source})"
            )
        if self.mode == "list" and not any(e.network is not None for e in self.entries):
            if not any(e.names(host) for e in self.entries):
                return f"network policy refused {host}: not allowed by {self.source}"
            if not any(e.names(host) and _port_ok(e, port) for e in self.entries):
                return f"network policy refused {host}: {self.source} {self._ports_allowed(host)}"
        return None

    def decide(self, host: str, port: int, addresses: Sequence[IPAddress]) -> str | None:
        """None when a call to host:port may go to every one of `addresses` (what the name resolved to);
        otherwise why not, for the user."""
        host = host_normalized(host)
        refusal = self.refusal_before_dns(host, port)
        if refusal is not None or _literal(host) is not None:
            return refusal
        for ip in addresses:
            refusal = self._address_refusal(host, port, ip, literal=False)
            if refusal is not None:
                return refusal
        return None

    def _address_refusal(self, host: str, port: int, ip: IPAddress, *, literal: bool) -> str | None:
        ip = unmapped(ip)
        kind = address_kind(ip)
        special = kind in ("cloud metadata", "link-local")
        if self.mode == ALLOW_ALL and not special:
            return None
        usable = [e for e in self.entries if _port_ok(e, port)]
        if self.mode == "list" and any(e.admits(host, ip, kind) for e in usable):
            return None
        what = f"network policy refused {ip} ({kind} address{'' if literal else f' of {host}'})"
        if kind == "cloud metadata":
            return f"{what}: cloud metadata addresses are refused unless an entry names them ({self.source})"
        if kind == "link-local":
            return f"{what}: link-local addresses are refused unless an IP or CIDR entry names them ({self.source})"
        wildcards = [e.text for e in usable if e.wildcard and e.names(host)]
        if wildcards:
            return (
                f"{what}: {wildcards[0]} admits public addresses only; add an IP or CIDR entry for it ({self.source})"
            )
        if any(e.admits(host, ip, kind) for e in self.entries):
            return f"{what}: {self.source} {self._ports_allowed(host, ip, kind)}"
        return f"{what}: not allowed by {self.source}"

    def _ports_allowed(self, host: str, ip: IPAddress | None = None, kind: str = "public") -> str:
        ports = sorted(
            {
                e.port
                for e in self.entries
                if e.port is not None and (e.names(host) if ip is None else e.admits(host, ip, kind))
            }
        )
        return f"allows it on port {', '.join(str(p) for p in ports)} only"


@dataclass(frozen=True)
class AllOf:
    """A call must pass every one of `policies` (the workers' policy, narrowed by a target's own)."""

    policies: tuple[Policy, ...]

    def refusal_before_dns(self, host: str, port: int) -> str | None:
        return next((r for p in self.policies if (r := p.refusal_before_dns(host, port)) is not None), None)

    def decide(self, host: str, port: int, addresses: Sequence[IPAddress]) -> str | None:
        return next((r for p in self.policies if (r := p.decide(host, port, addresses)) is not None), None)


def host_normalized(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()


def unmapped(ip: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address it reaches; a zone is dropped."""
    if isinstance(ip, ipaddress.IPv4Address):
        return ip
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ipaddress.IPv6Address(int(ip)) if ip.scope_id else ip  # fe80::1%eth0 is fe80::1 on eth0


def address_kind(ip: IPAddress) -> str:
    """cloud metadata, link-local, loopback, private (any other address that is not public: RFC 1918, unique
    local, shared, unspecified, reserved, multicast) or public."""
    ip = unmapped(ip)
    if ip in METADATA_ADDRESSES:
        return "cloud metadata"
    if any(ip.version == net.version and ip in net for net in LINK_LOCAL):
        return "link-local"
    if ip.is_loopback:
        return "loopback"
    if not ip.is_global or ip.is_multicast:
        return "private"
    return "public"


def entry_parse(raw: Any, *, explicit: bool = True) -> Entry:
    """One allow entry; ValueError saying what is wrong with it."""
    if not isinstance(raw, str) or not raw or len(raw) > 300 or not (raw.isascii() and raw.isprintable()) or " " in raw:
        raise ValueError("must be a host name, IP address or CIDR, optionally with :port (printable ASCII)")
    host, port = raw, None
    if raw.startswith("["):
        host, sep, rest = raw[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{raw!r}: write an IPv6 address with a port as [address]:port")
        port = _port(rest[1:], raw) if rest else None
    elif raw.count(":") == 1:
        host, _, rest = raw.partition(":")
        port = _port(rest, raw)
    if _IP_LIKE.search(host):
        try:
            network = ipaddress.ip_network(host)
        except ValueError as exc:
            hint = " (host bits set)" if "host bits" in str(exc) else ""
            raise ValueError(f"{raw!r} is not an IP address or CIDR{hint}") from None
        address = str(network.network_address) if network.num_addresses == 1 else str(network)
        return Entry(text=_with_port(address, port), port=port, network=network, explicit=explicit)
    name = host.rstrip(".").lower()
    wildcard = name.startswith("*.")
    labels = (name[2:] if wildcard else name).split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        raise ValueError(f"{raw!r} is not a host name, a *.domain wildcard, an IP address or a CIDR")
    name = name[2:] if wildcard else name
    return Entry(
        text=_with_port(host.rstrip(".").lower(), port), port=port, name=name, wildcard=wildcard, explicit=explicit
    )


def policy_parse(value: Any, *, source: str) -> NetworkPolicy:
    """`"allow-all"`, `"deny-all"` or `{"allow": [entries]}`; PolicyInvalid naming every wrong part."""
    if value in (ALLOW_ALL, DENY_ALL):
        return NetworkPolicy(mode=value, source=source)
    if not isinstance(value, dict):
        raise PolicyInvalid(source, [("", 'must be "allow-all", "deny-all" or {"allow": [host, IP or CIDR, ...]}')])
    problems = [(f".{key}", "unknown key (only 'allow')") for key in sorted(set(value) - {"allow"}, key=str)]
    allow = value.get("allow")
    entries: list[Entry] = []
    if not isinstance(allow, list) or len(allow) > MAX_ENTRIES:
        problems.append(
            (".allow", f"required: a list of at most {MAX_ENTRIES} host names, IPs or CIDRs, each optionally :port")
        )
    else:
        for i, item in enumerate(allow):
            try:
                entries.append(entry_parse(item))
            except ValueError as exc:
                problems.append((f".allow[{i}]", str(exc)))
    if problems:
        raise PolicyInvalid(source, problems)
    return NetworkPolicy(mode="list", entries=tuple(entries), source=source)


def policy_configured(urls: Iterable[str], *, source: str) -> NetworkPolicy:
    """The default policy: exactly the host and port of each of `urls`, never a link-local or metadata address."""
    entries = []
    for url in urls:  # the callers checked them: built directly, whatever a host name looks like
        host, port = url_host_port(url)
        literal = _literal(host)
        if literal is None:
            entries.append(Entry(text=_with_port(host, port), port=port, name=host, explicit=False))
        else:
            network = ipaddress.ip_network(unmapped(literal))
            entries.append(
                Entry(text=_with_port(str(unmapped(literal)), port), port=port, network=network, explicit=False)
            )
    return NetworkPolicy(mode="list", entries=tuple(entries), source=source)


def policy_resolve(value: Any, *, source: str, configured: Iterable[str]) -> NetworkPolicy:
    """A setting's policy: `"default"` is `policy_configured(configured)`, anything else `policy_parse`."""
    if value == DEFAULT:
        return policy_configured(configured, source=f"{source}={DEFAULT}")
    return policy_parse(value, source=source)


def policy_setting(text: str, *, source: str) -> str | dict[str, list[str]]:
    """A setting's text (empty or `default`, `allow-all`, `deny-all`, or a JSON object) as the value settings keep,
    its entries in canonical form; ValueError saying what is wrong."""
    text = text.strip()
    if text in ("", DEFAULT):
        return DEFAULT
    if text in (ALLOW_ALL, DENY_ALL):
        return text
    if not text.startswith("{"):
        raise ValueError('must be "default", "allow-all", "deny-all" or a JSON object {"allow": [...]}')
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    return policy_parse(value, source=source).as_value()


def url_host_port(url: str) -> tuple[str, int]:
    """The host (normalized) and port (or the scheme's default) a URL connects to."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError(f"{url!r}: no host")
    return host_normalized(parts.hostname), parts.port or (443 if parts.scheme == "https" else 80)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _port(text: str, raw: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{raw!r}: the port must be a number from 1 to 65535")
    return int(text)


def _port_ok(entry: Entry, port: int) -> bool:
    return entry.port is None or entry.port == port


def _with_port(host: str, port: int | None) -> str:
    if port is None:
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
