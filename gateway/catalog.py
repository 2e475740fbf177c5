"""The onboarded templates: loaded through the linter at start-up, reloaded in place on SIGHUP.

A template file that fails lint is left out at start-up; on a reload it keeps the version
loaded before (one service provider's broken edit must not take its service down), and a
file that is gone takes its template with it. The catalog is one dict shared by every
route, updated in place, so a reload needs no restart and no new app.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from gateway.config import ConfigError
from gateway.lint import lint_file
from gateway.template import Template, TemplateError, iter_template_files, load_template

log = logging.getLogger(__name__)

TemplateCatalog = dict[tuple[str, str], Template]


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
    catalog: TemplateCatalog = {}
    if directory is not None:
        report = reload_catalog(catalog, directory)
        log.info("%d templates onboarded from %s", report.loaded, directory)
    return catalog


def reload_catalog(catalog: TemplateCatalog, directory: Path) -> ReloadReport:
    """Bring `catalog` in line with `directory`, in place; what changed."""
    if not directory.is_dir():
        raise ConfigError(f"gateway.templates: {directory} is not a directory")
    previous_by_source = {template.source: template for template in catalog.values()}
    fresh: TemplateCatalog = {}
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
    for key in [k for k in catalog if k not in fresh]:
        report.removed.append("/".join(key))
        del catalog[key]
    for key, template in fresh.items():
        old = catalog.get(key)
        if old is None:
            report.added.append("/".join(key))
        elif old != template:
            report.changed.append("/".join(key))
    catalog.update(fresh)
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
