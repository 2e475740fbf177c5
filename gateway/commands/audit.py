"""`dcgw audit`: read the audit log: every apply, revert, grant, revocation and refusal.

    dcgw audit [--config FILE] [--domain DOMAIN] [--since ISO-TIME] [--json]

Oldest first. `--domain` keeps the entries of DOMAIN and the names under it; `--since`
those at or after a time such as 2026-12-01T09:00:00Z (a time without a zone is UTC).
`--json` prints one JSON array of {"id", "at", "action", "actor", "domain", "detail"},
written as it is read, so a long log never has to fit in memory.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone

from gateway.commands.common import add_command, add_config_option, load_config_from

EXIT_INVALID = 2
BATCH = 500


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "audit", __doc__)
    add_config_option(parser)
    parser.add_argument("--domain", metavar="DOMAIN", help="only DOMAIN and the names under it")
    parser.add_argument("--since", metavar="ISO-TIME", type=iso_time, help="only entries at or after this time")
    parser.add_argument("--json", action="store_true", help="print a JSON array")
    parser.set_defaults(func=run)


def iso_time(text: str) -> datetime:
    """An argparse type: an ISO 8601 time, UTC when it names no zone."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time such as 2026-12-01T09:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def run(args: argparse.Namespace) -> int:
    from gateway.engine.domains import DomainError, zone_text
    from gateway.infra.config import ConfigError
    from gateway.state.database import open_state_store

    try:
        domain = zone_text(args.domain) if args.domain else None
    except DomainError as exc:
        print(f"dcgw audit: --domain: {exc}", file=sys.stderr)
        return EXIT_INVALID
    try:
        store = open_state_store(load_config_from(args).database)
    except ConfigError as exc:
        print(f"dcgw audit: {exc}", file=sys.stderr)
        return EXIT_INVALID
    try:
        entries = audit_entries(store, domain, args.since)
        (print_json if args.json else print_table)(entries, sys.stdout)
    finally:
        store.close()
    return 0


def audit_entries(store, domain: str | None, since: datetime | None):
    """The matching entries, oldest first, read in batches."""
    from sqlalchemy import or_, select

    from gateway.state.models import AuditEntry

    query = select(AuditEntry).order_by(AuditEntry.id)
    if domain is not None:
        escaped = domain.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(or_(AuditEntry.domain == domain, AuditEntry.domain.like(f"%.{escaped}", escape="\\")))
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    with store.sessions() as session:
        for entry in session.scalars(query.execution_options(yield_per=BATCH)):
            yield entry_json(entry)


def entry_json(entry) -> dict:
    at = entry.at if entry.at.tzinfo else entry.at.replace(tzinfo=timezone.utc)  # SQLite drops the zone
    return {"id": entry.id, "at": at.isoformat(timespec="seconds"), "action": entry.action, "actor": entry.actor,
            "domain": entry.domain, "detail": entry.detail}


def print_json(entries, stream) -> None:
    stream.write("[")
    for index, entry in enumerate(entries):
        stream.write(("," if index else "") + "\n  " + json.dumps(entry, ensure_ascii=False))
    stream.write("\n]\n")


def print_table(entries, stream) -> None:
    count = 0
    for entry in entries:
        count += 1
        detail = json.dumps(entry["detail"], ensure_ascii=False, separators=(",", ":")) if entry["detail"] else ""
        stream.write(f"{entry['at']}  {entry['action']:<10} {entry['actor']:<24} {entry['domain'] or '-':<24} "
                     f"{detail}".rstrip() + "\n")
    if not count:
        print("no audit entries match", file=sys.stderr)
