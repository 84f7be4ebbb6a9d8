# r1-stack: one image for all four services; `docker run IMAGE serve <generation|verifier|trainer|exporter>`.
#
#   docker build -t r1-stack .                                   # CPU: python:3.11-slim-bookworm + torch CPU
#   docker build -t r1-stack:cu128 \                             # NVIDIA GPUs (trainer, our torch engine)
#     --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-runtime-ubuntu22.04 \
#     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
#
# The CUDA base must match the torch index (cu128 <-> 12.8.x) and the index must carry torch==TORCH_VERSION; e.g.
# nvidia/cuda:12.4.1-runtime-ubuntu22.04 pairs with .../whl/cu124, which has torch up to 2.6 only, so it
# needs TORCH_VERSION=2.6.0 and a pyproject that admits it. Ubuntu bases get Python 3.11 from apt.
# vLLM / SGLang are not in this image: they run as their own containers beside the generation service.
#
# Stages: base (Python) -> build (dependencies, then `make protos`, then the project) -> runtime (the
# verifier's sandbox tools, a fixed non-root user). Dependencies come before the source so that a code
# change rebuilds only the last layers.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS base
ARG PYTHON=python3.11
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHON=${PYTHON}
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# python:* bases already have it; Ubuntu/CUDA bases install it (and venv) from apt.
RUN if ! command -v "${PYTHON}" >/dev/null 2>&1; then \
        apt-get update \
        && apt-get install -y --no-install-recommends "${PYTHON}" "${PYTHON}-venv" ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi

FROM base AS build
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
RUN "${PYTHON}" -m venv /opt/venv
ENV PATH=/opt/venv/bin:${PATH}
# torch first, from its own index (CPU wheel by default), so the dependency list below finds it satisfied.
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"
WORKDIR /app
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt
# Protos: generated here by the Makefile's own target (never committed). The stamp tells make that the
# venv is set up, so `protos` does not run `setup`.
COPY Makefile ./
COPY scripts/install-sandbox-tools.sh scripts/install-test-tools.sh scripts/
COPY protos protos
RUN touch /opt/venv/.r1-installed && make protos VENV=/opt/venv
COPY r1 r1
COPY services services
COPY recipes recipes
# Editable: the code finds recipes/ relative to its source tree (/app), as in a checkout.
RUN pip install --no-cache-dir --no-deps -e . && r1 --version

FROM base AS runtime
ARG UID=10001
# The verifier's code sandbox (r1/rewards/sandbox.py): bwrap, prlimit (util-linux), and the toolchains the
# model's programs run with (/usr/bin/python3, /usr/bin/g++), as scripts/install-sandbox-tools.sh installs.
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap util-linux g++ python3 \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid "${UID}" r1 \
    && useradd --uid "${UID}" --gid "${UID}" --home-dir /home/r1 --create-home --shell /usr/sbin/nologin r1 \
    && mkdir -p /var/cache/r1 \
    && chown "${UID}:${UID}" /var/cache/r1
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
ENV PATH=/opt/venv/bin:${PATH} \
    HOME=/home/r1 \
    R1_CACHE_DIR=/var/cache/r1
WORKDIR /app
USER 10001:10001
# gRPC: generation 50051, verifier 50052, trainer 50053, exporter 50054; /metrics: 9101..9104.
EXPOSE 50051 50052 50053 50054 9101 9102 9103 9104
ENTRYPOINT ["r1"]
CMD ["serve", "verifier"]
