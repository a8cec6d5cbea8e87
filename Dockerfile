# The ncc program (node and hub roles), one image for every instance.
#   docker build -t ncc-federation .
#   docker run --rm ncc-federation --help
# docker-compose.yml runs a hub, three nodes and PostgreSQL from it; see docs/deploy.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY federation ./federation
COPY node ./node
COPY schemas ./schemas
RUN pip install . && rm -rf /src

# Start-up helpers: first-start `ncc init` then `ncc serve`; one-shot enrollment of the nodes.
COPY docker/entrypoint.sh /usr/local/bin/ncc-entrypoint
COPY docker/enroll.sh /usr/local/bin/ncc-enroll-all
RUN chmod 0755 /usr/local/bin/ncc-entrypoint /usr/local/bin/ncc-enroll-all

# Non-root. /data is the instance's data dir (config.toml, SQLite if used); /data/keys holds the
# Ed25519 key (0600). Both exist in the image with the right owner so that a fresh named volume
# mounted on them starts owned by ncc.
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin ncc \
    && mkdir -p /data/keys \
    && chown -R ncc:ncc /data \
    && chmod 0700 /data /data/keys
USER ncc
WORKDIR /data
# No VOLUME here: docker-compose.yml mounts named volumes on /data and /data/keys (a VOLUME line
# would also give the one-shot enroll service two useless anonymous volumes).
EXPOSE 8080

# Liveness: GET /healthz on the configured port (NCC_PORT, default 8080).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('NCC_PORT', '8080'), timeout=4)" || exit 1

ENTRYPOINT ["ncc"]
CMD ["serve", "--data-dir", "/data"]
