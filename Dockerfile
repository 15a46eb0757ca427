# The image of one kyosei service; every service is built from this file.
#
# Build from the repository root (the context must hold the workspace lock):
#   docker build --build-arg SERVICE=intake -t kyosei-intake .
#
# Only the shared libraries and services/$SERVICE enter the image, with that one
# package's dependencies resolved from uv.lock.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: resolve this service's dependencies from uv.lock into /app/.venv ---------
FROM ${PYTHON_IMAGE} AS build

# The service to build: a folder under services/ (required).
ARG SERVICE
RUN test -n "$SERVICE" || { echo "build with --build-arg SERVICE=<name of a folder under services/>" >&2; exit 1; }

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN pip install --no-cache-dir uv==0.13.9

WORKDIR /app

# Third-party dependencies first, from the manifests alone, so this layer is rebuilt
# only when the lock or a manifest changes.
COPY pyproject.toml uv.lock ./
COPY libs/events/pyproject.toml libs/events/
COPY libs/platform/pyproject.toml libs/platform/
COPY services/${SERVICE}/pyproject.toml services/${SERVICE}/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package kyosei-${SERVICE} --no-install-workspace

# Then the shared libraries and this service only (its migrations included); other
# services' code never enters the image. The workspace packages stay installed from
# /app, so the runtime stage must keep the same paths.
COPY libs/ libs/
COPY services/${SERVICE}/ services/${SERVICE}/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package kyosei-${SERVICE} \
 && python -m compileall -q libs services

# --- runtime -------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG SERVICE

LABEL org.opencontainers.image.title="kyosei-${SERVICE}" \
      org.opencontainers.image.description="kyosei ${SERVICE} service"

# A fixed numeric uid so Kubernetes can verify runAsNonRoot.
RUN groupadd --system --gid 10001 kyosei \
 && useradd --system --uid 10001 --gid kyosei --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin kyosei

# KYOSEI_SERVICE: the service `kyosei serve` / `kyosei migrate` run when none is named.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    KYOSEI_SERVICE=${SERVICE} \
    KYOSEI_HTTP_PORT=8000 \
    KYOSEI_LOG_LEVEL=info

WORKDIR /app
# Owned by root and not writable by the service user.
COPY --from=build /app /app

USER 10001:10001
EXPOSE 8000

ENTRYPOINT ["kyosei"]
CMD ["serve"]
