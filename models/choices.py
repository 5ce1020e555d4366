"""Refusing a value outside a closed set, with the same words everywhere it happens.

The push feed refuses an unknown channel, district or kind in a subscribe op, and the CLI an
unknown district, indicator, kind, severity or state in a filter option, both with::

    refusal(["industrial-eas"], ["harbour", "industrial-east"], "district")
    # "district 'industrial-eas' is not one of ['harbour', 'industrial-east']"
    check_choices(["critcal"], SEVERITIES, "--severity")   # ValueError with that message

so a typo fails loudly, listing what is valid, instead of selecting nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

__all__ = ["check_choices", "refusal"]


def refusal(values: Iterable[str], known: Collection[str], what: str) -> str | None:
    """The message refusing the first of ``values`` not in ``known``; None when all are."""
    unknown = sorted(set(values).difference(known))
    if not unknown:
        return None
    return f"{what} {unknown[0]!r} is not one of {sorted(known)}"


def check_choices(values: Iterable[str | None], known: Collection[str], what: str) -> None:
    """Raise ValueError with :func:`refusal`'s message if a value (None: absent) is unknown."""
    msg = refusal((value for value in values if value is not None), known, what)
    if msg is not None:
        raise ValueError(msg)
