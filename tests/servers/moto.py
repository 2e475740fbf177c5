"""moto's standalone server (`moto_server`, PyPI moto[server]) on 127.0.0.1, standing in for
Route 53 on the happy paths. Failures are proven against Route 53's real error shapes with
botocore's Stubber instead: moto accepts DELETEs with stale values and is not all or nothing.

    def test_something(route53_zone, moto_server):
        zone_name, zone_id = route53_zone
        backend = Route53Backend("aws", moto_server.backend_options())

Credentials are fake and set only for the test (`aws_test_credentials`), with the shared
config files and the instance metadata service switched off, so boto3 never looks further.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import dns.name
import pytest

from tests.servers.common import free_port, stop, wait_for_port

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@dataclass
class MotoServer:
    endpoint_url: str
    _zones: Iterator[int] = field(default_factory=itertools.count, repr=False)

    def backend_options(self, **overrides: Any) -> dict[str, Any]:
        return {"region": "us-east-1", "endpoint_url": self.endpoint_url, **overrides}

    def client(self) -> Any:
        """A Route 53 client for setting up and inspecting zones (needs `aws_test_credentials`)."""
        return boto3.client("route53", region_name="us-east-1", endpoint_url=self.endpoint_url)

    def create_zone(self, name: str | None = None, private: bool = False) -> tuple[dns.name.Name, str]:
        """A new hosted zone (default: a name no other test uses); returns its name and id."""
        index = next(self._zones)
        name = name or f"zone{index:03d}.r53.test"
        options: dict[str, Any] = {}
        if private:
            options = {"HostedZoneConfig": {"PrivateZone": True},
                       "VPC": {"VPCRegion": "us-east-1", "VPCId": "vpc-12345678"}}
        created = self.client().create_hosted_zone(Name=name, CallerReference=f"dcgw-test-{index}", **options)
        return dns.name.from_text(name), created["HostedZone"]["Id"].rsplit("/", 1)[-1]


@pytest.fixture
def aws_test_credentials(monkeypatch) -> None:
    for key, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@contextmanager
def moto_running() -> Iterator[MotoServer]:
    """moto_server on a free 127.0.0.1 port, stopped on exit."""
    program = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
    if not Path(program).exists():
        pytest.skip("moto_server is not installed (pip install -e '.[test]' installs moto[server])")
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="dcgw-moto-"))
    log = directory / "moto.log"
    with log.open("w") as output:
        process = subprocess.Popen([program, "-H", "127.0.0.1", "-p", str(port)], stdout=output,
                                   stderr=subprocess.STDOUT, cwd=directory)
    try:
        wait_for_port(port, process, timeout=60, log=log)
        yield MotoServer(f"http://127.0.0.1:{port}")
    finally:
        stop(process)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with moto_running() as server:
        yield server


@pytest.fixture
def route53_zone(moto_server: MotoServer, aws_test_credentials) -> tuple[dns.name.Name, str]:
    """A fresh public hosted zone on `moto_server`: its name and id."""
    return moto_server.create_zone()
