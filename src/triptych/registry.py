"""One registry for everything chosen by name: vision and video models, text
model families, video poolings.

torchvision's shape: `register` (a decorator or a call) refuses a name used
twice — two builders under one name is a bug, found at import; `get(name)`
answers an unknown name with a `UserError` that lists the allowed ones;
`list(pattern)` filters by glob, in registration order; each entry can carry
metadata (a parameter count, a family) that commands print and tests check.
"""

from __future__ import annotations

import fnmatch
from typing import Callable, Generic, Iterator, TypeVar

from triptych.errors import UserError

T = TypeVar("T")


class UnknownName(UserError, ValueError):
    """A name no entry was registered under (a `UserError` for the commands, a
    `ValueError` for library callers that pass a bad argument)."""


class Registry(Generic[T]):
    """Entries of one kind by name. `kind` names them in messages ("vision model");
    `key` is the config key that picks one, when there is one ("model.name")."""

    def __init__(self, kind: str, key: str | None = None):
        self.kind, self.key = kind, key
        self._entries: dict[str, T] = {}
        self._meta: dict[str, dict] = {}

    def register(self, name: str, entry: T | None = None, **meta) -> Callable[[T], T] | T:
        """`register(name, entry, **meta)`, or `@register(name, **meta)` over the entry."""
        def add(item: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered (a name registered twice)")
            self._entries[name], self._meta[name] = item, dict(meta)
            return item

        return add if entry is None else add(entry)

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            where = f"{self.key}: " if self.key else ""
            raise UnknownName(f"{where}unknown {self.kind} {name!r} (known: {', '.join(self._entries)})") from None

    def meta(self, name: str) -> dict:
        """The metadata registered with `name` (after checking the name)."""
        self.get(name)
        return self._meta[name]

    def list(self, pattern: str | None = None) -> list[str]:
        """Names in registration order, filtered by a glob (`resnet*`) when given."""
        return [n for n in self._entries if not pattern or fnmatch.fnmatchcase(n, pattern)]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
