# Progress service: the stand-in for the agency's system (progress_service/). Leave it out when
# PROGRESS_SERVICE_URL points at the agency's real system.
#   docker build -f deploy/docker/progress.Dockerfile -t mzmtb-progress:<version> .
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
COPY progress_service/ progress_service/

# never root; the state folder (runtime copies of the configuration, nginx's pid and logs) is
# the only writable place
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin app \
    && mkdir -p /state && chown app /state
USER app
EXPOSE 8001
ENTRYPOINT ["python", "-m", "tools.run_service"]
CMD ["progress"]
