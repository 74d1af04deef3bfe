"""Metric formulas: parse a SQL-like expression into a small checked tree.

The text is parsed by sqlglot and converted node by node into the types below; anything
outside the allowed language is rejected with a :class:`~kpinb.errors.FormulaError`.
Nothing here evaluates text: the engine compiles the tree to ibis expressions and the
derived-metric evaluator walks it over aggregated pandas columns.

Example
-------
>>> f = parse("sum(revenue) / count_distinct(order_id)", kind="aggregate")
>>> sorted(f.columns)
['order_id', 'revenue']
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from kpinb.errors import FormulaError, shown

MAX_LENGTH = 5000
MAX_DEPTH = 60

AGGREGATES = ("sum", "count", "count_distinct", "count_if", "avg", "min", "max", "median")
Kind = Literal["aggregate", "row", "derived", "column"]


@dataclass(frozen=True)
class Node:
    """Base of the formula tree."""

    def children(self) -> tuple[Node, ...]:
        return ()

    def walk(self) -> Iterator[Node]:
        yield self
        for c in self.children():
            yield from c.walk()


@dataclass(frozen=True)
class Lit(Node):
    value: float | int | str | bool | None


@dataclass(frozen=True)
class Col(Node):
    name: str


@dataclass(frozen=True)
class Ref(Node):
    """A reference to another metric: ``{metric_id}``."""

    metric: str


@dataclass(frozen=True)
class Prev(Node):
    """The referenced metric's value in the previous period: ``prev({metric_id})``."""

    ref: Ref

    def children(self) -> tuple[Node, ...]:
        return (self.ref,)


@dataclass(frozen=True)
class Agg(Node):
    """An aggregate; ``arg`` is None for ``count(*)``."""

    func: str
    arg: Node | None

    def children(self) -> tuple[Node, ...]:
        return () if self.arg is None else (self.arg,)


@dataclass(frozen=True)
class BinOp(Node):
    op: str  # + - * / = != < <= > >= and or
    left: Node
    right: Node

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True)
class Unary(Node):
    op: str  # neg, not, isnull, notnull
    arg: Node

    def children(self) -> tuple[Node, ...]:
        return (self.arg,)


@dataclass(frozen=True)
class Call(Node):
    func: str  # coalesce, nullif, or one of ROW_FUNCTIONS
    args: tuple[Node, ...]

    def children(self) -> tuple[Node, ...]:
        return self.args


@dataclass(frozen=True)
class InList(Node):
    arg: Node
    values: tuple[Lit, ...]

    def children(self) -> tuple[Node, ...]:
        return (self.arg, *self.values)


@dataclass(frozen=True)
class Case(Node):
    whens: tuple[tuple[Node, Node], ...]
    default: Node | None

    def children(self) -> tuple[Node, ...]:
        out = [n for pair in self.whens for n in pair]
        return tuple(out + ([self.default] if self.default is not None else []))


@dataclass(frozen=True)
class Formula:
    """A parsed, checked formula and what it refers to."""

    text: str
    kind: Kind
    tree: Node

    @property
    def columns(self) -> frozenset[str]:
        return frozenset(n.name for n in self.tree.walk() if isinstance(n, Col))

    @property
    def refs(self) -> frozenset[str]:
        return frozenset(n.metric for n in self.tree.walk() if isinstance(n, Ref))

    @property
    def ratio(self) -> tuple[Node, Node] | None:
        """(numerator, denominator) when the formula is a division at its top."""
        t = self.tree
        return (t.left, t.right) if isinstance(t, BinOp) and t.op == "/" else None


