# Cool Storage gateway image: `coolstorage serve` as a non-root user.
#
#   docker build -t coolstorage .
#   docker run -p 9000:9000 -p 8080:8080 -p 8081:8081 -v coolstorage:/var/lib/coolstorage coolstorage
#
# Configuration: /etc/coolstorage/coolstorage.toml (COOLSTORAGE_CONFIG; the image's default
# listens on every interface and keeps state in /var/lib/coolstorage; mount your own file
# over it), plus COOLSTORAGE_* environment variables (secrets: COOLSTORAGE_CATALOG_URL,
# COOLSTORAGE_KEYS_MASTER_KEY). The health check assumes the admin listener speaks plain
# HTTP on 8081; with TLS on it, override HEALTHCHECK or rely on your orchestrator's probes.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY protocols ./protocols
COPY tiering ./tiering
COPY catalog ./catalog
COPY admin ./admin
COPY connectors ./connectors
RUN pip install . && rm -rf /src

RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/coolstorage \
        --create-home --shell /usr/sbin/nologin coolstorage \
    && mkdir -p /etc/coolstorage \
    && printf '%s\n' \
        '# Default config of the container image; mount your own file over this one.' \
        '[server]' \
        's3_listen = "0.0.0.0:9000"' \
        'webdav_listen = "0.0.0.0:8080"' \
        'admin_listen = "0.0.0.0:8081"' \
        'data_dir = "/var/lib/coolstorage"' \
        > /etc/coolstorage/coolstorage.toml
USER 10001:10001
WORKDIR /var/lib/coolstorage
ENV COOLSTORAGE_CONFIG=/etc/coolstorage/coolstorage.toml

EXPOSE 9000 8080 8081
VOLUME ["/var/lib/coolstorage"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8081/healthz', timeout=4).status != 200)"

CMD ["coolstorage", "serve"]
