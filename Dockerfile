# syntax=docker/dockerfile:1
#
# One image per service, from one Dockerfile:
#
#   docker build --build-arg SERVICE=contacts -t meisa/contacts .
#
# SERVICE is contacts, automations, mailer or gateway. The build is the same
# `cargo build --release --bin $SERVICE` as everywhere: protos are compiled by crates/proto/build.rs
# with protox (pure Rust), migrations, templates and static files are embedded in the binary, so
# the builder needs no protoc and the image needs nothing beside the binary.
#
# The final image is distroless/cc (glibc, libgcc, CA certificates; no shell, no package manager),
# running as the numeric non-root user 65532. `serve` is the default command; the Kubernetes
# migration Jobs run `migrate`, and the gateway's image also answers `admin …`.

# The toolchain the project is built and tested with (Cargo.toml says rust-version 1.88 at least).
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
ARG SERVICE
RUN case "${SERVICE}" in contacts|automations|mailer|gateway) ;; \
      *) echo "build with --build-arg SERVICE=contacts|automations|mailer|gateway (got '${SERVICE}')" >&2; exit 1 ;; \
    esac
WORKDIR /src
COPY . .
# Cache mounts keep the crates.io download and the compiled dependencies between builds; the
# binary is copied out in the same step because the target directory is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin "${SERVICE}" \
 && mkdir -p /out/bin \
 && cp "target/release/${SERVICE}" "/out/bin/${SERVICE}" \
 && ln -s "${SERVICE}" /out/bin/meisa

# Debian 12 like the builder, so the binary finds the glibc it was linked against.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG SERVICE
LABEL org.opencontainers.image.title="meisa-${SERVICE}" \
      org.opencontainers.image.licenses="Apache-2.0"
# /usr/local/bin/<service> and /usr/local/bin/meisa (a link to it): `kubectl exec deploy/gateway
# -- gateway admin …` reads naturally, and the entrypoint is the same in every image.
COPY --from=builder /out/bin/ /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/meisa"]
CMD ["serve"]
