"""Formula trees compiled to ibis expressions over one table: the row-level language shared by
metric formulas (``expr``, ``where``) and a source's computed columns (``derive:``).

Types are checked node by node, so a formula that mixes kinds (text in arithmetic, a number as
a condition) is a :class:`~kpinb.errors.FormulaError` naming its owner (``who``: the metric, or
the source and column), not an error from deep inside the query builder.
"""

from __future__ import annotations

from typing import Any

from kpinb.data.engines import on_polars
from kpinb.definitions.formula import ROW_FUNCTIONS, Agg, BinOp, Call, Case, Col, InList, Lit, Node, Unary
from kpinb.errors import FormulaError

__all__ = ["compile_node", "kind_of"]


def compile_node(node: Node, t: Any, where: Any, who: str) -> Any:
    """Translate a formula tree into an ibis expression over table ``t``.

    Types are checked here, node by node, so a formula that mixes kinds (text in
    arithmetic, a number as a condition) is a FormulaError naming the metric, not an
    error from deep inside the query builder.
    """
    import ibis

    def row(n: Node) -> Any:
        return compile_node(n, t, where, who)

    if isinstance(node, Agg):
        if on_polars(t):
            return _polars_aggregate(node, t, where, who, row)
        if node.func == "count" and node.arg is None:
            return t.count(where=where)
        arg = row(node.arg)  # type: ignore[arg-type]
        if node.func == "count_if":
            cond = _as_bool(arg, who, "count_if()")
            return t.count(where=cond if where is None else cond & where)
        if node.func in ("sum", "avg", "median"):
            arg = _as_num(arg, who, f"{node.func}()")
        if node.func == "count":
            return arg.count(where=where)
        if node.func == "count_distinct":
            return arg.nunique(where=where)
        if node.func == "avg":
            return arg.mean(where=where)
        if node.func == "sum":
            # SQL's sum of no rows is NULL; a period with rows but none matching is 0.
            return ibis.coalesce(arg.sum(where=where), 0)
        if node.func == "median" and where is not None:
            # Filter the argument (medians skip nulls), not the aggregate: Spark applies a
            # filter to every input of percentile(x, 0.5), and 0.5 must stay a constant.
            return ibis.cases((where, arg)).median()
        return getattr(arg, node.func)(where=where)
    if isinstance(node, Lit):
        return ibis.null() if node.value is None else ibis.literal(node.value)
    if isinstance(node, Col):
        return t[node.name]
    if isinstance(node, BinOp):
        left, right = row(node.left), row(node.right)
        op = node.op
        if op in ("and", "or"):
            left, right = _as_bool(left, who, f"`{op}`"), _as_bool(right, who, f"`{op}`")
            return left & right if op == "and" else left | right
        if op in ("+", "-", "*", "/"):
            left, right = _as_num(left, who, f"{op!r}"), _as_num(right, who, f"{op!r}")
            if op == "/":  # PostgreSQL divides integers as integers: 7 / 2 must be 3.5 everywhere
                return left.cast("float64") / right.nullif(0)
            return getattr(left, _ARITH[op])(right)
        if op in ("=", "!=") and {kind_of(left), kind_of(right)} == {"true/false", "text"}:
            left, right = _flag_literal(node.left, left), _flag_literal(node.right, right)
        _comparable(who, op, left, right)
        fn = {"=": "__eq__", "!=": "__ne__", "<": "__lt__", "<=": "__le__", ">": "__gt__", ">=": "__ge__"}[op]
        return getattr(left, fn)(right)
    if isinstance(node, Unary):
        x = row(node.arg)
        if node.op == "neg":
            return -_as_num(x, who, "`-`")
        if node.op == "not":
            return ~_as_bool(x, who, "`not`")
        return x.isnull() if node.op == "isnull" else x.notnull()
    if isinstance(node, InList):
        x = row(node.arg)
        for v in node.values:
            _comparable(who, "in", x, row(v))
        return x.isin([v.value for v in node.values])
    if isinstance(node, Case):
        conds = [_as_bool(row(c), who, "`case when`") for c, _ in node.whens]
        values = _one_kind(who, "case", [row(v) for _, v in node.whens] + ([row(node.default)] if node.default else []))
        default = values.pop() if node.default is not None else None
        return ibis.cases(*zip(conds, values, strict=True), else_=default)
    if isinstance(node, Call) and node.func in ROW_FUNCTIONS:
        return _row_function(node.func, [row(a) for a in node.args], who)
    if isinstance(node, Call):
        args = _one_kind(who, f"{node.func}()", [row(a) for a in node.args])
        if node.func == "coalesce":
            return ibis.coalesce(*args)
        return args[0].nullif(args[1])
    raise FormulaError(f"{who}: {type(node).__name__} cannot be used here. Use the formula language.")


_ARITH = {"+": "__add__", "-": "__sub__", "*": "__mul__"}


def _polars_aggregate(node: Agg, t: Any, where: Any, who: str, row: Any) -> Any:
    """``node`` on polars, where two things differ from SQL engines:

    - polars filters a copy of the column for each filtered aggregate (the sales KPI set copied
      its text columns once per KPI: 35 % of the query and most of its memory above hand-written
      code). The condition is applied by masking instead: every aggregate skips missing values,
      so ``sum(x) where c`` is the sum of ``x if c else missing``; a mask copies nothing.
    - its counts are unsigned 32-bit, so ``count(a) - count(b)`` wrapped around to 4294967295
      below zero, and its ``n_unique`` counts a missing value as one more. Counts are sums of a
      condition (64-bit), distinct counts take the missing value off (64-bit)."""
    import ibis

    if node.func == "count" and node.arg is None:
        return t.count(where=where)
    arg = row(node.arg)  # type: ignore[arg-type]
    if node.func in ("count_if", "count"):
        cond = _as_bool(arg, who, "count_if()") if node.func == "count_if" else arg.notnull()
        return t.count(where=cond if where is None else cond & where)
    if node.func in ("sum", "avg", "median"):
        arg = _as_num(arg, who, f"{node.func}()")
    kept = arg if where is None else ibis.cases((where, arg))
    if node.func == "count_distinct":
        return kept.nunique() - kept.isnull().any().cast("int64")
    if node.func == "sum":
        return ibis.coalesce(kept.sum(), 0)  # a period with rows but none matching is 0
    return getattr(kept, {"avg": "mean"}.get(node.func, node.func))()


