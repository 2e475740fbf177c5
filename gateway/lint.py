"""Template linting: the loader's errors plus warnings about things that load but smell.

Errors make a template unusable (the gateway refuses to onboard it); warnings name
deviations the gateway tolerates, so a DNS host can ask the service provider to fix them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gateway.template import TemplateError, iter_template_files, parse_template, public_domain_problem


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
        parse_template(document, source=source)
    except (OSError, ValueError) as exc:
        error = exc if isinstance(exc, TemplateError) else TemplateError(str(exc), source=source)
        return [LintProblem("error", error)]
    return [LintProblem("warning", TemplateError(message, source=source, record=index, field=field))
            for index, field, message in _warnings(document, path)]


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
        if record.get("type", "").upper() == "TXT" and str(record.get("data", "")).lower().startswith("v=spf1"):
            yield index, "data", "an SPF record as plain TXT overwrites other services' rules; use SPFM"
