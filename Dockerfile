# syntax=docker/dockerfile:1

# Build stage: the consumer links ONNX Runtime through cgo (package gpu,
# github.com/yalue/onnxruntime_go loads the library at run time), so it is
# built with cgo against Debian 12's glibc; the load generator is static.
FROM golang:1.26-bookworm AS build
WORKDIR /src
ENV GOFLAGS=-buildvcs=false
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /out/consumer ./cmd/consumer && \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/loadgen ./cmd/loadgen

# ONNX Runtime's CPU library, from the npm package onnxruntime-node (the
# same source and version as scripts/tools.sh); --ignore-scripts skips the
# download of CUDA binaries. For GPUs, mount a CUDA build of the library and
# point TEXTPULSE_ORT_LIB at it.
FROM node:22-bookworm-slim AS ort
ARG ORT_NODE_VERSION=1.30.0
WORKDIR /ort
RUN npm install --ignore-scripts --no-audit --no-fund --prefix /ort "onnxruntime-node@${ORT_NODE_VERSION}" && \
    arch="$(uname -m | sed 's/x86_64/x64/; s/aarch64/arm64/')" && \
    cp "node_modules/onnxruntime-node/bin/napi-v6/linux/${arch}/libonnxruntime.so.1" /ort/libonnxruntime.so.1

# Load generator image (docker compose service loadgen): static binary only.
FROM gcr.io/distroless/static-debian12:nonroot AS loadgen
COPY --from=build /out/loadgen /usr/local/bin/loadgen
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/loadgen"]

# Runtime stage (the default target): glibc and libstdc++ for ONNX Runtime,
# no shell, no package manager, an unprivileged user.
FROM gcr.io/distroless/cc-debian12:nonroot AS consumer
COPY --from=build /out/consumer /usr/local/bin/consumer
COPY --from=ort /ort/libonnxruntime.so.1 /usr/local/lib/libonnxruntime.so.1
ENV TEXTPULSE_ORT_LIB=/usr/local/lib/libonnxruntime.so.1
USER nonroot:nonroot
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/consumer"]
CMD ["run"]
