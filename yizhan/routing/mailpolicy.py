"""The email package's policies Yizhan reads and writes mail with, each header parsed once.

``MAIL``, ``WIRE`` and ``WIRE_UTF8`` behave as ``email.policy.default``, ``SMTP`` and
``SMTPUTF8`` do, and write the same bytes; they differ in their header factory
(:class:`HeaderCache`). The standard one parses a header again at every ``get()`` of a parsed
message (``get_content_type()`` is a ``get()``; the parser, the generator, the signing and the
reading of a command's text call it a score of times for one answer), and makes a new class
for every header it parses. Profiled, that was a third of the CPU of answering a command
(docs/perf.md, issue 16).
"""

from __future__ import annotations

import threading
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import EmailPolicy
from typing import TYPE_CHECKING, Any, Final

__all__ = ["MAIL", "WIRE", "WIRE_UTF8", "CachingPolicy", "HeaderCache"]


class HeaderCache(HeaderRegistry):
    """A header factory that keeps the header objects it made, by name and value.

    A header object is an immutable string with its parse tree, so one object serves every
    message with that header: the parse of ``Content-Type: text/plain; charset=utf-8`` is
    made once per process, not once per ``get()``. The newest are kept, up to ``max_entries``
    headers and ``max_chars`` characters of values in all (a Message-ID is seen once or twice
    and then never again): a parse tree takes some 150 to 450 bytes a character of its value,
    so 512 Message-IDs hold about 3 MiB. Values longer than ``max_value`` and values that are
    not plain strings (an ``email.header.Header``) are parsed each time. Thread-safe: the
    processor and the gateway parse in threads.
    """

    def __init__(
        self, max_entries: int = 512, max_chars: int = 50_000, max_value: int = 2_000
    ) -> None:
        super().__init__()
        self.max_entries = max_entries
        self.max_chars = max_chars
        self.max_value = max_value
        self._classes: dict[str, type[BaseHeader]] = {}
        self._made: dict[tuple[str, str], BaseHeader] = {}
        self._chars = 0
        self._folds: dict[tuple[int, str, int | None, bool], tuple[BaseHeader, str]] = {}
        self._lock = threading.Lock()

    def map_to_type(self, name: str, cls: type[BaseHeader]) -> None:
        """See ``HeaderRegistry``; what was made under the old type is forgotten."""
        with self._lock:
            super().map_to_type(name, cls)
            self._classes.clear()
            self._made.clear()
            self._chars = 0
            self._folds.clear()

    def __getitem__(self, name: str) -> type[BaseHeader]:
        # The standard registry makes a new class at every call.
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super().__getitem__(name)
        return cls

    def fold(self, header: BaseHeader, policy: EmailPolicy[Any]) -> str:
        """``header.fold(policy=policy)``, made once per header object and kind of line.

        A folded header depends on the header and on the policy's line end, line length and
        whether it may write UTF-8, nothing else. Each entry holds its header, so the id in
        its key is not reused while the entry is kept.
        """
        key = (id(header), policy.linesep, policy.max_line_length, policy.utf8)
        found = self._folds.get(key)
        if found is not None and found[0] is header:
            return found[1]
        folded: str = header.fold(policy=policy)
        with self._lock:
            self._folds[key] = (header, folded)
            while len(self._folds) > self.max_entries:
                del self._folds[next(iter(self._folds))]
        return folded

    def __call__(self, name: str, value: Any) -> BaseHeader:
        if type(value) is not str or len(value) > self.max_value:
            return self[name](name, value)
        key = (name, value)
        found = self._made.get(key)
        if found is not None:
            return found
        made = self[name](name, value)
        with self._lock:
            if key not in self._made:
                self._made[key] = made
                self._chars += len(value)
            while len(self._made) > self.max_entries or self._chars > self.max_chars:
                # The oldest goes first (dicts keep their insertion order).
                oldest = next(iter(self._made))
                del self._made[oldest]
                self._chars -= len(oldest[1])
        return made


# EmailPolicy is generic to the type checker only.
if TYPE_CHECKING:
    _EmailPolicy = EmailPolicy[EmailMessage]
else:
    _EmailPolicy = EmailPolicy


class CachingPolicy(_EmailPolicy):
    """``EmailPolicy`` whose headers are written with their factory's :meth:`HeaderCache.fold`:
    an answer's From, Subject and Content-Type are folded once, not at every message."""

    def fold(self, name: str, value: str) -> str:
        """See ``EmailPolicy.fold``."""
        factory = self.header_factory
        if isinstance(value, BaseHeader) and isinstance(factory, HeaderCache):
            return factory.fold(value, self)
        folded: str = super().fold(name, value)
        return folded

    def fold_binary(self, name: str, value: str) -> bytes:
        """See ``EmailPolicy.fold_binary``: a header object is folded alike whatever its
        transfer encoding."""
        factory = self.header_factory
        if isinstance(value, BaseHeader) and isinstance(factory, HeaderCache):
            folded = factory.fold(value, self)
            return folded.encode("utf8" if self.utf8 else "ascii", "surrogateescape")
        written: bytes = super().fold_binary(name, value)
        return written


#: As ``email.policy.default``: parsing and building messages.
MAIL: Final = CachingPolicy(header_factory=HeaderCache())
#: As ``email.policy.SMTP`` (CRLF): what goes on the wire and is signed. Clones share the
#: header factory.
WIRE: Final = MAIL.clone(linesep="\r\n")
#: As ``email.policy.SMTPUTF8``: an address whose mailbox is not ASCII (RFC 6532).
WIRE_UTF8: Final = WIRE.clone(utf8=True)
