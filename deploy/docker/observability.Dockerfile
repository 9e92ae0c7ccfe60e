# syntax=docker/dockerfile:1
# Event Stream observability image. Build context: the repository root.
#   docker build -f deploy/docker/observability.Dockerfile -t eventstream/observability:dev .
# `make images` builds the same layout without a container engine (deploy/image).
ARG GO_IMAGE=golang:1.26.8-bookworm

FROM ${GO_IMAGE} AS build
WORKDIR /src
# The service module builds on its own (GOWORK=off): its go.mod replaces the
# shared pkg module with ../../pkg, the console (whose pages it serves) with
# ../console, and the delivery module (its tests read the attempt store) with
# ../delivery. All three are copied so every replace resolves (a command
# loading the whole module graph, `go list -m all`, reads ../delivery/go.mod);
# go.work and deploy/ are not needed. deploy/deploytest's TestDockerfilesBuild
# builds the binary from exactly these COPY lines.
COPY pkg/ pkg/
COPY services/console/ services/console/
COPY services/delivery/ services/delivery/
COPY services/observability/ services/observability/
ARG VERSION=dev
ENV CGO_ENABLED=0 GOWORK=off GOFLAGS=-trimpath
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    cd services/observability && go build -ldflags="-s -w -X main.version=${VERSION}" -o /out/observability ./cmd/observability
# The healthcheck binary: standard library only, built as its own module.
COPY deploy/cmd/probe/main.go /probe/main.go
RUN --mount=type=cache,target=/root/.cache/go-build \
    cd /probe && go mod init probe && go build -ldflags="-s -w" -o /out/probe .
# The root filesystem of the final image: CA bundle (HTTPS webhooks, S3, JWKS),
# a passwd entry for the numeric non-root user, an empty /tmp.
RUN mkdir -p /rootfs/etc/ssl/certs /rootfs/tmp /rootfs/home/nonroot \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > /rootfs/etc/passwd \
 && printf 'root:x:0:\nnonroot:x:65532:\n' > /rootfs/etc/group \
 && chmod 1777 /rootfs/tmp && chown 65532:65532 /rootfs/home/nonroot

FROM scratch
COPY --from=build /rootfs/ /
COPY --from=build /out/observability /out/probe /usr/local/bin/
ENV PATH=/usr/local/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# Numeric, so Kubernetes' runAsNonRoot can check it; nothing is written to the
# root filesystem (it may be mounted read-only).
USER 65532:65532
EXPOSE 8084
ENTRYPOINT ["/usr/local/bin/observability"]
