"""Which destination URLs a sink may use, checked once in ``config check`` and again on connect.

A webhook URL is configuration, but it decides where alerts (principal ARNs, buckets, IPs) and
the bearer token go, so it is validated like input: http or https with a host; never a
link-local or cloud metadata address (169.254.169.254 answers with the instance's own
credentials) unless the sink says ``allow_link_local``; and a token never over plain http
except to this host. Messages never quote the URL (its path or user info may be the secret).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["is_link_local", "webhook_url_problem"]

# Names the metadata services answer to, whatever they resolve to here.
_METADATA_NAMES = frozenset({"metadata", "metadata.google.internal", "instance-data", "instance-data.ec2.internal"})
_EC2_METADATA_V6 = ipaddress.ip_address("fd00:ec2::254")


def is_link_local(address: str) -> bool:
    """True for link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_link_local or ip == _EC2_METADATA_V6


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def webhook_url_problem(url: str, has_token: bool, allow_link_local: bool) -> str | None:
    """None if ``url`` is a usable webhook destination, else one sentence saying why not."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "webhook url does not parse (a bad port or bracketed host)"
    del port
    if parts.scheme not in ("http", "https"):
        return f"webhook url scheme {parts.scheme[:10]!r} is not http or https"
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return "webhook url has no host"
    if not allow_link_local and (is_link_local(host) or host in _METADATA_NAMES):
        return (
            "webhook url points at a link-local or cloud metadata address; "
            "set allow_link_local: true on this sink if that is really the receiver"
        )
    if has_token and parts.scheme == "http" and not _is_loopback(host):
        return "webhook token would be sent in clear text over http; use an https url"
    return None
