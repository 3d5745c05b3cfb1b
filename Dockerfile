# media-gen as a shared MCP server over Streamable HTTP (and legacy SSE):
#
#   docker build -t media-gen .
#   docker run -d --name media-gen -p 127.0.0.1:8318:8318 \
#     -e MCP_HTTP_TOKEN="$(openssl rand -hex 32)" -e MCP_CLIPROXY_API_KEY=… \
#     -v media-gen-library:/data media-gen
#
# The server refuses to start without MCP_HTTP_TOKEN (docker/entrypoint.sh):
# in a container it listens on every interface. docs/install.md has the rest.

# Build: the same toolchain floor as Cargo.toml's rust-version; a C and C++
# compiler for SQLite and OpenH264 (compiled from source into the binary).
FROM rust:1.88-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin media-gen \
 && strip target/release/media-gen \
 && install -m 0755 target/release/media-gen /media-gen

# Run: Debian slim (glibc and libstdc++, which the binary links) with the
# system CA certificates (HTTPS to the Gemini API checks them), as a user
# without privileges whose home and library are the volume.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin media-gen \
 && mkdir -p /data && chown media-gen:media-gen /data
COPY --from=build /media-gen /usr/local/bin/media-gen
COPY docker/entrypoint.sh /usr/local/bin/media-gen-entrypoint
ENV HOME=/data \
    MCP_OUTPUT_DIR=/data/generated \
    MCP_SSE_PORT=8318
USER media-gen
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8318
ENTRYPOINT ["/usr/local/bin/media-gen-entrypoint"]
CMD ["serve", "--transport", "http", "--host", "0.0.0.0"]
