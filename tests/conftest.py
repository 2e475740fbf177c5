pytest_plugins = [
    "tests.servers.postgres",
]
