"""Template linting: the loader's errors plus warnings about things that load but smell.

Errors make a template unusable (the gateway refuses to onboard it); warnings name
deviations the gateway tolerates, so a DNS host can ask the service provider to fix them.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gateway.engine.template import (
    EXTENSION_TYPES, RECORD_FIELDS, Template, TemplateError, iter_template_files, parse_template, public_domain_problem,
)

# The spec's template and record keys (Domain Connect 2.3, "Template Definition"). A key
# outside these is a typo more often than an extension, and a misspelt syncPubKeyDomain
# would silently turn the signature requirement off: such a template does not onboard.
TEMPLATE_KEYS = frozenset(field.alias or name for name, field in Template.model_fields.items()) - {"source"}
# `rdata` is read as the data of a generic type, but the spec's key for it is `data`.
RECORD_KEYS = RECORD_FIELDS - {"rdata"}


class LintPathError(ValueError):
    """A PATH given to the linter that holds no templates: missing, or an empty directory."""


@dataclass(frozen=True)
class LintProblem:
    severity: str  # "error" or "warning"
    error: TemplateError

    def __str__(self) -> str:
        return f"{self.severity}: {self.error}"


@dataclass
class LintReport:
    files: int = 0
    invalid: int = 0
    problems: list[LintProblem] | None = None

    @property
    def warnings(self) -> int:
        return sum(1 for p in self.problems or () if p.severity == "warning")

    def summary(self) -> str:
        return (f"{self.files} templates: {self.files - self.invalid} valid, {self.invalid} invalid, "
                f"{self.warnings} warnings")


def check_lint_paths(paths: Iterable[str | Path]) -> None:
    """`LintPathError` naming the first path that does not exist or holds no template file."""
    for entry in map(Path, paths):
        if not entry.exists():
            raise LintPathError(f"{entry}: no such file or directory")
        if entry.is_dir() and next(iter_template_files([entry]), None) is None:
            raise LintPathError(f"{entry}: the directory holds no template files (*.json)")


def lint_paths(paths: Iterable[str | Path]) -> Iterator[tuple[Path, list[LintProblem]]]:
    """Lint every template file under `paths`; yields each file with its problems."""
    seen: dict[tuple[str, str], Path] = {}
    for path in iter_template_files(paths):
        problems = lint_file(path)
        if not any(p.severity == "error" for p in problems):
            document = json.loads(path.read_text(encoding="utf-8-sig"))
            key = (document["providerId"].lower(), document["serviceId"].lower())
            if key in seen:
                problems.append(LintProblem("error", TemplateError(
                    f"duplicate template {document['providerId']}/{document['serviceId']} "
                    f"(also in {seen[key]})", source=str(path))))
            seen.setdefault(key, path)
        yield path, problems


def lint_file(path: Path) -> list[LintProblem]:
    source = str(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        return [LintProblem("error", TemplateError(f"cannot read: {exc.strerror or exc}", source=source))]
    except ValueError as exc:
        return [LintProblem("error", TemplateError(str(exc), source=source))]
    # Typos first: a misspelt key is often why a required one looks missing ("tl" for "ttl").
    errors = [LintProblem("error", TemplateError(message, source=source, record=index, field=field))
              for index, field, message in unknown_keys(document)]
    try:
        parse_template(document, source=source)
    except TemplateError as exc:
        return [*errors, LintProblem("error", exc)]
    return errors + [LintProblem("warning", TemplateError(message, source=source, record=index, field=field))
                     for index, field, message in _warnings(document, path)]


def unknown_keys(document: dict) -> Iterator[tuple[int | None, str, str]]:
    """Keys the spec does not define, each with the known key it most likely misspells."""
    if not isinstance(document, dict):
        return
    for key in document:
        if key not in TEMPLATE_KEYS:
            yield None, key, "unknown template key" + _did_you_mean(key, TEMPLATE_KEYS)
    records = document.get("records")
    for index, record in enumerate(records if isinstance(records, list) else []):
        if not isinstance(record, dict):
            continue
        extension = str(record.get("type", "")).upper() in EXTENSION_TYPES
        for key in record:
            if key in RECORD_KEYS:
                continue
            hint = _did_you_mean(key, RECORD_KEYS)
            # Extension types (DS keyTag, ...) carry fields of their own: only near-misses are typos there.
            if not extension or hint:
                yield index, key, "unknown record key" + hint


def _did_you_mean(key: str, known: Iterable[str]) -> str:
    by_lower = {k.lower(): k for k in known}
    if key.lower() in by_lower:
        return f" (did you mean {by_lower[key.lower()]!r}?)"
    close = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.75)
    return f" (did you mean {by_lower[close[0]]!r}?)" if close else ""


def _warnings(document: dict, path: Path) -> Iterator[tuple[int | None, str | None, str]]:
    expected = f"{document['providerId']}.{document['serviceId']}.json".lower()
    if path.name != expected:
        yield None, None, f"file name should be {expected!r} (spec: providerId.serviceId.json, lower case)"
    redirect = document.get("syncRedirectDomain") or ""
    if any(part != part.strip() for part in redirect.split(",")):
        yield None, "syncRedirectDomain", "entries carry spaces around the commas (tolerated)"
    if document.get("warnPhishing") and document.get("syncPubKeyDomain"):
        yield None, "warnPhishing", ("contradicts syncPubKeyDomain (signed requests need no phishing warning); "
                                     "both are enforced: requests must be signed and the consent page warns")
    pub_key_domain = document.get("syncPubKeyDomain")
    if pub_key_domain and public_domain_problem(pub_key_domain):
        yield None, "syncPubKeyDomain", (f"{pub_key_domain!r} has an underscore label: unusual for a domain "
                                         "name, though the key's TXT lookup works (tolerated)")
    if document.get("shared") and "sharedProviderName" not in document:
        yield None, "shared", "is deprecated; set sharedProviderName as well"
    for index, record in enumerate(document["records"]):
        essential = record.get("essential")
        if essential is not None and essential not in ("Always", "OnApply"):
            yield index, "essential", f"{essential!r} should be spelled 'Always' or 'OnApply' (tolerated)"
        if record.get("type", "").upper() == "SPFM":
            rules = record.get("spfRules", "").lower().split()
            if any(rule.endswith("all") or rule == "v=spf1" for rule in rules):
                yield index, "spfRules", "should hold only the rules between 'v=spf1' and 'all'"
        mode = str(record.get("txtConflictMatchingMode") or "None")
        if record.get("txtConflictMatchingPrefix") is not None and mode.lower() != "prefix":
            yield index, "txtConflictMatchingPrefix", (f"is ignored: txtConflictMatchingMode is {mode!r}, "
                                                       "not 'Prefix'")
        if record.get("type", "").upper() == "TXT" and str(record.get("data", "")).lower().startswith("v=spf1"):
            yield index, "data", "an SPF record as plain TXT overwrites other services' rules; use SPFM"
