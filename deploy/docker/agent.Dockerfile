# syntax=docker/dockerfile:1
# The cluster agent (one per cluster).
#
# Build from the repository root:
#   docker build -f deploy/docker/agent.Dockerfile -t atlhyper/atlhyper-agent:dev .
#
# Stage 1 compiles `atlhyper-agent` (crate atlhyper-agent) with the `dist` profile (release code, no debug info, stripped) and the pinned toolchain.
# Stage 2 is distroless/cc (glibc + libgcc, no shell, no package manager) running as the
# distroless "nonroot" user 65532.

ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --profile dist -p atlhyper-agent --bin atlhyper-agent \
 && install -D -m 0755 target/dist/atlhyper-agent /out/atlhyper-agent

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
LABEL org.opencontainers.image.title="atlhyper-agent" \
      org.opencontainers.image.source="https://github.com/atlhyper/atlhyper-rs" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/atlhyper-agent /usr/local/bin/atlhyper-agent
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/atlhyper-agent"]
