// The hardware floor of a cold fill, measured in the same run on the same machine: what the
// unavoidable work costs in CPU seconds per GiB when each part runs alone with large reused
// buffers. sha256 and the AEAD ciphers come from `openssl speed` (user CPU time, C code with the
// same assembly Node's OpenSSL uses); a loopback socket copy and a page-cache file write from
// floor-probe.ts, a few lines of Node. A cold fill does each once per byte: decrypt what upstream
// sends, hash it, write it to the cache file, encrypt it for the client, and the kernel's socket
// receive and send.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { summarize } from './harness.ts';

const GiB = 2 ** 30;
const PROBE = path.join(import.meta.dirname, 'floor-probe.ts');

export interface FloorPart {
  readonly name: string;
  /** CPU seconds per GiB. */
  readonly cost: number;
}

export interface Floor {
  readonly parts: readonly FloorPart[];
  /** CPU seconds per GiB of the parts together. */
  readonly total: number;
}

/** OpenSSL's EVP name of a negotiated TLS cipher suite (TLS 1.3 and 1.2 names). */
export function evpCipher(suite: string): string {
  if (/AES_?256_GCM|AES256-GCM/i.test(suite)) return 'aes-256-gcm';
  if (/AES_?128_GCM|AES128-GCM/i.test(suite)) return 'aes-128-gcm';
  if (/CHACHA20/i.test(suite)) return 'chacha20-poly1305';
  throw new Error(`no floor for the cipher suite ${suite}`);
}

/** `openssl speed` at 16 KiB blocks (a full TLS record): CPU seconds per GiB. */
function opensslSpeed(evp: string, decrypt: boolean): number {
  const args = [
    'speed',
    '-mr',
    '-seconds',
    '2',
    '-bytes',
    '16384',
    ...(decrypt ? ['-decrypt'] : []),
    '-evp',
    evp,
  ];
  const result = spawnSync('openssl', args, { encoding: 'utf8' });
  // `+F:<n>:<name>:<bytes per second>` in machine-readable mode.
  const line = result.stdout.split('\n').find((row) => row.startsWith('+F:'));
  const bytesPerSecond = Number(line?.split(':')[3]);
  if (!(bytesPerSecond > 0))
    throw new Error(`openssl ${args.join(' ')}: ${result.stderr.trim() || 'no figure'}`);
  return GiB / bytesPerSecond;
}

async function probe(kind: 'socket' | 'file', bytes: number, dir: string): Promise<number> {
  const child = spawn(process.execPath, [PROBE, kind, String(bytes), dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const [code] = (await once(child, 'close')) as [number | null];
  const seconds = Number(out.trim());
  if (code !== 0 || !(seconds >= 0)) throw new Error(`floor probe ${kind} failed (exit ${String(code)})`);
  return seconds / (bytes / GiB);
}

/** The median of `runs` probes: the page-cache write in particular varies with writeback. */
async function medianProbe(
  kind: 'socket' | 'file',
  bytes: number,
  dir: string,
  runs: number,
): Promise<number> {
  const values: number[] = [];
  for (let run = 0; run < runs; run++) values.push(await probe(kind, bytes, dir));
  return summarize(values).median;
}

/**
 * The floor for a cold fill whose upstream TLS uses `upstreamSuite` and whose client TLS uses
 * `clientSuite`; the file write goes to `dir` (the filesystem the cache is on).
 */
export async function measureFloor(options: {
  upstreamSuite: string;
  clientSuite: string;
  dir: string;
  bytes: number;
  runs: number;
}): Promise<Floor> {
  const decrypt = evpCipher(options.upstreamSuite);
  const encrypt = evpCipher(options.clientSuite);
  const parts: FloorPart[] = [
    { name: 'sha256', cost: opensslSpeed('sha256', false) },
    { name: `${decrypt} decrypt`, cost: opensslSpeed(decrypt, true) },
    { name: `${encrypt} encrypt`, cost: opensslSpeed(encrypt, false) },
    {
      name: 'loopback socket send + receive',
      cost: await medianProbe('socket', options.bytes, options.dir, options.runs),
    },
    { name: 'page-cache write', cost: await medianProbe('file', options.bytes, options.dir, options.runs) },
  ];
  return { parts, total: parts.reduce((sum, part) => sum + part.cost, 0) };
}

/** The suite a Node TLS client (what the proxy's upstream client is) negotiates with `host:port`. */
export async function nodeClientSuite(host: string, port: number, caFile: string): Promise<string> {
  const socket = tls.connect({ host, port, ca: readFileSync(caFile) });
  try {
    await once(socket, 'secureConnect');
    return socket.getCipher().standardName;
  } finally {
    socket.destroy();
  }
}

/**
 * The suite curl negotiates with `url`. Node's TLS server, like nginx, follows the client's
 * preference, so curl's choice against any server is what it picks against the proxy's leaf.
 */
export function curlSuite(url: string, cacert: string): string {
  const result = spawnSync(
    'curl',
    ['-sv', '-o', '/dev/null', '--head', '--noproxy', '*', '--cacert', cacert, url],
    {
      encoding: 'utf8',
    },
  );
  const match = /SSL connection using \S+ \/ (\S+)/.exec(result.stderr);
  if (!match?.[1]) throw new Error(`curl did not report its cipher suite for ${url}`);
  return match[1];
}

export function describeFloor(floor: Floor): string {
  const parts = floor.parts.map((part) => `${part.name} ${part.cost.toFixed(2)}`).join(' + ');
  return `floor ${floor.total.toFixed(2)} CPU-s/GiB (${parts})`;
}
