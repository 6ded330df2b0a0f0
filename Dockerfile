# syntax=docker/dockerfile:1

# Build stage: static binary of ./cmd/consumer.
FROM golang:1.26-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/consumer ./cmd/consumer

# Runtime stage: no shell, no package manager, runs as an unprivileged user.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/consumer /usr/local/bin/consumer
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/consumer"]
CMD ["run"]
