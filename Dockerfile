# syntax=docker/dockerfile:1
#
# Tidegate's container image (docs/operations.md, "Container image").
#
#   docker build -t tidegate .
#   docker run -p 8030:8030 -v tidegate-data:/var/lib/tidegate \
#     -e PROVIDER_PRIVATE_KEY -e NETWORK_URL -e ADDRESS_FILE tidegate
#
# Two stages: the first builds Tidegate and installs it, with the exact versions CI
# tests (constraints.txt), into a virtual environment; the second copies only that
# environment onto the same slim Python base and runs it as an unprivileged user.
# Building needs PyPI (or a mirror of it: PIP_INDEX_URL) and nothing else (no npm, no
# git; apt only with --build-arg BUBBLEWRAP=1). Binary wheels are preferred and the
# build stage has no compiler: a pinned version without a wheel for the platform fails
# the build (then add build-essential to the build stage).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# A PyPI mirror for a build without internet: --build-arg PIP_INDEX_URL=http://mirror/simple
ARG PIP_INDEX_URL=https://pypi.org/simple
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_PREFER_BINARY=1
WORKDIR /src
# pip-ca.pem, if it is next to this file: the CA of a TLS-inspecting proxy between the
# build and PyPI (the [m] makes it optional). It stays in the build stage only.
COPY pyproject.toml README.md constraints.txt pip-ca.pe[m] ./
COPY src ./src
# PIP_CONSTRAINT (not -c) so that the isolated build of the wheel is pinned too.
RUN if [ -f pip-ca.pem ]; then export PIP_CERT=/src/pip-ca.pem; fi \
 && python -m venv /opt/tidegate \
 && PIP_CONSTRAINT=/src/constraints.txt /opt/tidegate/bin/pip install . \
 && /opt/tidegate/bin/tidegate --version

FROM ${PYTHON_IMAGE} AS runtime
# Local compute-to-data needs bubblewrap, and a container that allows user namespaces
# (docs/operations.md); without it Tidegate serves everything else and refuses jobs.
ARG BUBBLEWRAP=0
RUN if [ "$BUBBLEWRAP" = "1" ]; then \
      apt-get update \
      && apt-get install -y --no-install-recommends bubblewrap \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
 && groupadd --system --gid 10001 tidegate \
 && useradd --system --uid 10001 --gid tidegate --home-dir /var/lib/tidegate \
      --no-create-home --shell /usr/sbin/nologin tidegate \
 && install -d -o tidegate -g tidegate -m 0700 /var/lib/tidegate
COPY --from=build /opt/tidegate /opt/tidegate
ENV PATH=/opt/tidegate/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TIDEGATE_DATA_DIR=/var/lib/tidegate
USER tidegate:tidegate
WORKDIR /var/lib/tidegate
VOLUME ["/var/lib/tidegate"]
EXPOSE 8030
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8030/health', timeout=4).status != 200)"]
ENTRYPOINT ["tidegate"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8030"]
