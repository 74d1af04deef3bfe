"""Write a plan file: the one writer behind the wizard's Save, proposals and ``kpinb init``.

The text has the shape of DESIGN.md's example: block style for the plan's structure, flow
style (``{value: 200, by: 2025-12-31}``, ``[a, b]``) for small leaf mappings and lists, dates
as YAML dates, user text quoted only when YAML needs it (so it can never break the
structure), a header comment, and a comment under any source that is not connected yet.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["plan_yaml", "relative_paths"]

_DATES = (("baseline", ("from", "to")), ("target", ("by", "from")))


def relative_paths(data: dict[str, Any], folder: str | Path, *, only_near: bool = False) -> dict[str, Any]:
    """``data`` with absolute source paths made relative to ``folder`` (plans resolve paths
    against their own folder, so a plan and its data can move together). With ``only_near``, a
    path three or more folders up stays absolute."""
    base = Path(folder).expanduser().resolve()
    for src in data.get("sources", {}).values():
        path = src.get("path")
        if not path or not Path(path).is_absolute():
            continue
        try:
            rel = os.path.relpath(path, base)
        except ValueError:  # another drive on Windows
            continue
        if not (only_near and rel.startswith(os.path.join("..", "..", ".."))):
            src["path"] = Path(rel).as_posix()
    return data


def plan_yaml(data: Mapping[str, Any], *, header: str, notes: Mapping[str, str] | None = None) -> str:
    """The text of a plan file from a YAML-ready mapping (:func:`kpinb.definitions.model.to_dict`
    of a plan, or one built by the wizard).

    Parameters
    ----------
    data : the plan as plain data, keys in the order to write them.
    header : a comment for the first line (without ``#``).
    notes : source name -> a comment written under that source (``not connected yet: ...``).
    """
    import yaml

    data = {k: v for k, v in data.items() if v is not None}
    for k in data.get("kpis", []) or []:  # dates as YAML dates, not quoted strings
        for part, keys in _DATES:
            versions = k.get(part) if isinstance(k.get(part), list) else [k.get(part)]  # a goal history
            for item in versions:
                for key in keys:
                    if isinstance(item, dict) and isinstance(item.get(key), str):
                        item[key] = dt.date.fromisoformat(item[key])
    data = _Block(data)
    for key in ("objectives", "metrics", "kpis"):
        if data.get(key):
            data[key] = [_Block(item) for item in data[key]]
    if data.get("sources"):
        data["sources"] = _Block({name: _Block(src) for name, src in data["sources"].items()})
    text = yaml.dump(
        data, Dumper=_dumper(), sort_keys=False, allow_unicode=True, default_flow_style=None, width=10**9
    )
    lines = [f"# {header}", *text.splitlines()]
    for name, note in (notes or {}).items():
        at = lines.index(f"  {name}:") if f"  {name}:" in lines else None
        if at is not None:
            lines.insert(at + 1, f"    # {note}")
    return "\n".join(lines) + "\n"


class _Block(dict):
    """A mapping written in block style (the plan's structure); leaf mappings go in flow style."""


def _dumper() -> Any:
    import yaml

    class Dumper(yaml.SafeDumper):
        def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:
            return super().increase_indent(flow, False)  # list items indented under their key

    Dumper.add_representer(float, _float)
    Dumper.add_representer(
        _Block, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=False)
    )
    return Dumper


def _float(dumper: Any, value: float) -> Any:
    """Numbers as people type them: 1500000 rather than 1500000.0, 12 significant digits at most."""
    if value != value or value in (float("inf"), float("-inf")):
        return dumper.represent_float(value)
    text = f"{value:.12g}"
    if "e" in text or "." in text:
        return dumper.represent_scalar("tag:yaml.org,2002:float", text if "e" not in text else repr(value))
    return dumper.represent_scalar("tag:yaml.org,2002:int", text)
