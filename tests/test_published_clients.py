"""The published Service Provider clients from PyPI, end to end, against `dcgw serve` in front
of a real PowerDNS: `domain-connect` 0.0.11 (the reference Python client) and
`domain-connect-dyndns` 0.0.9 (DomainConnectDDNS).

Both find the gateway as any client would: the `_domainconnect` TXT record (served by
PowerDNS; their dnspython resolvers are pointed at it), then the settings over https (a
loopback TLS proxy in front of the gateway, as a DNS host's load balancer would be). Every
request they make to the gateway is real HTTPS. Only what they fetch from the internet has
a stand-in: the DDNS client's public-IP lookup (api.ipify.org). The user's browser is httpx
signing in and pressing Allow on the real consent page.
"""

from __future__ import annotations

import html
import json
import os
import re
import ssl
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import dns.name
import dns.rdatatype
import httpx
import pytest
import requests

from tests.gateway_app import HASHER, PASSWORD
from tests.servers.common import free_port, stop, wait_for_port
from tests.servers.pdns import PdnsServer
from tests.servers.tls_proxy import tls_proxy

domainconnect = pytest.importorskip("domainconnect")
domain_update = pytest.importorskip("dyndns.domain_update")
import dyndns.command_line  # noqa: E402  (after the skip)
import dyndns.domain_setup  # noqa: E402

pytestmark = [pytest.mark.servers,
              # The clients still call dnspython's old Resolver.query; that is theirs to change.
              pytest.mark.filterwarnings("ignore:please use dns.resolver.Resolver.resolve:DeprecationWarning")]

SP, SP_SECRET_LENGTH, SP_RETURN = "sp.example", 43, "https://app.sp.example/domainconnect/return"
DDNS, DDNS_RETURN = "domainconnect.org", "https://dynamicdns.domainconnect.org/ddnscode"
MAIL = {"providerId": SP, "providerName": "Example Mail", "serviceId": "mail", "serviceName": "Mail and web",
        "records": [{"type": "MX", "host": "@", "pointsTo": "%mx%", "priority": 10, "ttl": 3600},
                    {"type": "A", "host": "www", "pointsTo": "%ip%", "ttl": 600}]}
# The public template DomainConnectDDNS asks for (Domain-Connect/Templates).
DYNAMIC_DNS = {
    "providerId": "domainconnect.org", "providerName": "Domain Connect", "serviceId": "dynamicdns-v2",
    "serviceName": "Dynamic DNS", "version": 1, "syncBlock": True, "warnPhishing": True,
    "description": "Template for Domain Connect Dynamic DNS Service.",
    "records": [{"groupId": "IPv4", "type": "A", "host": "@", "pointsTo": "%IPv4%", "ttl": "60"},
                {"groupId": "IPv6", "type": "AAAA", "host": "@", "pointsTo": "%IPv6%", "ttl": "60"}],
}


@dataclass
class Served:
    url: str  # https, through the TLS proxy
    ca: Path
    config: Path
    zone: dns.name.Name
    pdns: PdnsServer
    pages: list[str] = field(default_factory=list)  # consent pages as the user saw them

    @property
    def domain(self) -> str:
        return self.zone.to_text(omit_final_dot=True)

    def served(self, host: str, rdtype: str) -> set[str]:
        name = dns.name.from_text(host, self.zone) if host else self.zone
        rrset = self.pdns.query(name, dns.rdatatype.from_text(rdtype))
        return {rd.to_text() for rd in rrset} if rrset is not None else set()

    def add_client(self, client_id: str, redirect_uri: str, secret: str | None = None) -> str:
        argv = ["clients", "add", "--config", str(self.config), "--client-id", client_id,
                "--redirect-uri", redirect_uri, "--json"] + (["--secret", "-"] if secret is not None else [])
        added = subprocess.run([sys.executable, "-m", "gateway.cli", *argv], input=secret, capture_output=True,
                               text=True, timeout=60, env=gateway_env(self.pdns))
        assert added.returncode == 0, added.stderr
        return json.loads(added.stdout)["client_secret"]

    def allow(self, consent_url: str) -> str:
        """The user's browser: open the consent URL, sign in, check the page, press Allow; the code."""
        assert consent_url.startswith(self.url + "/")
        with httpx.Client(verify=ssl.create_default_context(cafile=self.ca), follow_redirects=False, timeout=30) as browser:
            login = browser.get(consent_url)
            assert login.status_code == 303, login.text
            form = browser.get(self.url + login.headers["location"])
            signed_in = browser.post(self.url + "/login", data={
                "username": "alice", "password": PASSWORD, "csrf_token": hidden(form.text, "csrf_token"),
                "next": hidden(form.text, "next")})
            assert signed_in.status_code == 303, signed_in.text
            page = browser.get(self.url + signed_in.headers["location"])
            assert page.status_code == 200, page.headers.get("location")
            self.pages.append(html.unescape(page.text))
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
            action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))
            allowed = browser.post(self.url + action, data={**{k: html.unescape(v) for k, v in fields.items()},
                                                           "decision": "allow"})
            assert allowed.status_code == 303, allowed.text
        return parse_qs(urlsplit(allowed.headers["location"]).query)["code"][0]



