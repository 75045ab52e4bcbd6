# syntax=docker/dockerfile:1
# The master (outside or inside a cluster; SQLite under /var/lib/atlhyper).
#
# Build from the repository root:
#   docker build -f deploy/docker/master.Dockerfile -t atlhyper/atlhyper-master:dev .
#
# Stage 1 compiles `atlhyper-master` (crate atlhyper-master) with the `dist` profile (release code, no debug info, stripped) and the pinned toolchain.
# Stage 2 is distroless/cc (glibc + libgcc, no shell, no package manager) running as the
# distroless "nonroot" user 65532.

ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --profile dist -p atlhyper-master --bin atlhyper-master \
 && install -D -m 0755 target/dist/atlhyper-master /out/atlhyper-master \
 && install -d -m 0750 -o 65532 -g 65532 /out/data

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
LABEL org.opencontainers.image.title="atlhyper-master" \
      org.opencontainers.image.source="https://github.com/atlhyper/atlhyper-rs" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/atlhyper-master /usr/local/bin/atlhyper-master
# SQLite lives here, owned by the runtime user so a fresh named volume is writable;
# the Kubernetes manifest mounts a PVC here (fsGroup 65532).
COPY --from=builder --chown=65532:65532 /out/data /var/lib/atlhyper
WORKDIR /var/lib/atlhyper
VOLUME ["/var/lib/atlhyper"]
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/atlhyper-master"]