_REF = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_\-]*)\s*\}")
# spaces keep a placeholder one token: `{a}{b}` must not become the single name `__kpinb_ref_0__kpinb_ref_1`
_PLACEHOLDER = " __kpinb_ref_{} "
_PLACEHOLDER_NAME = re.compile(r"__kpinb_ref_(\d+)")
ROW_FUNCTIONS = {"make_date": (3, 3), "year": (1, 1), "month": (1, 1), "day": (1, 1), "lower": (1, 1),
                 "upper": (1, 1), "abs": (1, 1), "round": (1, 2), "days_between": (2, 2),
                 "first_date": (2, 2)}  # fmt: skip
COLUMN_FUNCTIONS = frozenset({"first_date"})
"""Functions that read other rows of the source (``first_date(customer_id, order_date)``: the
customer's first order date): only in a source's ``derive:`` (formula kind ``column``)."""
"""Functions of a row's values (name -> fewest and most arguments): in filters, aggregates'
arguments and a source's computed columns (``derive:``), not over metrics."""
_ALLOWED_TEXT = (
    "sum, count, count_distinct, count_if, avg, min, max, median, coalesce, nullif, "
    "make_date, year, month, day, lower, upper, abs, round, days_between, first_date"
)


_ROW_EXAMPLES = {"days_between": "days_between(created_at, converted_at)",
                 "first_date": "first_date(customer_id, order_date)", "make_date": "make_date(year, month, 1)",
                 "year": "year(order_date)", "month": "month(order_date)",
                 "day": "day(order_date)", "lower": "lower(region)", "upper": "upper(region)", "abs": "abs(amount)",
                 "round": "round(amount, 2)"}  # fmt: skip


def _fail(text: str, problem: str, fix: str) -> FormulaError:
    short = text if len(text) <= 120 else text[:117] + "..."
    return FormulaError(f"formula {short!r}: {problem}. {fix}")


def _name(name: object, limit: int = 60) -> str:
    """A name or number from the formula (or the data), quoted and cut short for a message."""
    text = str(name)
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def parse(text: str, kind: Kind = "aggregate", columns: Iterable[str] | None = None) -> Formula:
    """Parse and check a formula.

    Parameters
    ----------
    text: the formula.
    kind: ``aggregate`` (a metric's ``expr`` over a source), ``row`` (a ``where`` filter)
        or ``derived`` (an ``expr`` over other metrics, ``{metric_id}``).
    columns: when given, every column must be one of these.
    """
    if not isinstance(text, str) or not text.strip():
        raise _fail(str(text), "is empty", "Write an expression such as `sum(revenue)`")
    tree, has_refs = _tree(text)
    if has_refs and kind != "derived":
        raise _fail(text, "refers to other metrics with {...}", "Only derived metrics (no `source:`) may")
    if isinstance(tree, FormulaError):
        raise FormulaError(str(tree))  # a fresh error: a cached one would carry its old traceback
    formula = Formula(text=text, kind=kind, tree=tree)
    _check_context(formula)
    if columns is not None:
        check_columns(formula, columns)
    return formula


@functools.lru_cache(maxsize=1024)
def _tree(text: str) -> tuple[Node | FormulaError, bool]:
    """The checked tree of ``text`` (or the error it gives), whatever the kind, and whether
    it refers to metrics (``{id}``; found before any error but length and reserved names).

    Cached: a plan's formulas are parsed when it is loaded, when dependencies are resolved
    and when the query is built, and sqlglot is the slow part.
    """
    refs: list[str] = []
    try:
        return _convert(text, refs), bool(refs)
    except FormulaError as e:
        return e, bool(refs)


