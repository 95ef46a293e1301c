# syntax=docker/dockerfile:1
# The single teraslice-k8s image: master, execution controller and worker, chosen by NODE_TYPE
# (NODE_TYPE=master runs `teraslice-k8s master --config $TERAFOUNDATION_CONFIG`).
#   docker build -t teraslice-k8s:0.1.0 .
# Runs as uid/gid 10001 and works with a read-only root filesystem: the chart mounts emptyDirs
# at /tmp and the assets directory, and nothing writes byte code.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/teraslice
WORKDIR /src
COPY pyproject.toml README.md ./
COPY plugin ./plugin
RUN /opt/teraslice/bin/pip install . \
 && /opt/teraslice/bin/python -c "import teraslice_k8s.cli"
# Teraslice's standard asset, built into the autoload directory: the master uploads it at start,
# so jobs naming "assets": ["standard"] resolve as with Teraslice (docs/standard-asset.md).
COPY assets/standard ./assets/standard
RUN /opt/teraslice/bin/teraslice-k8s assets build assets/standard

FROM python:3.11-slim
# tini: PID 1 that forwards SIGTERM to the Python process and reaps the children it spawns.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 teraslice \
 && useradd --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin teraslice \
 && mkdir -p /app/config /app/assets \
 && chown 10001:10001 /app/assets
COPY --from=build /opt/teraslice /opt/teraslice
COPY --from=build /src/assets/standard/build/ /app/autoload/
ENV PATH=/opt/teraslice/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TERAFOUNDATION_CONFIG=/app/config/teraslice.yaml
WORKDIR /app
USER 10001:10001
# 5678: master API and execution-controller messages; 45680: execution controller (slicer).
EXPOSE 5678 45680
ENTRYPOINT ["/usr/bin/tini", "--", "python", "-m", "teraslice_k8s"]
