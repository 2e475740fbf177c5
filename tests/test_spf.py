"""SPF merging term by term (spec "SPF Record Merging", RFC 7208)."""

import pytest

from gateway.engine.spf import SpfMergeError, SpfRulesError, is_spf, merge_spf


@pytest.mark.parametrize("existing, rules, expected", [
    (None, ["a include:spf.example.net"], "v=spf1 a include:spf.example.net ~all"),
    ("v=spf1 a include:spf.example.org ~all", ["a include:spf.hoster.example"],
     "v=spf1 a include:spf.example.org include:spf.hoster.example ~all"),
    ("v=spf1 mx -all", ["include:x.example"], "v=spf1 mx include:x.example -all"),
    ("v=spf1 -include:x.example -all", ["include:x.example"], "v=spf1 include:x.example -all"),
    ("v=spf1 ~include:x.example", ["-include:x.example"], "v=spf1 ~include:x.example ~all"),
    ("V=SPF1 IP4:192.0.2.0/24 ~ALL", ["ip4:192.0.2.0/24"], "v=spf1 ip4:192.0.2.0/24 ~all"),
    ("v=spf1 a -all exp=why.example", ["mx"], "v=spf1 a mx -all exp=why.example"),
    ("v=spf1 include:old.example ?all", ["mx"], "v=spf1 include:old.example mx ?all"),
    (None, ["v=spf1 include:a.example"], "v=spf1 include:a.example ~all"),
    (None, ["include:a.example", "include:b.example", "include:a.example"],
     "v=spf1 include:a.example include:b.example ~all"),
])
def test_merge(existing, rules, expected):
    assert merge_spf(existing, rules).text == expected


@pytest.mark.parametrize("existing, rules, words", [
    ("v=spf1 redirect=_spf.example.net", ["include:a.example"], "redirect="),
    ("v=spf1 include:a.example bogus ~all", ["mx"], "unknown SPF term 'bogus'"),
    ("v=DKIM1; k=rsa", ["mx"], "not an SPF record"),
])
def test_unmergeable(existing, rules, words):
    with pytest.raises(SpfMergeError, match=words):
        merge_spf(existing, rules)


def test_lookup_count_covers_dns_mechanisms_only():
    merge = merge_spf("v=spf1 a mx ptr exists:%{i}.x.example ip4:192.0.2.1 ip6:2001:db8::1 ~all",
                      [" ".join(f"include:s{i}.example" for i in range(7))])
    assert merge.lookups == 11 and merge.over_lookup_limit


def test_is_spf():
    assert is_spf("v=spf1 -all") and is_spf("V=SPF1") and not is_spf("v=spf10") and not is_spf("x v=spf1")


@pytest.mark.parametrize("rules, words", [
    ("+all", "'all' term"), ("include:a.example -all", "'all' term"), ("all", "'all' term"),
    ("redirect=evil.test", "modifier"), ("exp=why.example", "modifier"), ("bogus", "not an SPF mechanism"),
])
def test_rules_hold_mechanisms_only_so_the_policy_stays_the_domain_owners(rules, words):
    """spfRules are everything but v=spf1 and all (spec 2152, 2174): a rule may not set the
    record's policy, nor redirect it, whatever record it is merged into."""
    for existing in (None, "v=spf1 include:old.example -all"):
        with pytest.raises(SpfRulesError, match=words):
            merge_spf(existing, [rules])
