"""The public template corpus (../shared/corpus), when present, and plausible variable values."""

from __future__ import annotations

import os
import re
from pathlib import Path

from gateway.engine.template import VARIABLE, WHOLE_VARIABLE, Template

# DCGW_CORPUS points elsewhere, e.g. from a second checkout of the project.
CORPUS = Path(os.environ.get("DCGW_CORPUS") or
              Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "templates")


def corpus_dir() -> Path | None:
    return CORPUS if CORPUS.is_dir() else None


def sample_params(template: Template) -> dict[str, str]:
    """A value for each variable, guessed from where it is first used."""
    params: dict[str, str] = {}
    # Addresses are the strictest context, so a variable used as one gets an address first.
    for record in sorted(template.records, key=lambda r: r.type not in ("A", "AAAA")):
        fields = {"host": record.host, "pointsTo": record.points_to, "target": record.target,
                  "data": record.data, "spfRules": record.spf_rules, "service": record.service,
                  "protocol": record.protocol, "ttl": record.ttl, "priority": record.priority,
                  "weight": record.weight, "port": record.port}
        for field, value in fields.items():
            if not isinstance(value, str):
                continue
            for name in VARIABLE.findall(value):
                if name not in params:
                    # Distinct values keep variable host names distinct, as real callers' are.
                    params[name] = _guess(record.type, field, value, name).replace("sub1", f"sub{len(params)}")
    return params


def group_selections(template: Template) -> list[frozenset[str] | None]:
    """Every group on its own (templates offer alternatives in groups), or the whole template."""
    groups = sorted(template.group_ids)
    return [frozenset([g]) for g in groups] if groups else [None]


def _guess(rtype: str, field: str, value: str, name: str) -> str:
    whole = bool(WHOLE_VARIABLE.match(value.strip()))
    if field in ("ttl", "priority", "weight", "port"):
        return "10"
    if field == "protocol":
        return "_tcp"
    if field == "service":
        return "_sip"
    if rtype in ("REDIR301", "REDIR302") and field == "target":
        return "https://www.example.net/" if whole else "www"
    if field == "host" or (field in ("pointsTo", "target") and not whole):
        return "sub1"
    if rtype == "A" and field == "pointsTo":
        return "192.0.2.1" if whole else "1"
    if rtype == "AAAA" and field == "pointsTo":
        return "2001:db8::1"
    if field in ("pointsTo", "target"):
        return "target.example.net"
    if field == "spfRules":
        return "include:spf.example.net" if whole else "spf.example.net"
    if rtype == "CAA":
        return {"flags": "0", "tag": "issue"}.get(name, "ca.example.net")
    if re.search(r"ip|addr", name, re.IGNORECASE) and whole:
        return "192.0.2.1"
    return "token-123"
