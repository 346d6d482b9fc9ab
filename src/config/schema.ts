// The shape of config.yaml: every key, its default beside it, and how it is validated.
// Parsing only; reading the file and the environment is load.ts. The shipped config.yaml
// documents the same keys for operators and a test keeps the two in step.
import { z } from 'zod';
import { parseDuration, parseSize } from './units.ts';

/** Registries intercepted when config.yaml lists none. `docker.io` stands for Docker Hub's three hosts. */
export const DEFAULT_REGISTRIES: readonly string[] = [
  'docker.io',
  'ghcr.io',
  'quay.io',
  'gcr.io',
  'registry.k8s.io',
  'k8s.gcr.io',
  'mcr.microsoft.com',
  'registry.gitlab.com',
  'public.ecr.aws',
];

const HOST_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;

function isHostname(host: string): boolean {
  return host.length <= 253 && host.split('.').every((label) => HOST_LABEL.test(label));
}

/** `host`, `host:port`, `*.example.com`, `*.example.com:5000`, lower-cased. Pure, for schema and tests. */
export function parseRegistryEntry(entry: string): { host: string; port: number | undefined } | undefined {
  const match = /^(\*\.)?([^:*/\s]+)(?::(\d{1,5}))?$/.exec(entry.trim().toLowerCase());
  if (!match?.[2] || !isHostname(match[2])) return undefined;
  const port = match[3] === undefined ? undefined : Number(match[3]);
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  return { host: (match[1] ?? '') + match[2], port };
}

const registryEntry = z.string().transform((value, ctx) => {
  const parsed = parseRegistryEntry(value);
  if (!parsed) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a host, host:port or *.domain entry` });
    return z.NEVER;
  }
  return parsed.port === undefined ? parsed.host : `${parsed.host}:${parsed.port}`;
});

const listenAddress = z.string().transform((value, ctx) => {
  const match = /^(?:\[([0-9a-f:.]+)\]|([^:[\]]*)):(\d{1,5})$/i.exec(value.trim());
  const port = Number(match?.[3]);
  if (!match || port > 65535) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not host:port (e.g. 0.0.0.0:3128, [::]:3128)` });
    return z.NEVER;
  }
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
});

const duration = z.string().transform((value, ctx) => {
  const ms = parseDuration(value);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration (e.g. 250ms, 10s, 5m, 1h, 7d)` });
    return z.NEVER;
  }
  return ms;
});

const size = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const bytes = parseSize(value);
  if (bytes === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a size (e.g. 500MiB, 32GiB, 32g)` });
    return z.NEVER;
  }
  return bytes;
});

const credential = z.strictObject({
  host: registryEntry,
  username: z.string().min(1),
  password: z.string(),
});

/** A registry with settings of its own; unset ones come from `cache`. */
const registrySettings = z.strictObject({
  host: registryEntry,
  /** Overrides cache.tagTtl for this registry. */
  tagTtl: duration.optional(),
  /** Overrides cache.maxStale for this registry. */
  maxStale: duration.optional(),
});

/** `registries` entries: a bare host, or `{host, ...settings}`. */
const registry = z.preprocess(
  (value) => (typeof value === 'string' ? { host: value } : value),
  registrySettings,
);

export type RegistrySettings = z.output<typeof registrySettings>;

export const configSchema = z.strictObject({
  /** Where the proxy listens for CONNECT and plain-HTTP proxy requests. */
  listen: listenAddress.prefault('0.0.0.0:3128'),
  /** Hosts whose registry traffic is intercepted (TLS terminated, /v2/ handled); everything else is tunnelled. */
  registries: z.array(registry).prefault([...DEFAULT_REGISTRIES]),
  ca: z
    .strictObject({
      /** Holds ca.crt and ca.key; created on first start when both are absent. */
      dir: z.string().min(1).default('./ca'),
      /** Passphrase of an encrypted ca.key. */
      passphrase: z.string().nullable().default(null),
      /** File whose first line is the passphrase (wins over `passphrase`). */
      passphraseFile: z.string().min(1).nullable().default(null),
    })
    .prefault({}),
  cache: z
    .strictObject({
      dir: z.string().min(1).default('./cache'),
      /** Disk budget of the cache. Accepted now; enforced once eviction lands. */
      maxSize: size.prefault('32GiB'),
      /**
       * How long a tag's manifest is served without asking upstream. 0s: every pull asks with a
       * HEAD (not counted by Docker Hub's pull limit) and is served from the cache when unchanged.
       */
      tagTtl: duration.prefault('0s'),
      /** How old a tag may be and still be served when upstream is unreachable or answers 5xx/429. */
      maxStale: duration.prefault('30d'),
      /** Largest manifest accepted from upstream (distribution's own limit is 4 MiB). */
      maxManifestSize: size.prefault('4MiB'),
    })
    .prefault({}),
  upstream: z
    .strictObject({
      /** Verify upstream TLS certificates. Turning this off is logged loudly at start. */
      verifyTls: z.boolean().default(true),
      /** PEM files of extra CAs trusted upstream, on top of Node's, the OS's and NODE_EXTRA_CA_CERTS. */
      caFiles: z.array(z.string().min(1)).default([]),
      connectTimeout: duration.prefault('10s'),
      /** Time allowed for upstream response headers (a registry may think long about a pushed blob). */
      headersTimeout: duration.prefault('5m'),
      /** Upstream silence allowed while a body is flowing. */
      bodyTimeout: duration.prefault('60s'),
      /** rpardini's AUTH_REGISTRIES. Accepted now; used once the private-content policy lands. */
      credentials: z.array(credential).default([]),
    })
    .prefault({}),
  /** Pushes (POST/PUT/PATCH/DELETE under /v2/) go upstream; false answers 405 UNSUPPORTED. */
  allowPush: z.boolean().default(true),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    })
    .prefault({}),
  /** On SIGTERM/SIGINT, how long in-flight requests may finish before tunnels and sockets are cut. */
  shutdownTimeout: duration.prefault('10s'),
});

export type Config = z.output<typeof configSchema>;
