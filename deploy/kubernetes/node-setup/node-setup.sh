#!/bin/sh
# Points one node's container runtime at pullthrough with the script `pullthrough setup
# kubernetes` prints (README "Pointing clients at it"): HTTPS_PROXY/NO_PROXY in a drop-in of the
# runtime's unit, the proxy's CA in the node's trust store, the runtime restarted. Run by the
# node-setup DaemonSet with the node's / at $HOST_ROOT; the script runs on the node (nsenter into
# PID 1), and only when it or the CA changed since its last run: a restart is not free.
set -eu

HOST_ROOT=${HOST_ROOT:-/host}
PROXY_SERVICE=${PROXY_SERVICE:-pullthrough}
PROXY_PORT=${PROXY_PORT:-3128}
RUNTIME=${RUNTIME:-containerd}
DIRECT=${DIRECT:-}
: "${CLUSTER_CIDR:?the pod range (ConfigMap pullthrough-node-setup)}"
: "${SERVICE_CIDR:?the service range (ConfigMap pullthrough-node-setup)}"
# The CLI in the image; how a command runs on the node itself (its mount, PID and network namespaces).
PULLTHROUGH=${PULLTHROUGH:-pullthrough}
HOST_EXEC=${HOST_EXEC:-nsenter --target 1 --mount --uts --ipc --net --pid --}
STATE=/var/lib/pullthrough-node-setup

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Nodes do not resolve cluster names: the runtime gets the Service's cluster IP.
proxy_ip=$(node -e 'require("node:dns").promises.lookup(process.argv[1]).then((a) => console.log(a.address))' "$PROXY_SERVICE")
case $proxy_ip in *:*) proxy="http://[$proxy_ip]:$PROXY_PORT" ;; *) proxy="http://$proxy_ip:$PROXY_PORT" ;; esac

$PULLTHROUGH setup kubernetes --proxy "$proxy" --runtime "$RUNTIME" \
  --cluster-cidr "$CLUSTER_CIDR" --service-cidr "$SERVICE_CIDR" ${DIRECT:+--direct "$DIRECT"} >"$work/setup.sh"
# The CA as the script will fetch it: a new CA means a new run.
node -e '
fetch(process.argv[1], { signal: AbortSignal.timeout(10_000) }).then(async (r) => {
  const text = await r.text();
  if (!r.ok || !text.includes("BEGIN CERTIFICATE")) throw new Error(`${process.argv[1]}: ${r.status}`);
  process.stdout.write(text);
});' "$proxy/ca.crt" >"$work/ca.crt"
cat "$work/setup.sh" "$work/ca.crt" >"$work/state"

if cmp -s "$work/state" "$HOST_ROOT$STATE/applied"; then
  echo "node-setup: already set up ($RUNTIME through $proxy)"
  exit 0
fi
mkdir -p "$HOST_ROOT$STATE"
cp "$work/setup.sh" "$HOST_ROOT$STATE/setup.sh"
# shellcheck disable=SC2086 # HOST_EXEC is a command line
$HOST_EXEC bash "$STATE/setup.sh"
cp "$work/state" "$HOST_ROOT$STATE/applied"
echo "node-setup: $RUNTIME restarted through $proxy"
