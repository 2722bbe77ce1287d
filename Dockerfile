# syntax=docker/dockerfile:1
#
# CloudTrail detector image. Build and run (read-only root, state on a volume):
#
#   docker build -t cloudtrail-detector .
#   docker run --read-only --tmpfs /tmp -v detector-state:/var/lib/detector \
#       -p 9108:9108 cloudtrail-detector run
#
# The image writes only to /var/lib/detector (checkpoints, baselines, sink spools) and /tmp.
# Tests: tests/unit/test_dockerfile.py checks these properties statically.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- builder: the project and its dependencies, installed into a venv from pyproject.toml
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# A C compiler for detector/core (Cython extensions), in this stage only: the runtime stage
# copies the built venv and has no compiler.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY detector/ detector/
# setup.py ships models/default inside the package (detector/_default_model)
COPY models/ models/
# Wheels first (ours compiles detector/core here), then an offline install of exactly those
# wheels: the venv gets no build tooling, and pip compiles .pyc files now, since the runtime
# cannot write them.
RUN pip wheel --wheel-dir /wheels . \
 && pip install --no-index --find-links /wheels cloudtrail-detector \
 && rm -rf /wheels

# ---- runtime: the venv, the default model and config; nothing else
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    DETECTOR_STATE_DIR=/var/lib/detector \
    DETECTOR_METRICS__HOST=0.0.0.0

RUN groupadd --system --gid 10001 detector \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin detector \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/detector

WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY models/ /app/models/
COPY config/ /app/config/

USER 10001:10001
VOLUME ["/var/lib/detector"]
# config/detector.yaml serves metrics on 127.0.0.1 (safe on a laptop); in a container only
# 0.0.0.0 is reachable through the published port. The network namespace is the boundary.
EXPOSE 9108

# Liveness from /healthz without curl in the image; urlopen raises on a 503, so exit != 0.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9108/healthz', timeout=4).status == 200 else 1)"]

# Model signatures: with DETECTOR_MODEL_KEY set (a secret, never baked in), only artifacts
# signed with that key load, here and on hot reload; DETECTOR_REQUIRE_SIGNATURE=true also
# refuses to start without the key. The shipped demo model is unsigned.
ENTRYPOINT ["detector"]
CMD ["run"]
