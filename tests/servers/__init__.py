"""Real servers the tests start on loopback ports: pdns_server, named, moto_server, PostgreSQL."""
