"""Query parameters read strictly: a value that is not what the schema declares is a 400 naming
the parameter (code ``invalid``, ``detail.parameter`` its name), never a 404 or a 500 further down.

Each reader takes the request's ``query_params`` (or a Django ``GET``) and a parameter name,
and returns the default when the parameter is absent or empty.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from emportal.errors import ApplicationError

INT64_MAX = 2**63 - 1
TRUE_WORDS = ("1", "true", "yes")
FALSE_WORDS = ("0", "false", "no")

T = TypeVar("T")


def invalid_query(name: str, value: str, expected: str) -> ApplicationError:
    """The 400 for a query parameter `name` whose `value` is not `expected`."""
    return ApplicationError(f"query parameter {name}={value!r} is not {expected}", code="invalid",
                            detail={"parameter": name})


def _raw(query: Mapping[str, str], name: str) -> str | None:
    value = query.get(name)
    return None if value in (None, "") else str(value)


def query_bool(query: Mapping[str, str], name: str, default: bool = False) -> bool:
    """true/false (also 1/0, yes/no, any case)."""
    raw = _raw(query, name)
    if raw is None:
        return default
    if raw.lower() in TRUE_WORDS:
        return True
    if raw.lower() in FALSE_WORDS:
        return False
    raise invalid_query(name, raw, "true or false")


def query_int(query: Mapping[str, str], name: str, default: T, *, minimum: int = 0,
              maximum: int = INT64_MAX) -> int | T:
    """A decimal integer in minimum..maximum (inclusive)."""
    raw = _raw(query, name)
    if raw is None:
        return default
    try:
        value = int(raw) if raw.lstrip("-").isdigit() else None
    except ValueError:  # more digits than int() takes
        value = None
    if value is None or not minimum <= value <= maximum:
        raise invalid_query(name, raw, f"an integer in {minimum}..{maximum}")
    return value


def query_required_int(query: Mapping[str, str], name: str, *, minimum: int = 0, maximum: int = INT64_MAX) -> int:
    """Like :func:`query_int`, but absent is a 400 too."""
    value = query_int(query, name, None, minimum=minimum, maximum=maximum)
    if value is None:
        raise ApplicationError(f"query parameter {name} is required", code="invalid",
                               detail={"parameter": name})
    return value


def query_choice(query: Mapping[str, str], name: str, choices: Sequence[str], default: T) -> str | T:
    """One of `choices`, exactly."""
    raw = _raw(query, name)
    if raw is None:
        return default
    if raw not in choices:
        raise invalid_query(name, raw, "one of " + ", ".join(choices))
    return raw
