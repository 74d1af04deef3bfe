"""Metadata that DataFrames share instead of copying.

pandas deep-copies a frame's ``attrs`` in every operation that derives a frame from it
(``__finalize__``); the engine's coverage and value-check dicts made that 16 % of a dashboard
refresh. A :class:`Shared` mapping is handed on as it is: it is read-only.
"""

from __future__ import annotations

from typing import Any, NoReturn


class Shared(dict):  # type: ignore[type-arg]
    """A read-only dict that ``copy.deepcopy`` (and pandas' ``attrs`` propagation) shares."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Shared:
        return self

    def __copy__(self) -> Shared:
        return self

    def __reduce__(self) -> tuple[type, tuple[dict[Any, Any]]]:  # pickles as a plain dict's items
        return Shared, (dict(self),)

    def _read_only(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("frame metadata is read-only: change a copy, dict(frame.attrs[...])")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = __ior__ = _read_only  # type: ignore[assignment]
