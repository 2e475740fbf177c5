"""`dcgw preview` as scripts use it: the JSON contract, exit status 2 and one-line errors."""

import json
import subprocess
import sys

import pytest

ZONE = "gateway/examples/example.com.zone"
TEMPLATE = "gateway/examples/example.com.hosting.json"
PARAMS = ["--param", "var1=192.0.2.10", "--param", "var2=192.0.2.11", "--param", "var3=mail.example.net",
          "--param", "var4=site-verification=abc"]


def dcgw(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], capture_output=True, text=True)


def test_json_plan_shape():
    result = dcgw("preview", "--zone", ZONE, "--domain", "example.com", "--template", TEMPLATE, *PARAMS, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert {"add", "delete", "zone"} <= set(document)
    for key in ("add", "delete", "zone"):
        for record in document[key]:
            assert set(record) >= {"name", "type", "ttl", "data"}
    assert {"name": "www", "type": "A", "ttl": 600, "data": "192.0.2.10"} in document["add"]
    assert {"name": "webmail", "type": "CNAME", "ttl": 600, "data": "mail.example.net."} in document["add"]
    assert {"name": "www", "type": "CNAME", "ttl": 3600, "data": "other.host.example."} in document["delete"]
    spf = [r for r in document["zone"] if r["type"] == "TXT" and "spf1" in r["data"]]
    assert spf == [{"name": "@", "type": "TXT", "ttl": 3600,
                    "data": '"v=spf1 a include:spf.example.org include:spf.example.com ~all"'}]
    # The zone is the whole zone after the change: untouched records are still there.
    assert {"name": "@", "type": "MX", "ttl": 3600, "data": "10 mx1.example.net."} in document["zone"]
    assert not any(r["name"] == "www" and r["type"] == "CNAME" for r in document["zone"])


def test_table_output_and_groups():
    result = dcgw("preview", "--zone", ZONE, "--domain", "example.com", "--template", TEMPLATE, *PARAMS,
                  "--group", "verification")
    assert result.returncode == 0
    assert "+ example" in result.stdout and "site-verification=abc" in result.stdout
    assert "www" not in result.stdout
    assert "1 to add, 0 to delete" in result.stdout


def test_host_option_applies_below_the_domain():
    result = dcgw("preview", "--zone", ZONE, "--domain", "example.com", "--host", "blog", "--template", TEMPLATE,
                  *PARAMS, "--json")
    names = {r["name"] for r in json.loads(result.stdout)["add"]}
    assert names == {"www.blog", "m.blog", "webmail.blog", "example.blog", "blog"}


@pytest.mark.parametrize("args, words", [
    (["--param", "var1=192.0.2.10"], "variable %var2% is missing"),
    (PARAMS[:-2] + ["--param", "var4=a\nb"], "line break"),
    (PARAMS[2:] + ["--param", "var1=not-an-ip"], "is not an IPv4 address"),
    (PARAMS + ["--host", "evil.example."], "host 'evil.example.' is not"),
    (PARAMS + ["--param", "broken"], "expected NAME=VALUE"),
    (PARAMS + ["--group", "nope"], "groupId nope is not in the template"),
])
def test_invalid_input_exits_2_with_one_line(args, words):
    result = dcgw("preview", "--zone", ZONE, "--domain", "example.com", "--template", TEMPLATE, *args, "--json")
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and words in result.stderr


def test_invalid_template_and_zone_exit_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"providerId": "p"}')
    result = dcgw("preview", "--zone", ZONE, "--domain", "example.com", "--template", str(bad))
    assert result.returncode == 2 and "providerName" in result.stderr and result.stdout == ""
    result = dcgw("preview", "--zone", ZONE, "--domain", "example.org", "--template", TEMPLATE, *PARAMS)
    assert result.returncode == 2 and "not a valid zone file for example.org" in result.stderr


def test_lint_command_lines_and_exit_status(tmp_path):
    good = tmp_path / "example.com.hosting.json"
    good.write_text(open(TEMPLATE).read())
    assert dcgw("templates", "lint", str(good)).returncode == 0
    (tmp_path / "broken.json").write_text('{"providerId": "p", "providerName": "P", "serviceId": "s", '
                                          '"serviceName": "S", "records": [{"type": "A", "host": "@", "ttl": 1}]}')
    result = dcgw("templates", "lint", str(tmp_path))
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert "broken.json: records[0]: pointsTo: is required for A records" in lines[0]
    assert lines[-1] == "2 templates: 1 valid, 1 invalid, 0 warnings"
