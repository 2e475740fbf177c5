"""The public template corpus loads, lints, renders and plans (skipped when the corpus is absent)."""

import pytest

from gateway.commands.templates import run_lint
from gateway.lint import lint_paths
from gateway.plan import PlanError, UnsupportedRecordType, plan_changes
from gateway.render import ApplyContext, RenderError, render_template
from gateway.template import load_templates
from gateway.zonedata import zone_rrsets
from tests.corpus import corpus_dir, group_selections, sample_params
from tests.engine_helpers import make_zone

CORPUS = corpus_dir()
pytestmark = pytest.mark.skipif(CORPUS is None, reason="../shared/corpus is not present next to the project")

# The corpus's real defects: the loader must refuse exactly these, each for its reason.
EXPECTED_INVALID = {
    "mailaura.io.email-sending.json": "essential: must be 'Always' or 'OnApply', not 'No'",
    "beaglesecurity-staging.domainverification.json": "syncPubKeyDomain",
    "verkh.io.dmarc-reporting.json": "syncPubKeyDomain",
    "verkh.io.dmarc.json": "syncPubKeyDomain",
    "verkh.io.spf.json": "syncPubKeyDomain",
    "verkh.io.verify.json": "syncPubKeyDomain",
    "plesk.com.mail.json": "records[0]: pointsTo: '@' may only stand alone",
}


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
    assert out[-1] == "1154 templates: 1147 valid, 7 invalid, 137 warnings"
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