def _convert(text: str, refs: list[str]) -> Node:
    import sqlglot
    from sqlglot import exp

    if len(text) > MAX_LENGTH:
        raise _fail(text, f"is longer than {MAX_LENGTH} characters", "Split it into metrics")
    depth, quote = 0, ""
    for c in text:  # refuse deep brackets (outside quotes) before sqlglot recurses into them
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        else:
            depth += (c == "(") - (c == ")")
            if depth > MAX_DEPTH:
                raise _fail(text, "is nested too deeply", "Simplify the expression")
    if "__kpinb_ref_" in text:
        raise _fail(text, "uses the reserved name `__kpinb_ref_`", "Refer to metrics as {metric_id}")

    def _sub(m: re.Match[str]) -> str:
        refs.append(m.group(1))
        return _PLACEHOLDER.format(len(refs) - 1)

    sql = _REF.sub(_sub, text)  # parse() refuses references outside derived metrics before what follows
    if "{" in sql or "}" in sql:
        raise _fail(text, "has an unmatched brace", "Refer to a metric as {metric_id}")
    code = _unquoted(sql)  # `status = 'a;b'` or `'a--b'` are plain text, not statements or comments
    if ";" in code:
        raise _fail(text, "contains `;`", "A formula is one expression, not statements")
    if "--" in code or "/*" in code:
        raise _fail(text, "contains a comment", "Remove the comment; describe the metric in `description:`")
    try:
        trees = sqlglot.parse(sql, read="duckdb")
    except RecursionError:
        raise _fail(text, "is nested too deeply", "Simplify the expression") from None
    except Exception as e:  # sqlglot raises ParseError/TokenError with positions
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise _fail(text, f"cannot be parsed ({msg})", "Check brackets, quotes and operators") from None
    if len(trees) != 1 or trees[0] is None:
        raise _fail(text, "is not a single expression", "Write exactly one expression")
    return _Converter(text, sql, refs, exp).convert(trees[0], depth=0)


def _unquoted(sql: str) -> str:
    """``sql`` with the insides of '...' literals and "..." names blanked out (a doubled quote
    inside is an escaped quote); an unclosed quote blanks the rest, which the parser then refuses."""
    out, quote, i = [], "", 0
    while i < len(sql):
        c = sql[i]
        if quote:
            if c == quote and sql[i + 1 : i + 2] == quote:  # '' inside '...'
                out.append("  ")
                i += 2
                continue
            if c == quote:
                quote = ""
                out.append(c)
            else:
                out.append(" ")
        else:
            if c in "'\"":
                quote = c
            out.append(c)
        i += 1
    return "".join(out)


def check_columns(formula: Formula, columns: Iterable[str], where: str = "") -> None:
    """Raise if the formula uses a column not in ``columns``, suggesting the closest name."""
    known = list(columns)
    for name in sorted(formula.columns):
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"Did you mean {_name(close[0])}? " if close else ""
            avail = ", ".join(shown(c) for c in sorted(map(str, known))[:30])
            raise _fail(
                formula.text,
                f"unknown column {_name(name)}{where}",
                f"{hint}Use one of: {avail}; or map your column in the source's `columns:`",
            )


