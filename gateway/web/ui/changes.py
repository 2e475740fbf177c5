"""How the consent pages show a change: an SPF merge as the terms it adds, not as one whole
TXT record removed and another added."""

from __future__ import annotations

SPF_PREFIX = "v=spf1"


def spf_merges(add: list[dict], remove: list[dict]) -> tuple[list[dict], list[dict], list[dict]]:
    """`add` and `remove` without the SPF records that a merge rewrites, and those merges as
    {"name", "ttl", "added", "removed", "data"}: the terms added and removed, and the new record."""
    merges, kept_add, paired = [], [], set()
    for new in add:
        old_index = next((i for i, old in enumerate(remove) if i not in paired and _same_spf_slot(old, new)), None)
        if old_index is None:
            kept_add.append(new)
            continue
        paired.add(old_index)
        old_terms, new_terms = _terms(remove[old_index]["data"]), _terms(new["data"])
        merges.append({"name": new["name"], "ttl": new["ttl"], "data": new["data"],
                       "added": [t for t in new_terms if t not in old_terms],
                       "removed": [t for t in old_terms if t not in new_terms]})
    return kept_add, [old for i, old in enumerate(remove) if i not in paired], merges


def _same_spf_slot(old: dict, new: dict) -> bool:
    return (old["type"] == new["type"] == "TXT" and old["name"] == new["name"]
            and _is_spf(old["data"]) and _is_spf(new["data"]))


def _is_spf(data: str) -> bool:
    return _text(data).lower().startswith(SPF_PREFIX)


def _terms(data: str) -> list[str]:
    return _text(data).split()[1:]


def _text(data: str) -> str:
    """TXT presentation data ("a" "b") as the one string a resolver joins it into."""
    parts, current, quoted, escaped = [], [], False, False
    for char in data:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            if quoted:
                parts.append("".join(current))
                current = []
            quoted = not quoted
        elif quoted:
            current.append(char)
    return "".join(parts) if parts else data
