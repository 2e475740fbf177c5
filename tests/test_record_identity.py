"""Record identities and name keys: the planner's cheap stand-ins for dnspython's comparisons
must agree with them exactly, whatever the case, the type, or relative and absolute names."""

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
from hypothesis import given
from hypothesis import strategies as st

from backends.records import name_key, rdata_identity

LABELS = st.sampled_from(["www", "WWW", "Mail", "mail", "a", "b-1", "_dmarc", "xn--bcher-kva"])
NAMES = st.builds(lambda labels, absolute: ".".join(labels) + ("." if absolute else ""),
                  st.lists(LABELS, min_size=1, max_size=3), st.booleans())
NUMBERS = st.sampled_from([0, 1, 10, 65535])


def _rdata(rtype: str, text: str) -> dns.rdata.Rdata:
    # relativize=False with no origin keeps a relative name relative.
    return dns.rdata.from_text(dns.rdataclass.IN, rtype, text, origin=None, relativize=False)


RDATAS = st.one_of(
    st.builds(lambda t, n: _rdata(t, n), st.sampled_from(["CNAME", "NS", "PTR", "DNAME"]), NAMES),
    st.builds(lambda p, n: _rdata("MX", f"{p} {n}"), NUMBERS, NAMES),
    st.builds(lambda p, w, port, n: _rdata("SRV", f"{p} {w} {port} {n}"), NUMBERS, NUMBERS, NUMBERS, NAMES),
    st.builds(lambda a: _rdata("A", a), st.sampled_from(["192.0.2.1", "192.0.2.2"])),
    st.builds(lambda a: _rdata("AAAA", a), st.sampled_from(["2001:db8::1", "2001:DB8:0::1", "2001:db8::2"])),
    st.builds(lambda v: _rdata("TXT", v), st.sampled_from(['"v=spf1 -all"', '"v=spf1" " -all"', '"x"', '"X"'])),
    st.builds(lambda v: _rdata("CAA", v), st.sampled_from(['0 issue "ca.example"', '0 issue "CA.example"'])),
)


@given(RDATAS, RDATAS)
def test_identity_is_equal_exactly_when_the_rdata_are(a, b):
    same_txt = a.rdtype == b.rdtype == dns.rdatatype.TXT and b"".join(a.strings) == b"".join(b.strings)
    assert (rdata_identity(a) == rdata_identity(b)) == (a == b or same_txt)


@given(NAMES, NAMES)
def test_name_keys_compare_as_names_do(a_text, b_text):
    a, b = dns.name.from_text(a_text, origin=None), dns.name.from_text(b_text, origin=None)
    assert (name_key(a) == name_key(b)) == (a == b)
    if a.is_absolute() and b.is_absolute():
        assert (name_key(a) < name_key(b)) == (a < b)
        assert (name_key(a)[:len(name_key(b))] == name_key(b)) == a.is_subdomain(b)


@given(st.lists(RDATAS, min_size=1, max_size=4), st.integers(0, 86400))
def test_make_rrset_is_adding_one_by_one(rdatas, ttl):
    import dns.rrset

    from backends.records import make_rrset
    same_type = [r for r in rdatas if r.rdtype == rdatas[0].rdtype]
    expected = dns.rrset.RRset(dns.name.from_text("x.example."), dns.rdataclass.IN, rdatas[0].rdtype)
    for rdata in same_type:
        expected.add(rdata, ttl)
    made = make_rrset(dns.name.from_text("x.example."), ttl, same_type)
    assert list(made) == list(expected) and made.ttl == expected.ttl and made == expected
