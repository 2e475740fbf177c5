pytest_plugins = [
    "tests.servers.postgres",
    "tests.servers.pdns",
    "tests.servers.bind",
    "tests.servers.moto",
]
