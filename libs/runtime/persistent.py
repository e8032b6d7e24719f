"""``PMap``: an immutable mapping whose ``set`` shares almost everything with the old one.

An aggregate's ``evolve(state, event) -> state`` must not change ``state``. With
a plain dict that means copying the whole map for each event, and folding a
stream of n events costs n². ``PMap.set`` copies two 64-slot tuples and one
small bucket (the keys whose hash falls in it: 1/4096 of them), so a change costs
about the same at ten keys as at a million.

Iteration order follows the keys' hashes, not insertion: sort when order matters.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

_BITS = 6
_WIDTH = 1 << _BITS
_MASK = _WIDTH - 1
_EMPTY_INNER: tuple[dict[Any, Any] | None, ...] = (None,) * _WIDTH
_EMPTY_ROOT: tuple[tuple[dict[Any, Any] | None, ...], ...] = (_EMPTY_INNER,) * _WIDTH


class PMap(Mapping[K, V], Generic[K, V]):
    """An immutable mapping; ``set`` and ``without`` return a new one (see module doc)."""

    __slots__ = ("_len", "_root")

    def __init__(self, items: Mapping[K, V] | Iterable[tuple[K, V]] = ()) -> None:
        self._root = _EMPTY_ROOT
        self._len = 0
        pairs = items.items() if isinstance(items, Mapping) else items
        if pairs:
            root = [list(inner) for inner in _EMPTY_ROOT]
            for key, value in pairs:
                h = hash(key)
                slot = root[h & _MASK]
                leaf = slot[(h >> _BITS) & _MASK]
                if leaf is None:
                    leaf = slot[(h >> _BITS) & _MASK] = {}
                leaf[key] = value
            self._root = tuple(tuple(inner) if any(inner) else _EMPTY_INNER for inner in root)
            self._len = sum(len(leaf) for inner in self._root for leaf in inner if leaf)

    def _leaf(self, key: object) -> dict[Any, Any] | None:
        h = hash(key)
        return self._root[h & _MASK][(h >> _BITS) & _MASK]

    def __getitem__(self, key: K) -> V:
        leaf = self._leaf(key)
        if leaf is None:
            raise KeyError(key)
        return leaf[key]

    def __contains__(self, key: object) -> bool:
        leaf = self._leaf(key)
        return leaf is not None and key in leaf

    def get(self, key: K, default: Any = None) -> Any:
        leaf = self._leaf(key)
        return default if leaf is None else leaf.get(key, default)

    def __iter__(self) -> Iterator[K]:
        for inner in self._root:
            if inner is not _EMPTY_INNER:
                for leaf in filter(None, inner):  # skips the empty slots in C, not one by one
                    yield from leaf

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        return f"PMap({dict(self.items())!r})"

    def _with_leaf(self, key: object, leaf: dict[Any, Any] | None, size: int) -> PMap[K, V]:
        h = hash(key)
        i, j = h & _MASK, (h >> _BITS) & _MASK
        inner = list(self._root[i])
        inner[j] = leaf or None
        root = list(self._root)
        root[i] = tuple(inner)
        new: PMap[K, V] = PMap.__new__(PMap)
        new._root, new._len = tuple(root), size
        return new

    def set(self, key: K, value: V) -> PMap[K, V]:
        """A map equal to this one with ``key`` bound to ``value``."""
        old = self._leaf(key)
        leaf = dict(old) if old else {}
        size = self._len if key in leaf else self._len + 1
        leaf[key] = value
        return self._with_leaf(key, leaf, size)

    def without(self, key: K) -> PMap[K, V]:
        """A map equal to this one without ``key`` (the same map if it has none)."""
        old = self._leaf(key)
        if not old or key not in old:
            return self
        leaf = dict(old)
        del leaf[key]
        return self._with_leaf(key, leaf, self._len - 1)
