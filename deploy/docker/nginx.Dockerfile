# nginx in front (Debian's package, as make run-cluster uses), configured by tools/cluster.py
# from deploy/nginx.cluster.conf.template at start: only the channel webhooks, the widget
# assets, the demo page and /agent are public; Rasa's HTTP API stays internal.
#   docker build -f deploy/docker/nginx.Dockerfile -t mzmtb-nginx:<version> .
# Not built here (no registry reachable): paper.
FROM python:3.10-slim-bookworm

# Rasa 3.6 needs Python 3.10 (README); every package pinned with its hash (make install does the same)
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RASA_TELEMETRY_ENABLED=false CLUSTER_STATE_DIR=/state
WORKDIR /app
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

# tools/run_service.py builds the tested topology (tools/cluster.py) from the environment and
# execs this container's process; it reads deploy/ (production endpoints, credentials, nginx template)
COPY core/ core/
COPY tools/ tools/
COPY wechat_channel/ wechat_channel/
COPY deploy/ deploy/
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx \
    && rm -rf /var/lib/apt/lists/*

# never root; the state folder (runtime copies of the configuration, nginx's pid and logs) is
# the only writable place
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin app \
    && mkdir -p /state && chown app /state
USER app
EXPOSE 8000
ENTRYPOINT ["python", "-m", "tools.run_service"]
CMD ["nginx"]
