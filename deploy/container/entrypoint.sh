#!/bin/sh
# The image's entrypoint: picks the cache directory, then replaces itself with Node, so that Node
# is PID 1 and gets `docker stop`'s SIGTERM (the proxy drains and exits 0 on it).
set -eu

# rpardini/docker-registry-proxy users mount their cache volume at /docker_mirror_cache: use it
# when it is a mount point and nobody chose a cache directory. (Its nginx files are not read;
# pullthrough's own cache starts beside them.)
if [ -z "${PULLTHROUGH_CACHE_DIR:-}" ]; then
  if awk '$5 == "/docker_mirror_cache" { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    PULLTHROUGH_CACHE_DIR=/docker_mirror_cache
  else
    PULLTHROUGH_CACHE_DIR=/cache
  fi
  export PULLTHROUGH_CACHE_DIR
fi

# The flags of src/node-flags.ts (test/unit/node-flags.test.ts holds this line to them).
exec node --max-semi-space-size=4 /app/dist/main.js "$@"