class _Converter:
    def __init__(self, text: str, sql: str, refs: list[str], exp: object) -> None:
        self.text, self.sql, self.refs, self.exp = text, sql, refs, exp

    def fail(self, problem: str, fix: str) -> FormulaError:
        # sqlglot's rendering of a node shows placeholders; show the user's {metric_id} instead
        problem = _PLACEHOLDER_NAME.sub(lambda m: "{" + self.refs[int(m.group(1))] + "}", problem)
        return _fail(self.text, problem, fix)

    def convert(self, node: object, depth: int) -> Node:
        exp = self.exp
        if depth > MAX_DEPTH:
            raise self.fail("is nested too deeply", "Simplify the expression")
        d = depth + 1
        if isinstance(node, exp.Paren):
            return self.convert(node.this, d)
        if isinstance(node, exp.Literal):
            if node.is_string:
                return Lit(node.this)
            try:
                value = float(node.this) if any(c in node.this for c in ".eE") else int(node.this)
            except ValueError:
                raise self.fail(f"bad number {_name(node.this)}", "Write a plain number") from None
            if isinstance(value, float) and not (abs(value) < 1e300):
                raise self.fail(f"number {_name(node.this)} is out of range", "Use a smaller number")
            if isinstance(value, int) and abs(value) > 2**62:
                raise self.fail(f"number {_name(node.this)} is out of range", "Use a smaller number")
            return Lit(value)
        if isinstance(node, exp.Boolean):
            return Lit(bool(node.this))
        if isinstance(node, exp.Null):
            return Lit(None)
        if isinstance(node, exp.Column):
            if node.table or node.args.get("db") or node.args.get("catalog"):
                raise self.fail(f"uses a qualified name {_name(node.sql())}", "Use plain column names")
            name = node.name
            ref = _PLACEHOLDER_NAME.fullmatch(name)
            if ref:  # the text itself cannot hold the reserved name, so this is a {metric_id}
                return Ref(self.refs[int(ref.group(1))])
            if "__kpinb_ref_" in name:
                inside = _name(name.strip())
                raise self.fail(f"uses a metric reference inside the name {inside}", "Write {metric_id} alone")
            if name.startswith("__"):
                raise self.fail(f"uses a reserved name {_name(name)}", "Rename the column")
            return Col(name)
        if isinstance(node, exp.Neg):
            return Unary("neg", self.convert(node.this, d))
        if isinstance(node, exp.Not):
            inner = node.this
            if isinstance(inner, exp.Is):
                return Unary("notnull", self._is_null(inner, d))
            return Unary("not", self.convert(inner, d))
        if isinstance(node, exp.Is):
            return Unary("isnull", self._is_null(node, d))
        binops = {
            exp.Add: "+", exp.Sub: "-", exp.Mul: "*", exp.Div: "/", exp.EQ: "=",
            exp.NEQ: "!=", exp.LT: "<", exp.LTE: "<=", exp.GT: ">", exp.GTE: ">=",
            exp.And: "and", exp.Or: "or",
        }  # fmt: skip
        for cls, op in binops.items():
            if type(node) is cls:
                return BinOp(op, self.convert(node.left, d), self.convert(node.right, d))
        if isinstance(node, exp.Between):
            x = self.convert(node.this, d)
            lo, hi = self.convert(node.args["low"], d), self.convert(node.args["high"], d)
            return BinOp("and", BinOp(">=", x, lo), BinOp("<=", x, hi))
        if isinstance(node, exp.In):
            if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
                raise self.fail("uses `in` with a subquery", "List literal values: x in ('a', 'b')")
            values = tuple(self.convert(v, d) for v in node.expressions)
            if not values or not all(isinstance(v, Lit) for v in values):
                raise self.fail("`in` needs a list of literal values", "Write x in ('a', 'b')")
            return InList(self.convert(node.this, d), values)  # type: ignore[arg-type]
        if isinstance(node, exp.Case):
            if node.this is not None:
                raise self.fail("uses `case x when ...`", "Write `case when x = ... then ... end`")
            whens = tuple((self.convert(w.this, d), self.convert(w.args["true"], d)) for w in node.args["ifs"])
            default = node.args.get("default")
            return Case(whens, self.convert(default, d) if default is not None else None)
        if isinstance(node, exp.Coalesce):
            self._spelled(node, "coalesce")
            args = [node.this, *node.expressions]
            return Call("coalesce", tuple(self.convert(a, d) for a in args))
        if isinstance(node, exp.Nullif):
            self._spelled(node, "nullif")
            return Call("nullif", (self.convert(node.this, d), self.convert(node.expression, d)))
        if isinstance(node, exp.Count):
            self._spelled(node, "count")
            arg = node.this
            if isinstance(arg, exp.Star):
                return Agg("count", None)
            if isinstance(arg, exp.Distinct):
                if len(arg.expressions) != 1:
                    raise self.fail("count(distinct ...) takes one column", "Count one column")
                return Agg("count_distinct", self.convert(arg.expressions[0], d))
            if arg is None:
                raise self.fail("count() needs an argument", "Write count(*) or count(column)")
            if node.expressions:
                raise self.fail("count() takes one argument", "Write count(column) or count(*)")
            return Agg("count", self.convert(arg, d))
        simple_aggs = {exp.Sum: "sum", exp.Avg: "avg", exp.Min: "min", exp.Max: "max",
                       exp.Median: "median", exp.CountIf: "count_if"}  # fmt: skip
        for cls, fn in simple_aggs.items():
            if type(node) is cls:
                self._spelled(node, fn)
                extra = [a for k, a in node.args.items() if k != "this" and a]
                if extra or isinstance(node.this, exp.Distinct):
                    raise self.fail(f"{fn}() takes exactly one argument", f"Write {fn}(column)")
                return Agg(fn, self.convert(node.this, d))
        row_func = {exp.Year: "year", exp.Month: "month", exp.Day: "day", exp.Lower: "lower", exp.Upper: "upper",
                    exp.Abs: "abs", exp.Round: "round", exp.DateFromParts: "make_date"}.get(type(node))  # fmt: skip
        if row_func is None and isinstance(node, exp.Anonymous) and str(node.this).lower() in ROW_FUNCTIONS:
            row_func = str(node.this).lower()
        if row_func is not None:
            if not isinstance(node, exp.Anonymous):
                self._spelled(node, row_func)
            if isinstance(node, exp.Anonymous):
                args = node.expressions
            elif isinstance(node, exp.DateFromParts):
                args = [node.args.get(k) for k in ("year", "month", "day") if node.args.get(k) is not None]
            else:
                args = [node.this, *[a for k, a in node.args.items() if k != "this" and a]]
            lo, hi = ROW_FUNCTIONS[row_func]
            if not lo <= len(args) <= hi:
                count = str(lo) if lo == hi else f"{lo} or {hi}"
                raise self.fail(f"{row_func}() takes {count} argument(s)", f"Write e.g. {_ROW_EXAMPLES[row_func]}")
            return Call(row_func, tuple(self.convert(a, d) for a in args))
        if isinstance(node, exp.Anonymous):
            name = str(node.this).lower()
            args = node.expressions
            if name == "count_distinct" and len(args) == 1:
                return Agg("count_distinct", self.convert(args[0], d))
            if name == "prev" and len(args) == 1:
                inner = self.convert(args[0], d)
                if not isinstance(inner, Ref):
                    raise self.fail("prev() takes a metric reference", "Write prev({metric_id})")
                return Prev(inner)
            raise self.fail(f"unknown function {_name(name)}", f"Allowed functions: {_ALLOWED_TEXT}, prev")
        if isinstance(node, exp.Func):
            name = node.sql_name().lower() if hasattr(node, "sql_name") else type(node).__name__
            raise self.fail(f"unknown function {_name(name)}", f"Allowed functions: {_ALLOWED_TEXT}, prev")
        what = type(node).__name__
        described = {
            "Select": "a query", "Subquery": "a subquery", "Star": "`*` outside count(*)",
            "Window": "a window function", "Filter": "an aggregate FILTER clause",
            "Cast": "a cast", "Dot": "attribute access", "Mod": "the % operator",
            "DPipe": "string concatenation", "Placeholder": "a placeholder",
            "Alias": "two values side by side (a missing operator?)",
        }.get(what, f"unsupported syntax ({what})")  # fmt: skip
        raise self.fail(f"uses {described}", "Use arithmetic, comparisons, case, and the allowed functions")

    def _spelled(self, node: object, name: str) -> None:
        """Refuse an allowed function written under another name.

        sqlglot reads aliases into the same node (``ifnull``/``nvl`` and the ``??`` operator
        into ``coalesce``, ``countif`` into ``count_if``); the formula language is the
        documented list, so the name as written must be the documented one.
        """
        meta = getattr(node, "meta", {})
        start, end = meta.get("start"), meta.get("end")
        if start is None or end is None:
            raise self.fail(f"uses an operator for {name}()", f"Write {name}(...)")
        written = self.sql[start : end + 1].strip().lower()
        if written != name:
            raise self.fail(f"unknown function {_name(written)}", f"Write {name}(...) instead")

    def _is_null(self, node: object, d: int) -> Node:
        if not isinstance(node.expression, self.exp.Null):  # type: ignore[attr-defined]
            raise self.fail("`is` only works with null", "Write `x is null` or `x = value`")
        return self.convert(node.this, d)  # type: ignore[attr-defined]


