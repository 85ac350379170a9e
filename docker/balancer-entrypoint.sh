#!/usr/bin/env bash
# nginx in front of the service's replicas, configured from the environment:
#   LISTEN     where clients connect (host:port, 127.0.0.1 only by default)
#   UPSTREAMS  the replicas, space-separated host:port
# A replica that refuses a connection or fails (502/503/504) is skipped for the next one,
# predictions included: a prediction is acknowledged only once its answer arrives, so a
# replica that dies mid-request loses nothing acknowledged (its row may be logged twice).
# Once part of an answer has come back, nginx cannot try another replica: if the replica
# dies then, that client's connection is cut, and the prediction was never acknowledged.
# With no replica left to try, the answer is 503, as a replica says "not now".
set -euo pipefail
LISTEN="${LISTEN:-127.0.0.1:8000}"
UPSTREAMS="${UPSTREAMS:?set UPSTREAMS to the replicas, e.g. '127.0.0.1:8001 127.0.0.1:8002'}"
servers=""
for upstream in $UPSTREAMS; do
    servers+="        server ${upstream} max_fails=1 fail_timeout=2s;"$'\n'
done
cat > /etc/nginx/nginx.conf <<CONF
worker_processes auto;
pid /run/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
    access_log off;
    upstream zenloop {
${servers}        keepalive 64;
    }
    server {
        listen ${LISTEN} reuseport;
        location = /balancer-health { return 200 "ok\n"; }
        location / {
            proxy_pass http://zenloop;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_next_upstream error timeout http_502 http_503 http_504 non_idempotent;
            proxy_next_upstream_tries 3;
            proxy_connect_timeout 2s;
            proxy_read_timeout 300s;
            # the service enforces its own body limit; the body is buffered (the default),
            # which is what lets a request whose replica died be passed to the next one
            client_max_body_size 0;
            # no replica left to try (all down, or all just failed): the replicas' own
            # answer to "not now", never a bare 502
            error_page 502 504 = @unavailable;
        }
        location @unavailable {
            default_type application/json;
            return 503 '{"detail": "no replica can answer now; retry"}';
        }
    }
}
CONF
exec nginx -g 'daemon off;'
