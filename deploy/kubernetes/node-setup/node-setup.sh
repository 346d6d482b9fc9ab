#!/bin/sh
# Points one node's container runtime at pullthrough: the proxy's CA into the node's trust store,
# HTTPS_PROXY/HTTP_PROXY/NO_PROXY into a systemd drop-in of the runtime's service, and a restart of
# the runtime when either changed (running containers keep running). Run by the node-setup
# DaemonSet with the node's / at $HOST_ROOT; safe to run again: unchanged files change nothing.
set -eu

HOST_ROOT=${HOST_ROOT:-/host}
PROXY_SERVICE=${PROXY_SERVICE:-pullthrough}
PROXY_PORT=${PROXY_PORT:-3128}
RUNTIME_SERVICE=${RUNTIME_SERVICE:-containerd}
# How a command runs on the node itself (its mount, PID and network namespaces).
HOST_EXEC=${HOST_EXEC:-nsenter --target 1 --mount --uts --ipc --net --pid --}
: "${NO_PROXY:?set NO_PROXY to the cluster service and pod ranges (the ConfigMap pullthrough-node-setup)}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Nodes do not resolve cluster names: the runtime gets the Service's cluster IP.
proxy_ip=$(node -e 'require("node:dns").promises.lookup(process.argv[1]).then((a) => console.log(a.address))' "$PROXY_SERVICE")
case $proxy_ip in *:*) proxy="http://[$proxy_ip]:$PROXY_PORT" ;; *) proxy="http://$proxy_ip:$PROXY_PORT" ;; esac

# The CA from the proxy's own page (it may have made it on first start).
node -e '
fetch(process.argv[1], { signal: AbortSignal.timeout(10_000) }).then(async (r) => {
  const text = await r.text();
  if (!r.ok || !text.includes("BEGIN CERTIFICATE")) throw new Error(`${process.argv[1]}: ${r.status}`);
  process.stdout.write(text);
});' "$proxy/ca.crt" >"$work/ca.crt"

changed=
# place SOURCE PATH-ON-NODE: copies when the content differs.
place() {
  if ! cmp -s "$1" "$HOST_ROOT$2"; then
    mkdir -p "$(dirname "$HOST_ROOT$2")"
    cp "$1" "$HOST_ROOT$2"
    chmod 0644 "$HOST_ROOT$2"
    changed=1
    echo "node-setup: wrote $2"
  fi
}

if [ -d "$HOST_ROOT/etc/pki/ca-trust/source/anchors" ]; then
  place "$work/ca.crt" /etc/pki/ca-trust/source/anchors/pullthrough.crt # RHEL, Fedora
  update_trust=update-ca-trust
else
  place "$work/ca.crt" /usr/local/share/ca-certificates/pullthrough.crt # Debian, Ubuntu
  update_trust=update-ca-certificates
fi

cat >"$work/proxy.conf" <<CONF
# Written by pullthrough's node-setup DaemonSet.
[Service]
Environment="HTTPS_PROXY=$proxy" "HTTP_PROXY=$proxy" "NO_PROXY=$NO_PROXY"
CONF
place "$work/proxy.conf" "/etc/systemd/system/$RUNTIME_SERVICE.service.d/pullthrough-proxy.conf"

if [ -n "$changed" ]; then
  # shellcheck disable=SC2086 # HOST_EXEC is a command line
  $HOST_EXEC sh -c "$update_trust && systemctl daemon-reload && systemctl restart $RUNTIME_SERVICE"
  echo "node-setup: $RUNTIME_SERVICE restarted with HTTPS_PROXY=$proxy"
else
  echo "node-setup: already set up (HTTPS_PROXY=$proxy)"
fi