def kind_of(x: Any) -> str:
    """The kind of an ibis value as a user would name it."""
    t = x.type()
    if t.is_null():
        return "null"
    if t.is_boolean():
        return "true/false"
    if t.is_numeric():
        return "number"
    if t.is_string():
        return "text"
    if t.is_temporal():
        return "date"
    return str(t)


# kinds that compare with each other (a date column with a '2024-01-01' literal, a flag with 1)
_COMPARABLE = ({"number", "true/false"}, {"text", "date"})


def _comparable(who: str, op: str, left: Any, right: Any) -> None:
    a, b = kind_of(left), kind_of(right)
    if "null" in (a, b) or a == b or any({a, b} <= group for group in _COMPARABLE):
        return
    raise FormulaError(
        f"{who}: cannot compare {a} with {b} using {op!r}. Compare values of the same kind, "
        "e.g. status = 'completed' or revenue > 100."
    )


def _one_kind(who: str, what: str, values: list[Any]) -> list[Any]:
    """``values`` of coalesce/nullif/case branches, made one kind (true/false count as 1/0 with numbers)."""
    kinds = {kind_of(v) for v in values} - {"null"}
    if kinds == {"number", "true/false"}:
        return [_as_num(v, who, what) for v in values]
    if len(kinds) > 1:
        a, b = sorted(kinds)[:2]
        raise FormulaError(
            f"{who}: {what} mixes {a} and {b}. Use values of one kind, "
            "e.g. coalesce(revenue, 0) rather than coalesce(revenue, 'none')."
        )
    if not kinds:  # only nulls: give them a type the engine can carry
        return [v.cast("float64") for v in values]
    return values


def _as_num(x: Any, who: str, what: str) -> Any:
    kind = kind_of(x)
    if kind == "number":
        return x
    import ibis

    if kind == "null":  # a column without any value, or a literal null
        return x.cast("float64")
    if kind == "true/false":
        # CASE, not CAST: PostgreSQL has no boolean -> bigint cast; a null stays null
        return ibis.cases((x, ibis.literal(1, "int64")), (~x, ibis.literal(0, "int64")))
    raise FormulaError(
        f"{who}: {what} needs numbers, but its argument is {kind}. "
        "Use a numeric column, or count text with count/count_distinct/count_if."
    )


def _as_bool(x: Any, who: str, what: str = "a condition") -> Any:
    kind = kind_of(x)
    if kind == "true/false":
        return x
    if kind == "null":
        return x.cast("boolean")
    raise FormulaError(
        f"{who}: {what} needs a condition (true/false), but got {kind}. Compare it, e.g. revenue > 0."
    )


_FLAG_WORDS = {"yes": True, "y": True, "true": True, "t": True, "no": False, "n": False, "false": False, "f": False}


def _flag_literal(node: Node, value: Any) -> Any:
    """A text literal that names a truth value (``'Yes'``, ``'no'``) as true/false, for comparing
    with a yes/no column that the file reader typed as booleans; anything else unchanged."""
    import ibis

    if isinstance(node, Lit) and isinstance(node.value, str) and node.value.strip().lower() in _FLAG_WORDS:
        return ibis.literal(_FLAG_WORDS[node.value.strip().lower()])
    return value


def _row_function(func: str, args: list[Any], who: str) -> Any:
    """``make_date``, ``year``/``month``/``day``, ``lower``/``upper``, ``abs``/``round`` on ibis values."""
    import ibis

    if func == "days_between":  # whole days from the first date to the second (negative: before)
        a, b = (x if kind_of(x) == "date" else None for x in args)
        if a is None or b is None:
            raise FormulaError(f"{who}: days_between() needs two dates, e.g. days_between(created_at, won_at).")
        return b.cast("date").delta(a.cast("date"), unit="day")
    if func == "first_date":  # the earliest date of the key's rows: a window over the whole source
        key, when = args
        if kind_of(when) != "date":
            raise FormulaError(f"{who}: first_date() needs a key and a date, e.g. first_date(customer_id, order_date).")
        return when.min().over(group_by=key)
    if func == "make_date":
        y, mo, d = (_as_num(a, who, "make_date()").cast("int32") for a in args)
        return ibis.date(y, mo, d)
    x = args[0]
    if func in ("year", "month", "day"):
        if kind_of(x) != "date":
            raise FormulaError(
                f"{who}: {func}() needs a date, but its argument is {kind_of(x)}. Pass a date column "
                "(text dates: store them as dates, or build one with make_date(year, month, day))."
            )
        return getattr(x, func)()
    if func in ("lower", "upper"):
        return getattr(x if kind_of(x) == "text" else x.cast("string"), func)()
    x = _as_num(x, who, f"{func}()")
    if func == "abs":
        return x.abs()
    digits = args[1].op() if len(args) > 1 else None
    if digits is not None and not isinstance(getattr(digits, "value", None), int):
        raise FormulaError(f"{who}: round() takes a whole number of digits, e.g. round(revenue, 2).")
    return x.round(digits.value if digits is not None else 0)
