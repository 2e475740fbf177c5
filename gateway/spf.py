"""SPF merging for the SPFM pseudo-record (spec "SPF Record Merging", RFC 7208).

Merging works on terms, not strings: existing terms keep their order, new ones are
appended, nothing is duplicated, and a term that arrives with two qualifiers keeps the
least restrictive one. A record that cannot be merged is reported, never overwritten.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

SPF_PREFIX = re.compile(r"^v=spf1(\s|$)", re.IGNORECASE)
_MODIFIER = re.compile(r"^([A-Za-z][A-Za-z0-9_.\-]*)=(.*)$")
_MECHANISM = re.compile(r"^([+?~-]?)(all|include|a|mx|ptr|ip4|ip6|exists)([:/].*)?$", re.IGNORECASE)
# Least restrictive first: pass, neutral, softfail, fail.
_LENIENCY = {"+": 0, "?": 1, "~": 2, "-": 3}
_LOOKUP_MECHANISMS = {"include", "a", "mx", "ptr", "exists"}
LOOKUP_LIMIT = 10
DEFAULT_ALL = "~"


class SpfMergeError(ValueError):
    """The existing SPF record cannot be merged; applying means replacing it (a conflict)."""


@dataclass
class _Term:
    qualifier: str  # "" when implicit
    mechanism: str  # lower-case mechanism name
    argument: str  # ":..." or "/..." as written, or ""

    @property
    def key(self) -> str:
        return term_key(self.mechanism + self.argument)

    def text(self) -> str:
        qualifier = "" if self.qualifier in ("", "+") else self.qualifier
        return f"{qualifier}{self.mechanism}{self.argument}"


@dataclass
class _Parsed:
    terms: list[_Term]
    all_qualifier: str | None
    modifiers: list[str]


@dataclass(frozen=True)
class SpfMerge:
    text: str
    lookups: int

    @property
    def over_lookup_limit(self) -> bool:
        return self.lookups > LOOKUP_LIMIT


def is_spf(text: str) -> bool:
    return bool(SPF_PREFIX.match(text))


def term_key(token: str) -> str:
    """A term's identity as merging compares terms: without its qualifier, in any case."""
    return (token[1:] if token[:1] in "+-~?" else token).lower()


def _parse(tokens: Iterable[str], what: str) -> _Parsed:
    parsed = _Parsed([], None, [])
    for token in tokens:
        modifier = _MODIFIER.match(token)
        if modifier:
            if modifier.group(1).lower() == "redirect":
                raise SpfMergeError(f"{what} uses {token}, so other rules cannot be merged into it")
            parsed.modifiers.append(token)
            continue
        mechanism = _MECHANISM.match(token)
        if not mechanism:
            raise SpfMergeError(f"{what} has an unknown SPF term {token!r}")
        qualifier, name, argument = mechanism.group(1), mechanism.group(2).lower(), mechanism.group(3) or ""
        if name == "all":
            parsed.all_qualifier = _least_restrictive(parsed.all_qualifier, qualifier or "+")
        else:
            parsed.terms.append(_Term(qualifier, name, argument))
    return parsed


def _least_restrictive(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if _LENIENCY[a or "+"] <= _LENIENCY[b or "+"] else b


def merge_spf(existing: str | None, rules: Iterable[str]) -> SpfMerge:
    """Merge SPFM rules into an existing `v=spf1` record (or start one)."""
    if existing is not None:
        tokens = existing.split()
        if not tokens or tokens[0].lower() != "v=spf1":
            raise SpfMergeError("the existing TXT record is not an SPF record")
        base = _parse(tokens[1:], "the existing SPF record")
    else:
        base = _Parsed([], None, [])
    positions = {term.key: term for term in base.terms}
    all_qualifier = base.all_qualifier
    for rule in rules:
        tokens = rule.split()
        if tokens and tokens[0].lower() == "v=spf1":
            tokens = tokens[1:]
        added = _parse(tokens, f"spfRules {rule!r}")
        for term in added.terms:
            current = positions.get(term.key)
            if current is None:
                base.terms.append(term)
                positions[term.key] = term
            else:
                current.qualifier = _least_restrictive(current.qualifier or "+", term.qualifier or "+") or ""
        for modifier in added.modifiers:
            if modifier.lower() not in (m.lower() for m in base.modifiers):
                base.modifiers.append(modifier)
        if added.all_qualifier is not None:
            all_qualifier = _least_restrictive(all_qualifier, added.all_qualifier)
    all_term = ("" if (all_qualifier or DEFAULT_ALL) == "+" else (all_qualifier or DEFAULT_ALL)) + "all"
    text = " ".join(["v=spf1", *(t.text() for t in base.terms), all_term, *base.modifiers])
    lookups = sum(1 for t in base.terms if t.mechanism in _LOOKUP_MECHANISMS)
    return SpfMerge(text=text, lookups=lookups)