def hidden(page: str, name: str) -> str:
    return html.unescape(re.search(rf'name="{name}" value="([^"]*)"', page).group(1))


@pytest.fixture
def gateway(pdns, tmp_path, monkeypatch) -> Served:
    zone = pdns.new_zone("clients")
    port = free_port()
    with tls_proxy(port) as (tls_port, ca):
        url = f"https://127.0.0.1:{tls_port}"
        pdns.patch(zone, [
            rrset("_domainconnect", zone, "TXT", [f'"127.0.0.1:{tls_port}"']),
            rrset("@", zone, "MX", ["10 mx.old.example."]),
            rrset("www", zone, "A", ["192.0.2.2"]),
            rrset("dyn", zone, "A", ["192.0.2.10"], ttl=300),
        ])
        config = write_config(tmp_path, pdns, zone, url)
        log = tmp_path / "serve.log"
        with log.open("w") as output:
            process = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--config", str(config),
                                        "--port", str(port)], stdout=output, stderr=subprocess.STDOUT,
                                       env=gateway_env(pdns))
        try:
            wait_for_port(port, process, timeout=30, log=log)
            point_resolvers_at(pdns, monkeypatch)
            yield Served(url, ca, config, zone, pdns)
        finally:
            stop(process)
            pdns.delete_zone(zone)


def gateway_env(pdns: PdnsServer) -> dict[str, str]:
    return {**os.environ, "PDNS_API_KEY": pdns.api_key}


def rrset(host: str, zone: dns.name.Name, rdtype: str, contents: list[str], ttl: int = 3600) -> dict:
    name = zone if host == "@" else dns.name.from_text(host, zone)
    return {"name": name.to_text(), "type": rdtype, "ttl": ttl, "changetype": "REPLACE",
            "records": [{"content": content, "disabled": False} for content in contents]}


def write_config(tmp_path: Path, pdns: PdnsServer, zone: dns.name.Name, url: str) -> Path:
    templates = tmp_path / "templates"
    templates.mkdir()
    for template in (MAIL, DYNAMIC_DNS):
        (templates / f"{template['providerId']}.{template['serviceId']}.json").write_text(json.dumps(template))
    config = tmp_path / "gateway.toml"
    config.write_text(f"""\
[gateway]
provider_id = "dns.test"
provider_name = "Test DNS"
base_url = "{url}"
templates = "templates"
session_secret = "test-secret-test-secret-test-secret"

[database]
url = "sqlite:///state.sqlite"

[[auth.users]]
username = "alice"
password_hash = "{HASHER.hash(PASSWORD)}"
zones = ["{zone.to_text(omit_final_dot=True)}"]

[[backends]]
name = "pdns"
driver = "powerdns"
zones = ["{zone.to_text(omit_final_dot=True)}"]
api_url = "{pdns.api_url}"
api_key = "env:PDNS_API_KEY"
""")
    return config


def point_resolvers_at(pdns: PdnsServer, monkeypatch) -> None:
    """The clients' dnspython resolvers ask the test's PowerDNS, not the internet's resolvers."""
    for resolver in (domainconnect.DomainConnect._resolver, domain_update.my_resolver):
        monkeypatch.setattr(resolver, "nameservers", ["127.0.0.1"])
        monkeypatch.setattr(resolver, "port", pdns.dns_port)


