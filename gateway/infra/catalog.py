"""The onboarded templates: loaded through the linter at start-up, reloaded in place on SIGHUP.

A template file that fails lint is left out at start-up; on a reload it keeps the version
loaded before (one service provider's broken edit must not take its service down), and a
file that is gone takes its template with it. The catalog is one object shared by every
route; a reload swaps the dict inside it in one step, so a request sees the old templates
or the new ones, never half of each, and a reload needs no restart and no new app.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gateway.engine.lint import lint_file
from gateway.engine.template import Template, TemplateError, iter_template_files, load_template
from gateway.infra.config import ConfigError

log = logging.getLogger(__name__)

TemplateKey = tuple[str, str]


class TemplateCatalog(Mapping[TemplateKey, Template]):
    """The onboarded templates by (providerId, serviceId); read-only but for `replace`."""

    def __init__(self, templates: Mapping[TemplateKey, Template] | None = None) -> None:
        self._templates: dict[TemplateKey, Template] = dict(templates or {})

    def replace(self, templates: dict[TemplateKey, Template]) -> None:
        self._templates = templates  # one assignment: readers hold the old dict or the new

    def __getitem__(self, key: TemplateKey) -> Template:
        return self._templates[key]

    def get(self, key, default=None):
        return self._templates.get(key, default)

    def __iter__(self) -> Iterator[TemplateKey]:
        return iter(self._templates)

    def __len__(self) -> int:
        return len(self._templates)

    def values(self):
        return self._templates.values()

    def items(self):
        return self._templates.items()

    def keys(self):
        return self._templates.keys()


@dataclass
class ReloadReport:
    loaded: int = 0
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # failed lint; the previous version stays
    left_out: list[str] = field(default_factory=list)  # failed lint, no previous version
    finished_at: float = 0.0

    def summary(self) -> str:
        return (f"{self.loaded} loaded ({len(self.added)} added, {len(self.changed)} changed, "
                f"{len(self.removed)} removed), {len(self.kept)} kept at their previous version, "
                f"{len(self.left_out)} left out")


def load_catalog(directory: Path | None) -> TemplateCatalog:
    """The onboarded templates at start-up; `ConfigError` when the directory is missing."""
    catalog = TemplateCatalog()
    if directory is not None:
        report = reload_catalog(catalog, directory)
        log.info("%d templates onboarded from %s", report.loaded, directory)
    return catalog


def reload_catalog(catalog: TemplateCatalog, directory: Path) -> ReloadReport:
    """Bring `catalog` in line with `directory`, in place; what changed."""
    if not directory.is_dir():
        raise ConfigError(f"gateway.templates: {directory} is not a directory")
    previous_by_source = {template.source: template for template in catalog.values()}
    fresh: dict[TemplateKey, Template] = {}
    report = ReloadReport()
    for path in iter_template_files([directory]):
        template = _checked(path, report, previous_by_source.get(str(path)))
        if template is None:
            continue
        if template.key in fresh:
            log.warning("template left out: %s: duplicate %s/%s, also in %s", path, *template.key,
                        fresh[template.key].source)
            report.left_out.append(str(path))
            continue
        fresh[template.key] = template
    report.removed = ["/".join(key) for key in catalog if key not in fresh]
    for key, template in fresh.items():
        old = catalog.get(key)
        if old is None:
            report.added.append("/".join(key))
        elif old != template:
            report.changed.append("/".join(key))
    catalog.replace(fresh)
    report.loaded = len(catalog)
    report.finished_at = time.time()
    return report


def _checked(path: Path, report: ReloadReport, previous: Template | None) -> Template | None:
    """The template in `path` when it passes lint, else its previous version (or None)."""
    errors = [problem for problem in lint_file(path) if problem.severity == "error"]
    if not errors:
        try:
            return load_template(path)
        except TemplateError as exc:  # changed between the lint and the load
            errors = [exc]
    reason = "; ".join(str(getattr(e, "error", e)) for e in errors)
    if previous is not None:
        log.warning("template kept at its previous version: %s", reason)
        report.kept.append(str(path))
        return previous
    log.warning("template left out: %s", reason)
    report.left_out.append(str(path))
    return None
