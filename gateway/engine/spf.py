"""SPF merging for the SPFM pseudo-record (spec "SPF Record Merging", RFC 7208).

Merging works on terms, not strings: existing terms keep their order, new ones are
appended, nothing is duplicated, and a term that arrives with two qualifiers keeps the
least restrictive one. A record that cannot be merged is reported, never overwritten.

spfRules are "everything but the leading v=spf1 and the trailing all" (spec 2152, 2174):
rules carry mechanisms only. The record's policy (`all`) and its modifiers (`redirect=`,
`exp=`) stay the domain owner's: a merge keeps the existing `all` qualifier and a new
record ends in `~all`, so no service provider can weaken a domain's SPF policy.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

SPF_PREFIX = re.compile(r"^v=spf1(\s|$)", re.IGNORECASE)
_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9_.\-]*)=(.*)")
_MECHANISM = re.compile(r"([+?~-]?)(all|include|a|mx|ptr|ip4|ip6|exists)([:/].*)?", re.IGNORECASE)
# Least restrictive first: pass, neutral, softfail, fail.
_LENIENCY = {"+": 0, "?": 1, "~": 2, "-": 3}
_LOOKUP_MECHANISMS = {"include", "a", "mx", "ptr", "exists"}
LOOKUP_LIMIT = 10
DEFAULT_ALL = "~"


class SpfMergeError(ValueError):
    """The existing SPF record cannot be merged; applying means replacing it (a conflict)."""


class SpfRulesError(ValueError):
    """spfRules hold something other than mechanisms (`all`, a modifier, an unknown term)."""


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
        modifier = _MODIFIER.fullmatch(token)
        if modifier:
            if modifier.group(1).lower() == "redirect":
                raise SpfMergeError(f"{what} uses {token}, so other rules cannot be merged into it")
            parsed.modifiers.append(token)
            continue
        mechanism = _MECHANISM.fullmatch(token)
        if not mechanism:
            raise SpfMergeError(f"{what} has an unknown SPF term {token!r}")
        qualifier, name, argument = mechanism.group(1), mechanism.group(2).lower(), mechanism.group(3) or ""
        if name == "all":
            parsed.all_qualifier = _least_restrictive(parsed.all_qualifier, qualifier or "+")
        else:
            parsed.terms.append(_Term(qualifier, name, argument))
    return parsed


@functools.lru_cache(maxsize=4096)
def rule_problem(token: str) -> str | None:
    """Why `token` may not appear in spfRules, or None for a mechanism other than `all`."""
    if _MODIFIER.fullmatch(token):
        return f"{token!r} is a modifier; spfRules may hold mechanisms only"
    mechanism = _MECHANISM.fullmatch(token)
    if not mechanism:
        return f"{token!r} is not an SPF mechanism"
    if mechanism.group(2).lower() == "all":
        return f"{token!r} is an 'all' term; the domain's SPF policy is not the template's to set"
    return None


def rule_tokens(rules: str) -> list[str]:
    """The terms of spfRules, without a leading `v=spf1`."""
    tokens = rules.split()
    return tokens[1:] if tokens and tokens[0].lower() == "v=spf1" else tokens


def check_rules(rules: str) -> None:
    """`SpfRulesError` for the first term of `rules` that is not a mechanism other than `all`."""
    for token in rule_tokens(rules):
        problem = rule_problem(token)
        if problem:
            raise SpfRulesError(f"spfRules: {problem}")


def _least_restrictive(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if _LENIENCY[a or "+"] <= _LENIENCY[b or "+"] else b


def merge_spf(existing: str | None, rules: Iterable[str]) -> SpfMerge:
    """Merge SPFM rules into an existing `v=spf1` record (or start one). `SpfRulesError`
    when a rule is not a mechanism; `SpfMergeError` when the existing record cannot be merged."""
    return _merge_spf(existing, tuple(rules))


@functools.lru_cache(maxsize=1024)
def _merge_spf(existing: str | None, rules: tuple[str, ...]) -> SpfMerge:
    # Remembered (a refusal is not, and is worked out again): the same rules meet the same
    # few SPF records on many applies, and an SpfMerge is a value.
    for rule in rules:
        check_rules(rule)
    if existing is not None:
        tokens = existing.split()
        if not tokens or tokens[0].lower() != "v=spf1":
            raise SpfMergeError("the existing TXT record is not an SPF record")
        base = _parse(tokens[1:], "the existing SPF record")
    else:
        base = _Parsed([], None, [])
    positions = {term.key: term for term in base.terms}
    for rule in rules:
        added = _parse(rule_tokens(rule), f"spfRules {rule!r}")
        for term in added.terms:
            current = positions.get(term.key)
            if current is None:
                base.terms.append(term)
                positions[term.key] = term
            else:
                current.qualifier = _least_restrictive(current.qualifier or "+", term.qualifier or "+") or ""
    all_qualifier = base.all_qualifier or DEFAULT_ALL
    all_term = ("" if all_qualifier == "+" else all_qualifier) + "all"
    text = " ".join(["v=spf1", *(t.text() for t in base.terms), all_term, *base.modifiers])
    lookups = sum(1 for t in base.terms if t.mechanism in _LOOKUP_MECHANISMS)
    return SpfMerge(text=text, lookups=lookups)
