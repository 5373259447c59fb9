# syntax=docker/dockerfile:1
# vm-admission image: build the wheels in one stage, install only them in a slim, non-root final stage.
#   docker build -t vm-admission:0.1.0 .
#   docker run --rm -p 8443:8443 vm-admission:0.1.0          # generates a self-signed cert in /certs
# The base image is pinned by tag; pin it by digest too (python:3.11.13-slim-bookworm@sha256:...) in
# production builds so a rebuild is reproducible.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm
ARG BUILDER_IMAGE=python:3.11.13-bookworm

# The builder has gcc: our hot path is compiled with mypyc (setup.py, VM_ADMISSION_COMPILE=1).
FROM ${BUILDER_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY webhook ./webhook
# the runtime dependencies and what mypyc needs (the `compile` extra), then wheels for our compiled package and
# every runtime dependency (all binary), built without isolation so mypyc type-checks against the installed ones
RUN pip install '.[compile]' \
 && VM_ADMISSION_COMPILE=1 pip wheel --no-build-isolation --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# install from the builder's wheels only (bind-mounted: no wheel is left in a layer), nothing from an index
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels vm-admission \
 && mkdir -p /certs /config \
 && chown 65532:65532 /certs
USER 65532:65532
WORKDIR /tmp
EXPOSE 8443
# Kubernetes probes GET /healthz and /readyz over HTTPS (manifests/base/deployment.yaml); this is for
# plain `docker run`. The certificate is self-signed or cluster-issued, so the check does not verify it.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import ssl,urllib.request; urllib.request.urlopen('https://127.0.0.1:8443/healthz', context=ssl._create_unverified_context(), timeout=2)"]
ENTRYPOINT ["vm-admission"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8443", "--cert-dir", "/certs"]
