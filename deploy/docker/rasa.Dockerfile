# Rasa server with the custom NLU components (assistant/), the channels (channels/) and one
# versioned model (make train: .state/models/versions/assistant-<UTC time>.tar.gz).
# Build from the repository root, naming the model version; the image tag carries it:
#   docker build -f deploy/docker/rasa.Dockerfile --build-arg MODEL_VERSION=20261203T124609Z \
#     -t mzmtb-rasa:20261203T124609Z .
# Rolling back = deploying the previous tag. Not built here (no registry reachable): paper.
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
COPY assistant/ assistant/
COPY channels/ channels/
COPY knowledge/ knowledge/

# the one-time step before the replicas start (compose service `migrate`: tools/migrate.py
# for the console, codes and progress schemas, the tracker store, the audit retention) runs
# from this image
COPY migrations/ migrations/
COPY web/ web/
COPY progress_service/ progress_service/

ARG MODEL_VERSION
LABEL org.opencontainers.image.title="mzmtb-rasa" org.opencontainers.image.version="${MODEL_VERSION}"
COPY .state/models/versions/assistant-${MODEL_VERSION}.tar.gz .state/models/assistant.tar.gz

# never root; the state folder (runtime copies of the configuration, nginx's pid and logs) is
# the only writable place
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin app \
    && mkdir -p /state && chown app /state
USER app
EXPOSE 5005 5006
ENTRYPOINT ["python", "-m", "tools.run_service"]
CMD ["rasa-1"]