# --- domain-connect 0.0.11 -----------------------------------------------------------------


def test_reference_client_discovers_consents_without_variables_applies_and_refreshes(gateway):
    secret = gateway.add_client(SP, SP_RETURN)
    assert len(secret) == SP_SECRET_LENGTH
    dc = domainconnect.DomainConnect()

    config = dc.get_domain_config(gateway.domain)  # _domainconnect TXT from PowerDNS, settings over https
    assert (config.urlAPI, config.providerName) == (gateway.url, "Test DNS")

    # The consent URL carries no template variables at all: they come with the apply.
    context = dc.get_domain_connect_template_async_context(gateway.domain, SP, "mail", SP_RETURN, state="s-1")
    assert "mx=" not in context.asyncConsentUrl and "ip=" not in context.asyncConsentUrl
    context.code = gateway.allow(context.asyncConsentUrl)
    page = gateway.pages[-1]
    assert "%mx%" in page and "%ip%" in page and "set by Example Mail when applied" in page
    # Conflicts are known from name and type: the page says which existing records go.
    assert "10 mx.old.example." in page and "192.0.2.2" in page

    credentials = domainconnect.DomainConnectAsyncCredentials(SP, secret, config.urlAPI)
    dc.get_async_token(context, credentials)
    assert context.access_token and context.refresh_token

    # Variables only now. The records the consent page said would go are what the user allowed: no force.
    dc.apply_domain_connect_template_async(context, params={"mx": "mx.sp.example", "ip": "192.0.2.80"})
    assert gateway.served("", "MX") == {"10 mx.sp.example."}
    assert gateway.served("www", "A") == {"192.0.2.80"}

    # A record added after the consent is a conflict nobody agreed to: 409, nothing written.
    gateway.pdns.patch(gateway.zone, [rrset("www", gateway.zone, "AAAA", ["2001:db8::5"])])
    with pytest.raises(domainconnect.ConflictOnApplyException, match="2001:db8::5"):
        dc.apply_domain_connect_template_async(context, params={"mx": "mx.sp.example", "ip": "192.0.2.81"})
    assert gateway.served("www", "A") == {"192.0.2.80"} and gateway.served("www", "AAAA") == {"2001:db8::5"}
    dc.apply_domain_connect_template_async(context, params={"mx": "mx.sp.example", "ip": "192.0.2.81"},
                                           force=True)
    assert gateway.served("www", "A") == {"192.0.2.81"} and gateway.served("www", "AAAA") == set()

    # The access token runs out (as the client reckons it): it refreshes, and the new token works.
    first_access, first_refresh = context.access_token, context.refresh_token
    context.iat -= 7200
    dc.get_async_token(context, credentials)
    assert context.access_token != first_access and context.refresh_token != first_refresh
    dc.apply_domain_connect_template_async(context, params={"mx": "mx.sp.example", "ip": "192.0.2.82"})
    assert gateway.served("www", "A") == {"192.0.2.82"}

    # The rotated refresh token, presented again, revokes the grant: the newest token stops too.
    stolen = domainconnect.DomainConnectAsyncContext(config, SP, "mail", SP_RETURN, {})
    stolen.refresh_token, stolen.iat, stolen.access_token_expires_in = first_refresh, 1, 3600  # long expired
    with pytest.raises(domainconnect.AsyncTokenException, match="invalid_grant refresh_token: already used"):
        dc.get_async_token(stolen, credentials)
    with pytest.raises(domainconnect.ApplyException, match="401"):
        dc.apply_domain_connect_template_async(context, params={"mx": "mx.sp.example", "ip": "192.0.2.83"})
    assert gateway.served("www", "A") == {"192.0.2.82"}


# --- domain-connect-dyndns 0.0.9 -----------------------------------------------------------


