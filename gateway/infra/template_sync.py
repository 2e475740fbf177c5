"""Bringing templates from a checkout of the public Templates repository into `gateway.templates`.

    plan = plan_sync(source_dir, target_dir, allowed={"example.com"})
    plan.write()   # only after a person has seen plan.lines()

Only providers in the allowlist are touched (without one: the providers found in the
source). Each source template is linted first and an invalid one is never copied. A
template in the target whose provider is in scope but that the source no longer has is
removed; templates of other providers are left alone.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from backends.files import durable_temporary
from gateway.engine.lint import lint_file
from gateway.engine.template import iter_template_files

# providerId and serviceId become a file name: nothing that could leave the directory.
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MAX_TEMPLATE_BYTES = 256 * 1024


@dataclass(frozen=True)
class SyncItem:
    key: tuple[str, str]
    target: Path
    source: Path | None = None  # None: to remove


@dataclass
class SyncPlan:
    added: list[SyncItem] = field(default_factory=list)
    changed: list[SyncItem] = field(default_factory=list)
    removed: list[SyncItem] = field(default_factory=list)
    unchanged: int = 0
    invalid: list[str] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.changed or self.removed)

    def lines(self) -> list[str]:
        rows = [f"+ {'/'.join(i.key)}  ({i.source})" for i in self.added]
        rows += [f"~ {'/'.join(i.key)}  ({i.source})" for i in self.changed]
        rows += [f"- {'/'.join(i.key)}  ({i.target})" for i in self.removed]
        rows += [f"invalid, not copied: {problem}" for problem in self.invalid]
        rows.append(f"{len(self.added)} to add, {len(self.changed)} to change, {len(self.removed)} to remove, "
                    f"{self.unchanged} unchanged, {len(self.invalid)} invalid")
        return rows

    def write(self) -> None:
        """Copy the added and changed templates in (each file replaced atomically), remove the removed."""
        for item in (*self.added, *self.changed):
            _replace(item.target, item.source.read_bytes())
        for item in self.removed:
            item.target.unlink(missing_ok=True)


def read_allowlist(path: Path) -> set[str]:
    """providerIds, one a line; blank lines and `#` comments ignored."""
    entries = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            entries.add(entry.lower())
    return entries


def plan_sync(source: Path, target: Path, allowed: Iterable[str] | None = None) -> SyncPlan:
    allow = {a.lower() for a in allowed} if allowed is not None else None
    plan = SyncPlan()
    incoming: dict[tuple[str, str], Path] = {}
    for path in iter_template_files([source]):
        key = _key(path)
        if key is None or (allow is not None and key[0] not in allow):
            continue
        errors = [str(p.error) for p in lint_file(path) if p.severity == "error"]
        if not all(SAFE_ID.fullmatch(part) for part in key):
            errors.append(f"{path}: providerId/serviceId {'/'.join(key)!r} cannot be a file name")
        if errors:
            plan.invalid.append("; ".join(errors))
            continue
        incoming.setdefault(key, path)
    present = {key: path for path in iter_template_files([target]) if (key := _key(path)) is not None}
    in_scope = allow if allow is not None else {key[0] for key in incoming}
    for key, path in sorted(incoming.items()):
        existing = present.get(key)
        if existing is None:
            plan.added.append(SyncItem(key, target / f"{key[0]}.{key[1]}.json", path))
        elif existing.read_bytes() != path.read_bytes():
            plan.changed.append(SyncItem(key, existing, path))
        else:
            plan.unchanged += 1
    for key, path in sorted(present.items()):
        if key[0] in in_scope and key not in incoming:
            plan.removed.append(SyncItem(key, path))
    return plan


def _key(path: Path) -> tuple[str, str] | None:
    """(providerId, serviceId) in lower case, or None for a file that is no template."""
    try:
        if path.stat().st_size > MAX_TEMPLATE_BYTES:
            return None
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict):
        return None
    provider, service = document.get("providerId"), document.get("serviceId")
    if not isinstance(provider, str) or not isinstance(service, str):
        return None
    return provider.lower(), service.lower()


def _replace(path: Path, data: bytes) -> None:
    temporary = durable_temporary(path, data)
    try:
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