def _check_context(f: Formula) -> None:
    """Enforce where columns, aggregates and references may appear."""

    def visit(n: Node, in_agg: bool) -> None:
        if isinstance(n, Call) and n.func in COLUMN_FUNCTIONS and f.kind != "column":
            raise _fail(
                f.text, f"uses {n.func}(), which reads other rows",
                f"Compute it as a column of the source: `derive: {{first_order: \"{_ROW_EXAMPLES[n.func]}\"}}`",
            )  # fmt: skip
        if isinstance(n, Agg):
            if f.kind != "aggregate":
                what = {"row": "a filter (`where:`)", "column": "a derived column"}.get(f.kind, "a derived metric")
                raise _fail(f.text, f"uses the aggregate {n.func}() in {what}", _AGG_FIX[f.kind])
            if in_agg:
                raise _fail(f.text, f"nests aggregates ({n.func} inside another)", "Aggregate once")
            if n.func == "count_if" and n.arg is not None and _is_plain_literal(n.arg):
                raise _fail(f.text, "count_if() needs a condition", "Write count_if(column = value)")
            if n.arg is not None and not any(isinstance(c, Col) for c in n.arg.walk()):
                # the engine aggregates columns; a constant is the same on every row
                raise _fail(
                    f.text,
                    f"{n.func}() aggregates a constant, not a column",
                    "Aggregate a column, e.g. sum(revenue), or count rows with count(*)",
                )
        if isinstance(n, Col) and f.kind == "aggregate" and not in_agg:
            raise _fail(
                f.text,
                f"uses column {_name(n.name)} outside an aggregate",
                f"Wrap it in an aggregate, e.g. sum({_name(n.name)[1:-1]}), or filter rows with `where:`",
            )
        if f.kind == "derived" and not _derived_ok(n):
            raise _fail(
                f.text,
                f"uses {type(n).__name__.lower()} syntax in a derived metric",
                "Combine metrics with + - * /, coalesce, nullif and prev(); put conditions in an aggregate metric",
            )
        if isinstance(n, Col) and f.kind == "derived":
            raise _fail(f.text, f"uses column {_name(n.name)} in a derived metric", "Refer to metrics as {metric_id}")
        for c in n.children():
            visit(c, in_agg or isinstance(n, Agg))

    visit(f.tree, False)
    if f.kind == "aggregate" and not any(isinstance(n, Agg) for n in f.tree.walk()):
        raise _fail(f.text, "has no aggregate", "Use sum(...), count(*), avg(...) etc.")
    if f.kind == "derived" and not f.refs:
        raise _fail(f.text, "refers to no metric", "Derived metrics combine metrics: {a} / {b}")


_AGG_FIX = {
    "row": "Filters apply to single rows; compare columns with values instead",
    "column": "A derived column is computed per row; aggregate it in a metric",
    "derived": "Refer to metrics as {metric_id}; define the aggregate as its own metric",
    "aggregate": "",
}


def _derived_ok(n: Node) -> bool:
    if isinstance(n, BinOp):
        return n.op in ("+", "-", "*", "/")
    if isinstance(n, Unary):
        return n.op == "neg"
    if isinstance(n, Lit):
        return not isinstance(n.value, str)
    if isinstance(n, Call):
        return n.func not in ROW_FUNCTIONS
    return isinstance(n, (Ref, Prev, Col, Agg))


def _is_plain_literal(n: Node) -> bool:
    return isinstance(n, Lit)