class PublicAddress:
    """Stand-in for api.ipify.org, the one thing the DDNS client asks the internet."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.asked: list[str] = []

    def get(self, url: str, params=None, **kwargs) -> requests.Response:
        assert url == "https://api.ipify.org" and params == {"format": "json"}, url  # nothing else goes out
        self.asked.append(url)
        response = requests.Response()
        response.status_code, response._content = 200, json.dumps({"ip": self.address}).encode()
        return response


def run_ddns(*argv: str, monkeypatch, capsys) -> str:
    """Run the DDNS command line as its users do; what it printed."""
    monkeypatch.setattr(sys, "argv", ["domain-connect-dyndns", *argv])
    dyndns.command_line.main()
    return capsys.readouterr().out


def test_ddns_client_sets_up_updates_and_refreshes_with_its_built_in_secret(gateway, monkeypatch, capsys,
                                                                             tmp_path):
    gateway.add_client(DDNS, DDNS_RETURN, secret="inconceivable\n")  # the secret compiled into the client
    settings = tmp_path / "settings.txt"
    domain = f"dyn.{gateway.domain}"
    prompts: list[str] = []

    def user_at_the_prompt(prompt: str) -> str:
        prompts.append(prompt)
        return gateway.allow(re.search(r"https://\S+", prompt).group(0))

    monkeypatch.setattr(dyndns.domain_setup, "input", user_at_the_prompt)
    monkeypatch.setattr(dyndns.domain_setup.webbrowser, "open", lambda *args, **kwargs: True)
    ip = PublicAddress("192.0.2.11")
    monkeypatch.setattr(domain_update.requests, "get", ip.get)

    out = run_ddns("setup", "--domain", domain, "--config", str(settings), monkeypatch=monkeypatch, capsys=capsys)
    assert f"Domain {domain} has been successfully configured." in out, out
    page = gateway.pages[-1]
    assert "Dynamic DNS" in page and "the new A record replaces the A and AAAA records at dyn" in page
    assert "Template for Domain Connect" not in page  # a template's description is for developers only
    stored = json.loads(settings.read_text())[domain]
    assert stored["url_api"] == gateway.url and stored["access_token"] and stored["refresh_token"]

    # First update: the consent page said dyn's A 192.0.2.10 is replaced, so no 409 for it.
    out = run_ddns("update", "--domain", domain, "--config", str(settings), monkeypatch=monkeypatch, capsys=capsys)
    assert "DNS records successfully updated." in out, out
    assert gateway.served("dyn", "A") == {"192.0.2.11"}
    assert gateway.served("", "MX") == {"10 mx.old.example."}  # nothing else touched

    # An hour later the address changed and the access token has expired (by the client's clock):
    # it reads the old address from PowerDNS, refreshes its token and updates.
    age(settings, domain, seconds=7200)
    ip.address = "192.0.2.12"
    out = run_ddns("update", "--domain", domain, "--config", str(settings), monkeypatch=monkeypatch, capsys=capsys)
    assert "IP 192.0.2.11 found in A record" in out and "DNS records successfully updated." in out, out
    refreshed = json.loads(settings.read_text())[domain]
    assert refreshed["refresh_token"] != stored["refresh_token"]
    assert refreshed["access_token"] != stored["access_token"]
    assert gateway.served("dyn", "A") == {"192.0.2.12"}

    # Nothing changed: what PowerDNS serves is what the client finds, and it leaves it alone.
    age(settings, domain, seconds=120)
    out = run_ddns("update", "--domain", domain, "--config", str(settings), monkeypatch=monkeypatch, capsys=capsys)
    assert "All records up to date. No update required." in out, out
    assert len(ip.asked) == 3 and len(prompts) == 1


def age(settings: Path, domain: str, seconds: int) -> None:
    """Move the client's remembered times into the past, as if `seconds` had gone by."""
    document = json.loads(settings.read_text())
    for key in ("iat", "last_success"):
        if key in document[domain]:
            document[domain][key] -= seconds
    settings.write_text(json.dumps(document))


def test_tls_front_is_what_the_clients_see(gateway):
    # The discovery record points at the TLS port, and plain http is not spoken there.
    assert gateway.served("_domainconnect", "TXT") == {f'"{urlsplit(gateway.url).netloc}"'}
    with pytest.raises(httpx.HTTPError):
        httpx.get(gateway.url.replace("https://", "http://") + "/healthz", timeout=5)
    assert httpx.get(gateway.url + "/healthz", verify=ssl.create_default_context(cafile=gateway.ca)).json() == {"status": "ok"}
