# PostgreSQL for the prediction log (and the monitor's state and retrain lease), from the
# same base image and Debian's packages: no registry needed.
ARG BASE_IMAGE=zenloop-base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/*
COPY postgres-entrypoint.sh /usr/local/bin/zenloop-postgres
# owned by postgres in the image, so a new named volume starts with that owner
RUN install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data
USER postgres
# a stop is PostgreSQL's fast shutdown (SIGINT): open sessions are ended, so it stops at
# once and cleanly; SIGTERM would wait for every client to disconnect first
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/zenloop-postgres"]
