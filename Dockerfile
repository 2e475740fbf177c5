# The gateway in a container: `dcgw serve` on port 8080, state and zone files in /var/lib/dcgw.
#
#   docker build -t dcgw .
#   docker run -p 8080:8080 -v ./config.toml:/etc/dcgw/config.toml:ro -v dcgw-data:/var/lib/dcgw dcgw
#
# The config is mounted, not built in (it names backends and secrets). Inside it, point the
# state and any zone files at the volume:
#   [database]  url = "sqlite:////var/lib/dcgw/dcgw.sqlite"
#   [[backends]] driver = "zonefile"  directory = "/var/lib/dcgw/zones"
# and pass secrets as environment variables ("env:NAME" in the config).
# Other sub-commands run the same way: `docker run --rm -v ... dcgw discovery-record example.com --config ...`.

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what the package is built from (.dockerignore keeps the rest out of the context).
COPY pyproject.toml README.md /tmp/dcgw-src/
COPY gateway /tmp/dcgw-src/gateway
COPY backends /tmp/dcgw-src/backends
# The postgresql extra adds the driver for [database] url = "postgresql+psycopg://...",
# the choice when several replicas share state.
RUN pip install --no-cache-dir "/tmp/dcgw-src[postgresql]" \
    && rm -rf /tmp/dcgw-src

# A fixed numeric id, so orchestrators can check "runs as non-root" and volumes can be chowned to it.
RUN groupadd --system --gid 10001 dcgw \
    && useradd --system --uid 10001 --gid dcgw --home-dir /var/lib/dcgw --shell /usr/sbin/nologin dcgw \
    && mkdir -p /etc/dcgw /var/lib/dcgw \
    && chown dcgw:dcgw /var/lib/dcgw

VOLUME ["/var/lib/dcgw"]
WORKDIR /var/lib/dcgw
USER 10001:10001

EXPOSE 8080

# /healthz is liveness (the process answers); orchestrators that route traffic should also ask
# /readyz, which checks the database and every backend. Python's urllib, since the slim image has no curl; urlopen raises (exit 1) on a 503 from a failing check.
# It asks port 8080: change it here too if CMD serves another port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

ENTRYPOINT ["dcgw"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080", "--config", "/etc/dcgw/config.toml"]
