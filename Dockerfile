# ccpbx: one static binary, the shipped config.toml, sounds and scripts, run
# as a non-root user.
#
#   docker build -t ccpbx .
#   docker run --rm --network host ccpbx
#
# Use --network host. RTP needs a port range (media.rtp_start-rtp_end,
# 16384-32767 by default) and SDP must carry the address phones can reach;
# publishing thousands of UDP ports with -p is slow and Docker's NAT breaks the
# advertised address. With host networking the EXPOSE lines below are
# documentation only.
#
# The shipped config.toml sets an event-socket password that is public (it is
# in this repository). The socket listens on 127.0.0.1 only, but with host
# networking that is the host's loopback, so mount your own config with a new
# password for anything but a test:
#
#   docker run --rm --network host \
#     -v /etc/ccpbx/config.toml:/opt/ccpbx/config.toml:ro \
#     -v ccpbx-data:/opt/ccpbx/data ccpbx
#
# The wallboard is at http://127.0.0.1:8080/ on the host (with host
# networking), Prometheus scrapes /metrics there.
#
# Registrations and ACD state live in /opt/ccpbx/data (SQLite); mount a
# volume there to keep them across containers. Check a running container with
#   docker exec CONTAINER ccpbx cli -config /opt/ccpbx/config.toml -x 'show registrations'

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so editing code does not re-download modules.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=""
# CGO off: modernc.org/sqlite is pure Go, so the binary needs no libc and
# runs on distroless/static.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/bin/ccpbx ./cmd/ccpbx
# Refuse to build an image whose shipped config does not load.
RUN /out/bin/ccpbx check -config config.toml
# The runtime tree: config, the article's prompts and music, the Lua scripts
# (the binary embeds copies too; these on-disk ones can be replaced by mounts),
# and an empty data directory.
RUN mkdir -p /out/app/sounds /out/data \
 && cp config.toml /out/app/ \
 && cp -r sounds/ivr /out/app/sounds/ \
 && cp -r scripts /out/app/

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/bin/ccpbx /usr/local/bin/ccpbx
# Config, sounds and scripts belong to root (read-only for the service);
# only the data directory is writable by the nonroot user (uid 65532).
COPY --from=build /out/app /opt/ccpbx
COPY --from=build --chown=65532:65532 /out/data /opt/ccpbx/data
# config.toml uses relative paths (data, sounds, scripts): run from here.
WORKDIR /opt/ccpbx
USER nonroot:nonroot
# SIP: profile "internal" (phones) and "blueivr" (trunk).
EXPOSE 5060/udp 5060/tcp 5080/udp 5080/tcp
# Event socket: listens on 127.0.0.1 unless event_socket.listen says otherwise.
EXPOSE 8021/tcp
# Web server (wallboard, REST API, /metrics, /healthz): 127.0.0.1 unless
# [http] listen says otherwise (beyond loopback it needs a token or a
# username and password).
EXPOSE 8080/tcp
VOLUME ["/opt/ccpbx/data"]
# Healthy when /healthz says the SIP listeners are up and the database is
# writable. Distroless has no curl: `ccpbx health` reads [http] listen from
# the same config and asks /healthz itself.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/ccpbx", "health", "-config", "/opt/ccpbx/config.toml", "-timeout", "8s"]
# ccpbx stops taking calls, hangs up live ones with BYE and exits on SIGTERM.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/ccpbx"]
CMD ["serve", "-config", "/opt/ccpbx/config.toml"]
