"""What a gateway is built from: its config, the backends and templates it loads, and its
logs and metrics. Nothing here serves a request."""
