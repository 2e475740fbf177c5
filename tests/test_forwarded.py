"""`[server] forwarded_allow_ips`: client addresses from the listed proxies only, the header
sign-in still judged by the TCP peer, and a start-up warning when a proxy is in front without it."""

from __future__ import annotations

import time

import pytest

from gateway.infra.config import ConfigError, load_config
from gateway.web.proxies import forwarding_warning
from tests.gateway_app import build_gateway, dcgw_serve
from tests.servers.common import free_port

HEADER_AUTH = '[auth]\ndriver = "header"\ntrusted_proxies = ["127.0.0.1"]\n'
FORWARDING = '[server]\nforwarded_allow_ips = ["127.0.0.1", "10.9.0.0/16"]\n'


def test_header_sign_in_believes_the_proxy_it_is_connected_to_not_a_forwarded_address(tmp_path):
    gateway = build_gateway(tmp_path, users={}, sections=HEADER_AUTH + FORWARDING)
    signed_in = {"X-Forwarded-User": "carol", "X-Forwarded-Zones": "example.com"}
    with gateway.client(client=("127.0.0.1", 40000)) as proxy:
        page = proxy.get("/", headers={**signed_in, "X-Forwarded-For": "203.0.113.9"})
        assert "example.com" in page.text
    # A stranger claiming, through X-Forwarded-For, to be the proxy is not believed.
    with gateway.client(client=("203.0.113.9", 40000)) as stranger:
        page = stranger.get("/", headers={**signed_in, "X-Forwarded-For": "127.0.0.1"})
        assert "example.com" not in page.text


def test_forwarded_allow_ips_must_be_addresses_or_networks(tmp_path):
    path = tmp_path / "gateway.toml"
    path.write_text('[server]\nforwarded_allow_ips = ["10.0.0.1", "*"]\n')
    with pytest.raises(ConfigError, match=r"server.forwarded_allow_ips\[1\]: '\*' is not an IP address or network"):
        load_config(path)
    path.write_text('[server]\nforwarded_allow_ip = ["10.0.0.1"]\n')
    with pytest.raises(ConfigError, match="server.forwarded_allow_ip: unknown key"):
        load_config(path)


def test_the_warning_is_only_for_a_proxy_without_forwarded_allow_ips(tmp_path):
    for sections, warned in ((HEADER_AUTH, True), (HEADER_AUTH + FORWARDING, False), ("", False)):
        path = tmp_path / "gateway.toml"
        path.write_text(sections)
        assert (forwarding_warning(load_config(path)) is not None) == warned


def test_serve_warns_at_start_up_when_header_auth_has_no_forwarded_allow_ips(tmp_path):
    port = free_port()
    gateway = build_gateway(tmp_path, users={}, base_url=f"http://127.0.0.1:{port}", sections=HEADER_AUTH)
    with dcgw_serve(gateway, port) as (_, log):
        deadline = time.monotonic() + 10
        while "forwarded_allow_ips is not set" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "forwarded_allow_ips is not set" in log.read_text()
