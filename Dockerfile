# syntax=docker/dockerfile:1

ARG GO_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${GO_IMAGE} AS build
WORKDIR /src
ENV CGO_ENABLED=0

COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/nexus ./cmd/nexus \
    && mkdir -p /out/data

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/nexus /nexus
# Pre-create /data owned by the distroless "nonroot" user (65532) so a fresh
# named volume mounted there is writable for the SQLite database.
COPY --from=build --chown=65532:65532 /out/data /data
# NEXUS_ISSUER: the URL clients use; http://localhost:8080 suits a local
# run with -p 8080:8080, a deployment sets its public https:// URL.
ENV NEXUS_LISTEN=:8080 \
    NEXUS_ISSUER=http://localhost:8080 \
    NEXUS_DATABASE_URL=sqlite:/data/nexus.db
VOLUME /data
EXPOSE 8080
# The image has no shell or curl: the binary probes its own /readyz.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/nexus", "healthcheck"]
ENTRYPOINT ["/nexus"]
CMD ["serve"]
