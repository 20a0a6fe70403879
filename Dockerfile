# The recledger container image: a static binary FROM scratch, so building
# it downloads no base image at all. `make image` builds the binary
# (CGO_ENABLED=0, as make release does) and stages it with the CA
# certificates in dist/image/, then builds this file with the repository as
# the context (.dockerignore sends only dist/image/). By hand:
#
#	make image-context && docker build -t recledger .
#
# For another platform, stage it too (make image-context
# IMAGE_PLATFORMS="linux/amd64 linux/arm64") and build with --platform.
#
# No shell, no package manager and no curl inside: the HEALTHCHECK runs the
# binary's own probe, `recledger health`.
FROM scratch
ARG TARGETOS
ARG TARGETARCH
# The CA bundle of the machine that staged the image: outbound webhooks over
# https verify their endpoints against it (Go reads this path first).
COPY dist/image/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# /data is the volume the database lives in, and /tmp SQLite's scratch space;
# both staged empty and owned by the user the server runs as (a named volume
# takes the owner of /data; a host directory mounted there must be writable
# by uid 65532).
COPY --chown=65532:65532 dist/image/data/ /data/
COPY --chown=65532:65532 dist/image/tmp/ /tmp/
COPY dist/image/${TARGETOS}_${TARGETARCH}/recledger /recledger
# Numeric, so runtimes can check it is not root without an /etc/passwd.
USER 65532:65532
ENV RECLEDGER_ADDR=0.0.0.0:8080 \
    RECLEDGER_DB=sqlite:/data/recledger.db \
    RECLEDGER_LOG_FORMAT=json \
    TMPDIR=/tmp
VOLUME ["/data"]
EXPOSE 8080
WORKDIR /data
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/recledger", "health", "--timeout", "3s"]
# SIGTERM (docker stop) stops it gracefully; give it more than its
# --shutdown-timeout (15 s) with docker stop -t 30.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/recledger"]
CMD ["serve"]
