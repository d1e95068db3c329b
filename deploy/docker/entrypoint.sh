#!/bin/sh
# Replace this shell with `gabay ...` (default: `gabay workers`), so that `docker stop`'s SIGTERM
# reaches gabay's supervisor directly (PID 1), which forwards it once to Dramatiq: a drain.
set -e
exec gabay "$@"
