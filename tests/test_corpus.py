"""The public template corpus loads, lints, renders and plans (skipped when the corpus is absent)."""

import json
from pathlib import Path

import pytest

from backends.zonedata import zone_rrsets
from gateway.cli import main as cli_main
from gateway.commands.templates import run_lint
from gateway.engine.lint import lint_paths
from gateway.engine.plan import PlanError, UnsupportedRecordType, plan_changes
from gateway.engine.render import ApplyContext, RenderError, render_template
from gateway.engine.template import load_template, load_templates
from tests.corpus import corpus_dir, group_selections, sample_params
from tests.engine_helpers import make_zone

CORPUS = corpus_dir()
pytestmark = pytest.mark.skipif(CORPUS is None, reason="../shared/corpus is not present next to the project")

# The corpus's real defects: the loader must refuse exactly these, each for its reason.
EXPECTED_INVALID = {
    "mailaura.io.email-sending.json": "essential: must be 'Always' or 'OnApply', not 'No'",
    "plesk.com.mail.json": "records[0]: pointsTo: '@' may only stand alone",
}
# Their syncPubKeyDomain has an underscore label: unusual, but a name a TXT key can live at.
UNDERSCORE_KEY_DOMAIN = ["beaglesecurity-staging.domainverification", "verkh.io.dmarc",
                         "verkh.io.dmarc-reporting", "verkh.io.spf", "verkh.io.verify"]
# Alternative groups repeat one CNAME; with every group applied it is one record.
CNAME_REPEATED_IN_GROUPS = ["freshworks.com.domain-authentication", "goentri.com.durable", "goentri.com.prometheus",
                            "goentri.com.the-com-subdomain", "goentri.com.the-com-v2"]
# Different CNAMEs at one name, or a CNAME beside other data, when every group is applied.
CNAME_THAT_CANNOT_COEXIST = {"goentri.com.showit": "2 CNAME records at www.example.com.",
                             "streamnode.io.website": "a CNAME beside A at shop.example.com.",
                             "brimble.io.domain": "a CNAME beside A at shop.example.com."}


def test_corpus_loads_except_its_known_defects():
    templates, errors = load_templates([CORPUS])
    failed = {e.source.rsplit("/", 1)[-1]: str(e) for e in errors}
    assert set(failed) == set(EXPECTED_INVALID)
    for name, words in EXPECTED_INVALID.items():
        assert words in failed[name]
    assert len(templates) == 1154 - len(EXPECTED_INVALID)


def test_lint_flags_warn_phishing_beside_sync_pub_key_domain():
    warnings = [str(p) for _, problems in lint_paths([CORPUS / "microsoft.com.o365.json"]) for p in problems]
    assert any("warnPhishing" in w and "contradicts syncPubKeyDomain" in w for w in warnings)


def test_lint_command_over_the_corpus(capsys):
    class Args:
        paths = [str(CORPUS)]
        errors_only = True
    assert run_lint(Args()) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "1154 templates: 1152 valid, 2 invalid, 142 warnings"
    assert len(out) == 1 + len(EXPECTED_INVALID)


def test_every_valid_corpus_template_renders_and_plans():
    templates, _ = load_templates([CORPUS])
    zone = make_zone('@ 300 IN TXT "v=spf1 include:existing.example ~all"\nwww 300 IN CNAME old.example.net.\n')
    rrsets = zone_rrsets(zone)
    failures = []
    planned = 0
    for template in templates.values():
        for groups in group_selections(template):
            context = ApplyContext("example.com", host="shop" if template.host_required else "",
                                   params=sample_params(template), group_ids=groups)
            try:
                plan_changes(render_template(template, context), rrsets, zone.origin)
                planned += 1
            except UnsupportedRecordType:
                continue  # APEXCNAME/REDIR templates need a backend that implements them
            except (RenderError, PlanError) as exc:
                failures.append(f"{template.source} groups={sorted(groups or [])}: {exc}")
    assert planned > 1100
    assert failures == []


def _apply_with_every_group(name: str, tmp_path: Path, capsys) -> tuple[dict, str]:
    """`dcgw preview --json` then `dcgw apply --yes` of corpus template `name`, all groups, on a zone file."""
    path = CORPUS / f"{name}.json"
    template = load_template(path)
    zone_file = tmp_path / "example.com.zone"
    zone_file.write_text("$ORIGIN example.com.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n"
                         "@ IN NS ns1\nns1 IN A 192.0.2.53\n")
    config = tmp_path / "dcgw.toml"
    config.write_text(f'[[backends]]\nname = "files"\ndriver = "zonefile"\ndirectory = "{tmp_path}"\n')
    options = ["--domain", "example.com", "--template", str(path), "--host", "shop" if template.host_required else ""]
    for param, value in sample_params(template).items():
        options += ["--param", f"{param}={value}"]
    assert cli_main(["preview", "--zone", str(zone_file), "--json", *options]) == 0, capsys.readouterr().err
    preview = json.loads(capsys.readouterr().out)
    assert cli_main(["apply", "--config", str(config), "--yes", *options]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert cli_main(["apply", "--config", str(config), "--yes", *options]) == 0
    assert "nothing to change" in capsys.readouterr().out
    return preview, zone_file.read_text()


@pytest.mark.parametrize("name", UNDERSCORE_KEY_DOMAIN)
def test_underscore_sync_pub_key_domain_loads_lints_valid_and_applies(name, tmp_path, capsys):
    [(_, problems)] = lint_paths([CORPUS / f"{name}.json"])
    assert [p.severity for p in problems if "syncPubKeyDomain" in str(p)] == ["warning"]
    assert not any(p.severity == "error" for p in problems)
    template = load_template(CORPUS / f"{name}.json")
    assert template.sync_pub_key_domain.startswith("_domainconnect.")
    preview, zone_text = _apply_with_every_group(name, tmp_path, capsys)
    assert preview["add"]
    for record in preview["add"]:
        assert f"{record['name']} {record['ttl']} IN {record['type']} {record['data']}" in zone_text


@pytest.mark.parametrize("name", CNAME_REPEATED_IN_GROUPS)
def test_cname_repeated_in_alternative_groups_applies_as_one_record(name, tmp_path, capsys):
    preview, zone_text = _apply_with_every_group(name, tmp_path, capsys)
    cnames = [r for r in preview["add"] if r["type"] == "CNAME"]
    assert cnames and len({r["name"] for r in cnames}) == len(cnames)
    for record in cnames:
        assert zone_text.count(f"\n{record['name']} ") == 1
        assert f"{record['name']} {record['ttl']} IN CNAME {record['data']}" in zone_text


@pytest.mark.parametrize("name", CNAME_THAT_CANNOT_COEXIST)
def test_cname_that_cannot_coexist_stays_refused_with_every_group(name):
    template = load_template(CORPUS / f"{name}.json")
    context = ApplyContext("example.com", host="shop" if template.host_required else "",
                           params=sample_params(template))
    zone = make_zone()
    with pytest.raises(PlanError) as error:
        plan_changes(render_template(template, context), zone_rrsets(zone), zone.origin)
    assert CNAME_THAT_CANNOT_COEXIST[name] in str(error.value)


def test_every_corpus_plan_is_byte_for_byte_the_golden_one():
    from tests.plan_golden import corpus_plans, read_golden
    plans, golden = corpus_plans(CORPUS), read_golden()
    assert set(plans) == set(golden)
    differing = [label for label in golden if plans[label] != golden[label]]
    assert differing == [], f"{len(differing)} plans differ, first {differing[0]}:\n{plans[differing[0]]}"
