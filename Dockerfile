# syntax=docker/dockerfile:1
#
# Two small, static, non-root images from one build:
#   docker build -t regate/gateway .                           (the gateway, the default target)
#   docker build --target mockupstream -t regate/mockupstream .  (the fake provider)
# docker-compose.yml builds both and runs the full stack.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ENV CGO_ENABLED=0
# grpcnotrace keeps gRPC's golang.org/x/net/trace, and with it html/template,
# out of the binary: 7 MB smaller, about 4 MB less resident (docs/DECISIONS.md).
RUN go build -trimpath -tags grpcnotrace -ldflags="-s -w" -o /out/gateway ./cmd/gateway \
 && go build -trimpath -ldflags="-s -w" -o /out/mockupstream ./cmd/mockupstream

# The OpenAI-compatible fake provider, for demos and load tests.
FROM gcr.io/distroless/static-debian12:nonroot AS mockupstream
COPY --from=build /out/mockupstream /mockupstream
USER nonroot:nonroot
ENV MOCK_LISTEN=0.0.0.0:8081
EXPOSE 8081
ENTRYPOINT ["/mockupstream"]

# The gateway. Without --config it serves the embedded demo config; mount
# yours and pass --config (or set GATEWAY_CONFIG).
FROM gcr.io/distroless/static-debian12:nonroot AS gateway
COPY --from=build /out/gateway /gateway
USER nonroot:nonroot
ENV GATEWAY_LISTEN=0.0.0.0:4000
EXPOSE 4000
# Healthy means ready: false while the database is unreachable or the
# gateway drains after SIGTERM. No shell or curl in the image: the binary
# asks its own /health/readiness.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["/gateway", "healthcheck"]
ENTRYPOINT ["/gateway"]
CMD ["serve"]
