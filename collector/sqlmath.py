"""osquery's math functions (sqlite_math.cpp): C libm semantics, errno becomes the error text.

They replace SQLite's built-in math functions of the same names; note that osquery's log(x) is the
natural logarithm (SQLite's own log(x) is base 10; its two-argument log(b, x) stays available).
"""

from __future__ import annotations

import errno
import math
import os
import re
from collections.abc import Callable
from typing import Any

from collector.errors import QueryError


def _double(v: Any) -> float:
    """sqlite3_value_double(): numbers as they are, text by its leading number, anything else 0.0."""
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    m = re.match(r"\s*[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?)", str(v))
    return float(m.group(0)) if m else 0.0


def _error(message: str) -> QueryError:
    return QueryError(message)


_EDOM = os.strerror(errno.EDOM)  # glibc: "Numerical argument out of domain"
_ERANGE = os.strerror(errno.ERANGE)  # glibc: "Numerical result out of range"


def _math1(f: Callable[[float], float], pole: float | None = None) -> Callable[[Any], float | None]:
    def fn(value: Any) -> float | None:
        if value is None:
            return None
        x = _double(value)
        if pole is not None and x == pole:
            raise _error(_ERANGE)
        try:
            return f(x)
        except ValueError:
            raise _error(_EDOM) from None
        except (OverflowError, ZeroDivisionError):
            raise _error(_ERANGE) from None

    return fn


def _cot(x: float) -> float:
    t = math.tan(x)
    return math.copysign(math.inf, t) if t == 0 else 1.0 / t


def power(x: Any, y: Any) -> float | None:
    if x is None or y is None:
        return None
    a, b = _double(x), _double(y)
    if a == 0 and b < 0:
        raise _error(_ERANGE)  # C pow's pole error
    try:
        return math.pow(a, b)
    except ValueError:
        raise _error(_EDOM) from None
    except (OverflowError, ZeroDivisionError):
        raise _error(_ERANGE) from None


def _rounder(f: Callable[[float], float]) -> Callable[[Any], int | float | None]:
    def fn(value: Any) -> int | float | None:
        if value is None:
            return None
        if isinstance(value, int):
            return value
        d = _double(value)
        if not math.isfinite(d):  # math.ceil/floor raise on inf and nan
            return None
        x = f(d)
        return int(x) if -(2**63) <= x < 2**63 else float(x)  # beyond int64 SQLite keeps a REAL

    return fn


MATH: dict[str, Callable[..., Any]] = {
    "sqrt": _math1(math.sqrt), "acos": _math1(math.acos), "asin": _math1(math.asin),
    "atan": _math1(math.atan), "cos": _math1(math.cos), "sin": _math1(math.sin), "tan": _math1(math.tan),
    "cot": _math1(_cot), "exp": _math1(math.exp), "log": _math1(math.log, pole=0.0),
    "log10": _math1(math.log10, pole=0.0), "degrees": _math1(math.degrees),
    "radians": _math1(math.radians), "ceil": _rounder(math.ceil), "floor": _rounder(math.floor),
}


def pi() -> float:
    return math.pi
