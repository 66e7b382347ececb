"""
Keep secrets out of files, logs and displays: the redaction policy for URLs and headers.

A WebSocket URL often carries a credential (``wss://feed.example/?token=...``)
and a handshake an ``Authorization`` or ``Cookie`` header. Wherever nbws
writes or shows a URL or a header, it applies the current :class:`Policy`
first: the Recorder's JSON lines and HAR files (``url``, ``queryString``),
the Logger's records and file, the ``nbws`` logger and websockets' DEBUG
lines of each handshake (through :class:`LogFilter`), error messages and
events, ``repr()`` of endpoints, the MessageLog rows and the client panel's
URL field, and so a notebook's saved outputs. The endpoints themselves keep
the real URL: only what is written or shown is redacted::

    >>> nbws.redact.url("wss://feed.example/live?token=s3cret&room=1")
    'wss://feed.example/live?token=REDACTED&room=1'
    >>> nbws.redact.header("Authorization", "Bearer s3cret")
    'Bearer REDACTED'

It is on by default. Change it for the whole process with :func:`configure`
(``nbws.redact.configure(secret_params=nbws.redact.DEFAULT_PARAMS | {"session"})``, or
``enabled=False`` to see everything while debugging), or use a
:class:`Policy` of your own in a plugin.

What it redacts: the values of query parameters named in
``secret_params`` (names compared case-insensitively, after
percent-decoding), the password of a ``user:password@`` URL, the values of
headers named in ``secret_headers`` (keeping an ``Authorization`` scheme and
cookie names, which help debugging), and in free text every ``ws://``,
``wss://``, ``http://`` and ``https://`` URL, ``Bearer <credentials>`` and
``Authorization: <scheme> <credentials>``. Message payloads are data, not
metadata: they are recorded as they are.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import unquote_plus

__all__ = [
    "DEFAULT_HEADERS",
    "DEFAULT_PARAMS",
    "MASK",
    "LogFilter",
    "Policy",
    "configure",
    "get_policy",
    "header",
    "headers",
    "query",
    "set_policy",
    "text",
    "url",
]

DEFAULT_PARAMS: frozenset[str] = frozenset(
    {
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "auth",
        "api_key",
        "apikey",
        "api-key",
        "key",
        "password",
        "passwd",
        "pwd",
        "secret",
        "client_secret",
        "signature",
        "sig",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
    }
)
"""Query parameters whose values are secrets by default (compared case-insensitively)."""

DEFAULT_HEADERS: frozenset[str] = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token"}
)
"""Headers whose values are secrets by default (compared case-insensitively)."""

MASK = "REDACTED"
"""What replaces a secret by default (it needs no percent-encoding in a URL)."""

_URL_IN_TEXT = re.compile(r"\b(?:wss?|https?)://[^\s'\"<>`]+", re.IGNORECASE)
# "Authorization: <scheme> <credentials>" in any case, and "Bearer <credentials>" as RFC 6750 writes it
# (not "bearer tokens" in prose: credentials are at least 8 characters).
_CREDENTIALS_IN_TEXT = re.compile(
    r"(?:(?i:\b(?:proxy-)?authorization)\s*[:=]\s*[A-Za-z-]+|\bBearer)(\s+)[A-Za-z0-9._~+/=-]{8,}"
)
_AUTHORIZATION = frozenset({"authorization", "proxy-authorization"})


def _names(value: Iterable[str], what: str) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError(f"{what} must be a collection of names such as {{'token', 'key'}}, not {value!r}")
    names = []
    for name in value:
        if not isinstance(name, str) or not name:
            raise TypeError(f"{what} must hold non-empty str names, not {name!r}")
        names.append(name.lower())
    return frozenset(names)


@dataclass(frozen=True)
class Policy:
    """
    What to redact and how: query parameters, headers and the mask.

    Args:
        enabled: False to redact nothing.
        secret_params: Names of query parameters whose values are secret.
        secret_headers: Names of headers whose values are secret.
        mask: What replaces a secret.

    Raises:
        TypeError: for names that are not a collection of non-empty strings.
        ValueError: for an empty mask, or one that would need percent-encoding in a URL.
    """

    enabled: bool = True
    secret_params: frozenset[str] = field(default=DEFAULT_PARAMS)
    secret_headers: frozenset[str] = field(default=DEFAULT_HEADERS)
    mask: str = MASK

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise TypeError(f"enabled must be True or False, not {self.enabled!r}")
        object.__setattr__(self, "secret_params", _names(self.secret_params, "secret_params"))
        object.__setattr__(self, "secret_headers", _names(self.secret_headers, "secret_headers"))
        if not isinstance(self.mask, str) or not re.fullmatch(r"[A-Za-z0-9._~*-]+", self.mask):
            raise ValueError(f"mask must be letters, digits or ._~*- (it goes into URLs), not {self.mask!r}")

    # -- URLs -----------------------------------------------------------------------

    def url(self, url: str) -> str:
        """``url`` with the values of secret query parameters and any ``user:password@`` password masked."""
        if not self.enabled or not url:
            return url
        rest, hash_, fragment = url.partition("#")
        rest, question, query = rest.partition("?")
        scheme, sep, after = rest.partition("://")
        if sep:
            authority, slash, path = after.partition("/")
            userinfo, at, host = authority.rpartition("@")
            if at and ":" in userinfo:
                user = userinfo.split(":", 1)[0]
                authority = f"{user}:{self.mask}@{host}"
            rest = f"{scheme}{sep}{authority}{slash}{path}"
        if question:
            query = self._query_string(query)
        if hash_:
            fragment = self._query_string(fragment) if "=" in fragment else fragment
        return f"{rest}{question}{query}{hash_}{fragment}"

    def _query_string(self, query: str) -> str:
        parts = query.split("&")
        for index, part in enumerate(parts):
            name, equals, _ = part.partition("=")
            if equals and self._secret_param(name):
                parts[index] = f"{name}={self.mask}"
        return "&".join(parts)

    def _secret_param(self, name: str) -> bool:
        return unquote_plus(name).strip().lower() in self.secret_params

    def query(self, pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Decoded ``(name, value)`` query pairs, with the values of secret parameters masked."""
        if not self.enabled:
            return list(pairs)
        return [(name, self.mask if name.strip().lower() in self.secret_params else value) for name, value in pairs]

    # -- headers ----------------------------------------------------------------------

    def header(self, name: str, value: str) -> str:
        """The value of header ``name`` as it may be shown: masked if the header is secret."""
        lowered = name.lower()
        if not self.enabled or lowered not in self.secret_headers:
            return value
        if lowered in _AUTHORIZATION:
            scheme, space, credentials = value.strip().partition(" ")
            return f"{scheme} {self.mask}" if space and credentials.strip() else self.mask
        if lowered == "cookie":
            return "; ".join(
                f"{cookie.partition('=')[0].strip()}={self.mask}" for cookie in value.split(";") if cookie.strip()
            )
        if lowered == "set-cookie":
            cookie, semicolon, attributes = value.partition(";")
            return f"{cookie.partition('=')[0].strip()}={self.mask}{semicolon}{attributes}"
        return self.mask

    def headers(self, items: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """``(name, value)`` pairs of headers (a mapping or pairs) with secret values masked."""
        pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
        return [(name, self.header(name, value)) for name, value in pairs]

    # -- free text ----------------------------------------------------------------------

    def text(self, text: str) -> str:
        """``text`` (an error message, a log line) with each URL in it redacted and credentials masked."""
        if not self.enabled or not text:
            return text
        text = _URL_IN_TEXT.sub(lambda match: self.url(match.group(0)), text)
        return _CREDENTIALS_IN_TEXT.sub(
            lambda match: match.group(0)[: match.start(1) - match.start(0)] + match.group(1) + self.mask, text
        )


_lock = threading.Lock()
_policy = Policy()


def get_policy() -> Policy:
    """The policy nbws applies now."""
    return _policy


def set_policy(policy: Policy) -> Policy:
    """Make ``policy`` the one nbws applies everywhere; return the previous one (to restore it)."""
    global _policy
    if not isinstance(policy, Policy):
        raise TypeError(f"set_policy() takes an nbws.redact.Policy, not {type(policy).__name__}")
    with _lock:
        previous, _policy = _policy, policy
    return previous


def configure(
    *,
    enabled: bool | None = None,
    secret_params: Iterable[str] | None = None,
    secret_headers: Iterable[str] | None = None,
    mask: str | None = None,
) -> Policy:
    """
    Change the policy nbws applies everywhere; what is not given stays as it is. Return the new policy.

    ``secret_params`` and ``secret_headers`` replace the lists: extend the
    defaults with ``DEFAULT_PARAMS | {"session"}``. ``enabled=False`` turns
    redaction off.
    """
    changes: dict[str, object] = {}
    if enabled is not None:
        changes["enabled"] = enabled
    if secret_params is not None:
        changes["secret_params"] = secret_params
    if secret_headers is not None:
        changes["secret_headers"] = secret_headers
    if mask is not None:
        changes["mask"] = mask
    policy = replace(get_policy(), **changes)  # type: ignore[arg-type]
    set_policy(policy)
    return policy


class LogFilter(logging.Filter):
    """
    A :mod:`logging` filter that redacts records with the current policy; it never drops one.

    nbws puts one on the ``nbws`` logger and on websockets' ``websockets.client``
    and ``websockets.server`` loggers, whose DEBUG lines show each handshake's
    request line and headers (``> GET /?token=... HTTP/1.1``, ``> Authorization:
    Bearer ...``). Add it to a handler of yours to redact what other libraries log::

        handler.addFilter(nbws.redact.LogFilter())
    """

    def filter(self, record: logging.LogRecord) -> bool:
        policy = _policy
        if not policy.enabled:
            return True
        msg, args = record.msg, record.args
        if isinstance(msg, str) and isinstance(args, tuple):
            strings = [arg for arg in args if isinstance(arg, str)]
            if len(strings) == len(args) == 2 and msg.endswith("%s: %s"):
                # websockets logs each handshake header as "> Name: value".
                record.args = (strings[0], policy.header(strings[0], strings[1]))
                return True
            # A request target ("/feed?token=...", in websockets' "< GET %s HTTP/1.1") or a URL.
            record.args = tuple(
                policy.url(arg) if isinstance(arg, str) and ("?" in arg or "://" in arg) else arg for arg in args
            )
        try:
            message = record.getMessage()
        except Exception:
            return True  # logging reports the bad record itself
        redacted = policy.text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_log_filter = LogFilter()
for _name in ("nbws", "websockets.client", "websockets.server"):
    logging.getLogger(_name).addFilter(_log_filter)


def url(value: str) -> str:
    """Redact a URL with the current policy (see :meth:`Policy.url`)."""
    return _policy.url(value)


def query(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Redact decoded query pairs with the current policy (see :meth:`Policy.query`)."""
    return _policy.query(pairs)


def header(name: str, value: str) -> str:
    """Redact one header's value with the current policy (see :meth:`Policy.header`)."""
    return _policy.header(name, value)


def headers(items: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Redact headers with the current policy (see :meth:`Policy.headers`)."""
    return _policy.headers(items)


def text(value: str) -> str:
    """Redact the URLs and credentials in free text with the current policy (see :meth:`Policy.text`)."""
    return _policy.text(value)
