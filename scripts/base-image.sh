#!/usr/bin/env bash
# Build zenloop's local base image from the OS package repository, once.
#
# Why: public image registries may be unreachable, so `FROM python:3.11-slim` cannot be
# pulled. debootstrap builds a minimal Debian bookworm with Python 3.11 from the same
# Debian mirror apt uses, and `docker import` turns it into an image (about 2 minutes).
# Idempotent: does nothing when the image exists.
#
# With registry access skip all this: export ZENLOOP_BASE_IMAGE=python:3.11-slim-bookworm
# (any image with python3.11, venv and pip); this script then only pulls it.
#
# Usage: scripts/base-image.sh [IMAGE]      (default: $ZENLOOP_BASE_IMAGE or zenloop-base:bookworm)
set -euo pipefail

LOCAL_IMAGE="zenloop-base:bookworm"
IMAGE="${1:-${ZENLOOP_BASE_IMAGE:-$LOCAL_IMAGE}}"
SUITE="bookworm"
PACKAGES="python3,python3-venv,python3-pip,ca-certificates"
IMAGE_CA="/usr/local/share/zenloop/build-ca.crt"

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "base image $IMAGE exists"
    exit 0
fi
if [[ "$IMAGE" != "$LOCAL_IMAGE" ]]; then
    echo "pulling public base image $IMAGE"
    exec docker pull "$IMAGE"
fi

# the mirror apt uses here (deb822 or one-line sources), else Debian's own
mirror="$(grep -hoE '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
    | grep -v security | head -n1 | awk '{print $2}' || true)"
mirror="${mirror:-http://deb.debian.org/debian}"

rootfs="$(mktemp -d /tmp/zenloop-base.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
echo "debootstrap $SUITE from $mirror into $rootfs"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$mirror" >/dev/null
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
# This machine reaches the package index through its own CA (the file PIP_CERT names):
# the local image trusts what this machine trusts, so pip works in builds. A public base
# image on a machine with plain internet access needs none of this.
changes=()
if [[ -n "${PIP_CERT:-}" && -f "$PIP_CERT" ]]; then
    install -D -m 0644 "$PIP_CERT" "$rootfs$IMAGE_CA"
    changes+=(--change "ENV PIP_CERT=$IMAGE_CA" --change "ENV SSL_CERT_FILE=$IMAGE_CA")
fi
tar -C "$rootfs" -c . | docker import "${changes[@]}" \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    - "$IMAGE"
echo "built base image $IMAGE"
