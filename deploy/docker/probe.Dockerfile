# syntax=docker/dockerfile:1
# The healthcheck binary for docker compose's third-party images (no shell or
# HTTP client in them): the container copies it into the shared "tools" volume.
ARG GO_IMAGE=golang:1.26.8-bookworm
FROM ${GO_IMAGE} AS build
COPY deploy/cmd/probe/main.go /probe/main.go
RUN cd /probe && go mod init probe && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/probe .

FROM busybox:1.37.0
COPY --from=build /out/probe /probe
CMD ["cp", "/probe", "/tools/probe"]
