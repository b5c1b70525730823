"""Validation of sampler options: each error names the option, the value and what to give instead."""

from __future__ import annotations

from typing import Any

__all__ = [
    "check_bool",
    "check_choice",
    "check_fraction",
    "check_int",
    "check_probability",
    "check_positive",
    "check_switch",
]


def check_probability(owner: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < float(value) < 1.0:
        raise ValueError(f"{owner}({name}={value!r}): give a number strictly between 0 and 1.")


def check_bool(owner: str, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{owner}({name}={value!r}): give True or False.")


def check_switch(owner: str, name: str, value: Any, word: str) -> None:
    """True, False or the one string ``word`` (a switch with a third, automatic setting)."""
    if not (isinstance(value, bool) or (isinstance(value, str) and value == word)):
        raise ValueError(f"{owner}({name}={value!r}): give True, False or {word!r}.")


def check_fraction(owner: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{owner}({name}={value!r}): give a number from 0 (off) up to, not including, 1.")


def check_positive(owner: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not float(value) > 0.0:
        raise ValueError(f"{owner}({name}={value!r}): give a positive number.")


def check_int(owner: str, name: str, value: Any, minimum: int, maximum: int | None = None) -> None:
    bad = isinstance(value, bool) or not isinstance(value, int) or value < minimum
    if not bad and maximum is not None and value > maximum:
        bad = True
    if bad:
        upper = f" to {maximum}" if maximum is not None else " or more"
        raise ValueError(f"{owner}({name}={value!r}): give an integer from {minimum}{upper}.")


def check_choice(owner: str, name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{owner}({name}={value!r}): use one of {', '.join(repr(c) for c in choices)}.")
