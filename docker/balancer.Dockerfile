# The load balancer in front of the service's replicas: nginx from Debian's packages on the
# same base image (no registry needed). Its configuration is written at start from the
# environment (docker/balancer-entrypoint.sh).
ARG BASE_IMAGE=zenloop-base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends nginx-light \
    && rm -rf /var/lib/apt/lists/*
COPY balancer-entrypoint.sh /usr/local/bin/zenloop-balancer
ENTRYPOINT ["/usr/local/bin/zenloop-balancer"]
