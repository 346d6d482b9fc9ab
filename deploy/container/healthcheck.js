// The image's HEALTHCHECK: GET /healthz on the address the proxy listens on, found the way the
// proxy finds it (the mounted /etc/pullthrough/config.yaml, or the file given as argument, under
// PULLTHROUGH_LISTEN and the other variables). Exits 0 when healthy, 1 otherwise, with a reason.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { parseConfig } from './dist/config/load.js';

const file = process.argv[2] ?? '/etc/pullthrough/config.yaml';

function readRaw() {
  try {
    return parse(readFileSync(file, 'utf8')) ?? {};
  } catch (error) {
    if (error?.code === 'ENOENT') return {}; // no file: the defaults and the environment
    throw error;
  }
}

/** The wildcard addresses are reached on loopback; a specific address as it is. */
function target({ host, port }) {
  if (host === '0.0.0.0' || host === '' || host === '::') return `http://127.0.0.1:${port}`;
  return host.includes(':') ? `http://[${host}]:${port}` : `http://${host}:${port}`;
}

try {
  const { listen } = parseConfig(readRaw(), process.env, file, '/');
  const url = `${target(listen)}/healthz`;
  const response = await fetch(url, { signal: AbortSignal.timeout(4_000) });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  process.exit(0);
} catch (error) {
  console.error(`unhealthy: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
