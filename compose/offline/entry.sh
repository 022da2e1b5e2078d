#!/bin/sh
# PID 1 is tini (docker run --init / compose init: true). Write the cookie from $COOKIE
# (mode 0400, owned by rabbitmq), then exec the server as the rabbitmq user with setpriv:
# the /usr/sbin wrapper would `su`, which breaks signal delivery from tini.
set -e
umask 077
if [ -z "$COOKIE" ]; then echo "entry.sh: set COOKIE (the Erlang cookie)" >&2; exit 2; fi
printf '%s' "$COOKIE" > /var/lib/rabbitmq/.erlang.cookie
chown rabbitmq:rabbitmq /var/lib/rabbitmq/.erlang.cookie
chmod 400 /var/lib/rabbitmq/.erlang.cookie
export HOME=/var/lib/rabbitmq RABBITMQ_LOGS=-
# The package's version is found at run time (3.10.8 in bookworm), never hard-coded.
for d in /usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin; do server="$d/rabbitmq-server"; done
[ -x "$server" ] || { echo "entry.sh: no rabbitmq_server-*/sbin/rabbitmq-server" >&2; exit 2; }
exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups "$server"
