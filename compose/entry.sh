#!/bin/sh
# Entry script for the official rabbitmq image: write the Erlang cookie from $COOKIE (mode
# 0400, owned by rabbitmq; RABBITMQ_ERLANG_COOKIE is deprecated since 3.9), then hand over to
# the image's own docker-entrypoint.sh, which drops to the rabbitmq user with gosu.
set -e
umask 077
if [ -z "$COOKIE" ]; then echo "entry.sh: set COOKIE (the Erlang cookie)" >&2; exit 2; fi
printf '%s' "$COOKIE" > /var/lib/rabbitmq/.erlang.cookie
chown rabbitmq:rabbitmq /var/lib/rabbitmq/.erlang.cookie
chmod 400 /var/lib/rabbitmq/.erlang.cookie
exec docker-entrypoint.sh rabbitmq-server
