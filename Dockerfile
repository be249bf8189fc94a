# syntax=docker/dockerfile:1
#
# oidcproxy container image: one static binary on distroless, running as
# the non-root user 65532, with the bbolt store on the /data volume.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t oidcproxy .
#   docker run -p 8000:8000 -v oidcproxy-data:/data \
#     -e OIDC_PROXY_BASE_URL=https://mcp-auth.example.com \
#     -e OIDC_PROXY_CONFIG_URL=https://login.example.com/.well-known/openid-configuration \
#     -e OIDC_PROXY_CLIENT_ID=oidcproxy \
#     -e OIDC_PROXY_CLIENT_SECRET_FILE=/run/secrets/client_secret \
#     -e OIDC_PROXY_ENCRYPTION_KEY_FILE=/run/secrets/encryption_key \
#     -v "$PWD/secrets:/run/secrets:ro" oidcproxy
#
# Not built where it was written: that machine has a Docker client but no
# engine. What was checked there: the build command below, run by hand with
# CGO_ENABLED=0, gives a statically linked binary that runs `version`; and
# deploy/deploy_test.go keeps GO_VERSION equal to go.mod's go line and every
# OIDC_PROXY_* name here a real setting.

# The exact toolchain of go.mod's go line: the golang images set
# GOTOOLCHAIN=local, so an older 1.26.x image would refuse to build.
ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src

# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

COPY . .
# CGO off: a static binary needs no libc, so it runs on distroless/static.
# -trimpath and -s -w: no build paths or symbol tables in the image.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/oidcproxy ./cmd/oidcproxy

# The volume's mount point, owned by the runtime user: Docker copies this
# ownership into a new named volume, so the store can be created there.
# It is copied as an entry of rootfs/ so that --chown applies to it.
RUN mkdir -p /out/rootfs/data && chmod 0700 /out/rootfs/data

# static-debian12 holds CA certificates (for the identity provider's
# https endpoints), tzdata and /etc/passwd, and nothing else: no shell,
# no package manager. The :nonroot variant runs as uid/gid 65532.
FROM gcr.io/distroless/static-debian12:nonroot

COPY --from=build /out/oidcproxy /oidcproxy
COPY --from=build --chown=65532:65532 /out/rootfs/ /

# The store lives on the volume; the key file that oidcproxy creates when
# OIDC_PROXY_ENCRYPTION_KEY is unset would land next to it, which is why
# production sets the key from a secret instead (docs/operations.md).
ENV OIDC_PROXY_STORE_PATH=/data/oidcproxy.db \
    OIDC_PROXY_LISTEN_ADDR=:8000
# ADMIN_ADDR keeps its default, 127.0.0.1:9090: inside the container, where
# `docker exec … /oidcproxy keys list` and `… backup` reach it. The admin
# listener rotates keys and streams backups, so binding it beyond loopback
# requires OIDC_PROXY_ADMIN_TOKEN (the server refuses to start otherwise):
# to let probes and Prometheus in, set both, e.g.
#   -e OIDC_PROXY_ADMIN_ADDR=0.0.0.0:9090 \
#   -e OIDC_PROXY_ADMIN_TOKEN_FILE=/run/secrets/admin_token -p 127.0.0.1:9090:9090
# as the Kubernetes manifest does. /healthz and /readyz also answer on 8000.

VOLUME ["/data"]
EXPOSE 8000
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532

ENTRYPOINT ["/oidcproxy"]
CMD ["serve"]
