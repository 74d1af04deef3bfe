"""Safe YAML reading that remembers line numbers and refuses duplicate keys and tags.

Plans come from users, so the reader is defensive: explicit tags (``!!python/...``,
``!!binary``, even ``!!str``) are refused before anything is constructed, and the document
is bounded in size, nesting depth and alias expansion ("billion laughs"), so hostile text
fails quickly with a :class:`~kpinb.errors.PlanError` instead of hanging or exhausting memory.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from kpinb.errors import PlanError, where

Loc = tuple[str | int, ...]

MAX_BYTES = 5 * 2**20  # a plan file (DESIGN.md: 5 MB); real plans and catalog files are a few kB
MAX_CHARS = 1_000_000  # characters once decoded: parsing is what takes time
MAX_DEPTH = 32  # real files nest 5 levels
MAX_NODES = 100_000  # values after expanding aliases; real files have a few hundred

_MERGE_TAG = "tag:yaml.org,2002:merge"
_KIND = {"tag:yaml.org,2002:timestamp": "date", "tag:yaml.org,2002:int": "number", "tag:yaml.org,2002:float": "number"}


class _Refused(yaml.MarkedYAMLError):
    """A YAML construct kpinb refuses, with its own fix (not a syntax error)."""

    def __init__(self, problem: str, mark: yaml.Mark | None, field: str = "", fix: str = "") -> None:
        super().__init__(problem=problem, problem_mark=mark)
        self.field, self.fix = field, fix


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses tags, deep nesting, duplicate keys and merge keys.

    PyYAML silently keeps the last of duplicate keys, and its SafeLoader still constructs
    standard tags such as ``!!binary`` or ``!!set``; plans are plain values only.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self.paths: dict[int, Loc] = {}

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:
        event = self.peek_event()
        tag = getattr(event, "tag", None)
        if tag is not None and not isinstance(event, yaml.AliasEvent):
            raise _Refused(
                f"YAML tags are not allowed in plans (found {tag!r})",
                event.start_mark,
                fix="remove the tag (`!...`) and write a plain value",
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(
                    f"values are nested more than {MAX_DEPTH} levels deep",
                    event.start_mark,
                    fix="flatten the structure; plans nest a few levels at most",
                )
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as e:  # a date such as 2025-02-30, an int of 5000 digits
            shown = str(node.value) if isinstance(node, yaml.ScalarNode) else "value"
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            kind = _KIND.get(node.tag, "value")
            detail = "" if "digits" in str(e) else f" ({e})"
            fix = "write a real date as YYYY-MM-DD" if kind == "date" else f"write a valid {kind}"
            if "digits" in str(e):
                fix = "write a number with fewer digits"
            raise _Refused(
                f"{shown!r} is not a valid {kind}{detail}", node.start_mark, self._field(node), fix
            ) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Hashable] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                raise _Refused(
                    "merge keys (`<<: *anchor`) are not supported",
                    key_node.start_mark,
                    self._field(node),
                    "write the fields out (a plain alias such as `columns: *cols` is fine)",
                )
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                raise _Refused("a mapping key must be a plain value", key_node.start_mark, self._field(node), "")
            if key in seen:
                raise _Refused(f"duplicate key {key!r}", key_node.start_mark, self._field(node), "keep only one")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def _field(self, node: yaml.Node) -> str:
        return dotted(self.paths.get(id(node), ()))


def _key(node: yaml.Node) -> str:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else "<complex key>"


def _check_size(root: yaml.Node) -> None:
    """Refuse recursive aliases and documents that expand past MAX_NODES or MAX_DEPTH.

    Aliases make the node graph a DAG whose expanded tree can be exponentially larger than
    the text; sizes are summed over the DAG with memoisation, so this check is linear.
    """
    measured: dict[int, tuple[int, int]] = {}  # id -> (expanded size, height)
    open_: set[int] = set()

    def measure(node: yaml.Node, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in open_:
            raise _Refused(
                "an alias refers to a value that contains it (a recursive alias)",
                node.start_mark,
                fix="remove the alias or point it at another value",
            )
        size, height = measured.get(key, (0, 0))
        if not size:
            open_.add(key)
            children: list[yaml.Node] = []
            if isinstance(node, yaml.MappingNode):
                children = [n for pair in node.value for n in pair]
            elif isinstance(node, yaml.SequenceNode):
                children = list(node.value)
            size, height = 1, 1
            for child in children:
                child_size, child_height = measure(child, depth + 1)
                size, height = size + child_size, max(height, child_height + 1)
                if size > MAX_NODES:
                    raise _Refused(
                        f"the document expands to more than {MAX_NODES:,} values (aliases repeat their anchor)",
                        child.start_mark,
                        fix="write fewer values or use fewer aliases",
                    )
            open_.discard(key)
            measured[key] = (size, height)
        if depth + height > MAX_DEPTH + 1:
            raise _Refused(
                f"values are nested more than {MAX_DEPTH} levels deep once aliases are expanded",
                node.start_mark,
                fix="flatten the structure",
            )
        return size, height

    measure(root, 1)


def _lines(node: yaml.Node, loc: Loc, out: dict[Loc, int], paths: dict[int, Loc]) -> None:
    out[loc] = node.start_mark.line + 1
    paths.setdefault(id(node), loc)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = _key(key_node)
            _lines(value_node, (*loc, key), out, paths)
            out[(*loc, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, (*loc, i), out, paths)


def read(text: str, file: str | Path) -> tuple[Any, dict[Loc, int]]:
    """Parse one YAML document; return the data and a map from field path to line number."""
    if len(text) > MAX_CHARS:
        raise PlanError(
            f"{where(file)}the file has {len(text):,} characters, more than the {MAX_CHARS:,} a plan may have. "
            "Check that this is the plan file; split very large definitions into several plans."
        )
    loader: _Loader | None = None
    lines: dict[Loc, int] = {}
    try:
        loader = _Loader(text)  # the reader refuses control characters here
        node = loader.get_single_node()
        if node is None:
            return None, {}
        _check_size(node)
        _lines(node, (), lines, loader.paths)
        data = loader.construct_document(node)
    except _Refused as e:
        line = e.problem_mark.line + 1 if e.problem_mark else None
        raise PlanError(f"{where(file, e.field, line)}{e.problem}" + (f"; {e.fix}." if e.fix else ".")) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        problem = e.problem or e.context or "malformed YAML"
        raise PlanError(f"{where(file, line=line)}{problem}. Fix the YAML syntax there.") from None
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) + 1
        char = f"U+{e.character:04X}" if isinstance(e.character, int) else repr(e.character)
        raise PlanError(
            f"{where(file, line=line)}the character {char} is not allowed in YAML (a control character or "
            "a lone surrogate). Remove it and save the plan as plain UTF-8 text."
        ) from None
    except yaml.YAMLError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PlanError(f"{where(file)}malformed YAML ({first[:200]}). Fix the YAML syntax.") from None
    except RecursionError:  # a safety net: the depth limits above should come first
        raise PlanError(f"{where(file)}values are nested too deeply. Flatten the structure.") from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, lines


def line_of(lines: dict[Loc, int], loc: Loc) -> int | None:
    """The line of the deepest known prefix of ``loc``."""
    for n in range(len(loc), -1, -1):
        if tuple(loc[:n]) in lines:
            return lines[tuple(loc[:n])]
    return None


_PLAIN = re.compile(r"[\w\-]+")


def dotted(loc: Loc) -> str:
    """Render a field path as ``kpis[0].target.by``; odd keys are quoted (``sources['a b']``)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _PLAIN.fullmatch(str(part)):  # spaces, dots, line breaks: keep the message one line
            text = str(part)
            out += f"[{(text if len(text) <= 40 else text[:37] + '...')!r}]"
        else:
            out += f".{part}" if out else str(part)
    return out
