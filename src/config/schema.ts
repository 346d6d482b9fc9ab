// The shape of config.yaml: every key, its default beside it, and how it is validated.
// Parsing only; reading the file and the environment is load.ts. The shipped config.yaml
// documents the same keys for operators and a test keeps the two in step.
import { z } from 'zod';
import { parsePin } from './pins.ts';
import { isRepositoryPattern } from './repository-filter.ts';
import { parseMirrorLocation } from './mirrors.ts';
import { parseCidr, formatCidr } from '../net/networks.ts';
import { parseProxyUrl } from '../net/parent-proxy.ts';
import { describeValue } from './issues.ts';
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

/**
 * A value read by `parse`: what it refuses (a string it cannot read, a number where text is
 * needed, a missing key) reads `<found> is not <what>`, in the words of issues.ts.
 */
function parsedValue<T>(what: string, parse: (value: unknown) => T | undefined) {
  return z.unknown().transform((value, ctx) => {
    const parsed = value === undefined || value === null ? undefined : parse(value);
    if (parsed === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: value === undefined ? `missing: expected ${what}` : `${describeValue(value)} is not ${what}`,
      });
      return z.NEVER;
    }
    return parsed;
  });
}

const asString =
  <T>(parse: (value: string) => T | undefined) =>
  (value: unknown) =>
    typeof value === 'string' ? parse(value) : undefined;

const registryEntry = parsedValue(
  'a host, host:port or *.domain entry',
  asString((value) => {
    const parsed = parseRegistryEntry(value);
    if (!parsed) return undefined;
    return parsed.port === undefined ? parsed.host : `${parsed.host}:${parsed.port}`;
  }),
);

const listenAddress = parsedValue(
  'host:port (e.g. 0.0.0.0:3128, [::]:3128)',
  asString((value) => {
    const match = /^(?:\[([0-9a-f:.]+)\]|([^:[\]]*)):(\d{1,5})$/i.exec(value.trim());
    const port = Number(match?.[3]);
    if (!match || port > 65535) return undefined;
    return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
  }),
);

const duration = parsedValue('a duration (e.g. 250ms, 10s, 5m, 1h, 7d)', asString(parseDuration));

const size = parsedValue('a size (e.g. 500MiB, 32GiB, 32g)', (value) =>
  typeof value === 'string' || typeof value === 'number' ? parseSize(value) : undefined,
);

const redisUrl = parsedValue(
  'a redis:// or rediss:// URL',
  asString((value) =>
    /^rediss?:$/.test(URL.parse(value.trim())?.protocol ?? '') ? value.trim() : undefined,
  ),
);

const httpUrl = parsedValue(
  'an http:// URL',
  asString((value) =>
    URL.parse(value.trim())?.protocol === 'http:' ? value.trim().replace(/\/+$/, '') : undefined,
  ),
);

const cidr = parsedValue(
  'an IP address or CIDR (e.g. 10.0.0.0/8, fd00::/8)',
  asString((value) => {
    const parsed = parseCidr(value);
    return parsed && formatCidr(parsed);
  }),
);

/** Free space to keep on the cache's filesystem: bytes, or a percentage of the filesystem. */
const minFree = parsedValue('a size or a percentage (e.g. 10%, 20GiB)', (value) => {
  const percent = typeof value === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(value) : null;
  if (percent) {
    const share = Number(percent[1]);
    return share <= 100 ? { percent: share } : undefined;
  }
  const bytes = typeof value === 'string' || typeof value === 'number' ? parseSize(value) : undefined;
  return bytes === undefined ? undefined : { bytes };
});

const pin = parsedValue(
  'a pin (e.g. docker.io/library/postgres:16, registry.k8s.io/pause:*, ghcr.io/org/*)',
  asString((value) => (parsePin(value) === undefined ? undefined : value.trim())),
);

/** A duration, or a bare 0 (`PULLTHROUGH_WATCH_INTERVAL=0` turns watching off). */
const watchInterval = z.preprocess((value) => (value === 0 || value === '0' ? '0s' : value), duration);

const webhookUrl = parsedValue(
  'an http:// or https:// URL',
  asString((value) => {
    const url = URL.parse(value.trim());
    return url && (url.protocol === 'http:' || url.protocol === 'https:') ? url.href : undefined;
  }),
);

/** The schemas of values written in units: effective.ts writes a config back with them. */
export {
  duration as durationSchema,
  size as sizeSchema,
  listenAddress as listenSchema,
  minFree as minFreeSchema,
};

const parentProxyUrl = parsedValue(
  'an http://[user:pass@]host:port URL',
  asString((value) => (parseProxyUrl(value) ? value.trim() : undefined)),
);

const port = z.number().int().min(1).max(65535);

/** An http(s) URL of an S3 API endpoint, without a path: buckets and keys are appended. */
const s3Endpoint = parsedValue(
  'an http(s):// URL (e.g. http://minio.internal:9000)',
  asString((value) => {
    const url = URL.parse(value.trim());
    const ok = url && (url.protocol === 'http:' || url.protocol === 'https:') && url.pathname === '/';
    return ok && !url.search && !url.username ? url.origin : undefined;
  }),
);

/** S3's bucket naming rules (3–63 characters, lower case, digits, dots and hyphens). */
const s3Bucket = parsedValue(
  'a bucket name (3-63 characters: a-z, 0-9, dots, hyphens)',
  asString((value) => (/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(value) ? value : undefined)),
);

/** A key prefix, stored with one trailing slash: `cache` and `cache/` both read `cache/`. */
const s3Prefix = parsedValue('a key prefix (e.g. pullthrough/), without a leading slash', (value) => {
  if (typeof value !== 'string' || value.startsWith('/') || value.includes('//')) return undefined;
  if (!/^[A-Za-z0-9!_.*'()/-]*$/.test(value)) return undefined;
  return value === '' || value.endsWith('/') ? value : `${value}/`;
});

/**
 * Destinations no client may reach through the proxy: link-local (where every cloud's instance
 * metadata service lives: 169.254.169.254, fd00:ec2::254), Alibaba's metadata address, "this
 * network" (0.0.0.0 reaches the proxy host itself), multicast and broadcast.
 */
export const DEFAULT_DENY_NETWORKS: readonly string[] = [
  '169.254.0.0/16',
  'fe80::/10',
  'fd00:ec2::254/128',
  '100.100.100.200/32',
  '0.0.0.0/8',
  '::/128',
  '224.0.0.0/4',
  'ff00::/8',
  '255.255.255.255/32',
];

/**
 * Upstream credentials for one registry, used only under its `policy: share`: a password, a
 * file holding it (read again when it changes, for rotated secrets), or a docker credential
 * helper run for short-lived tokens (ECR: docker-credential-ecr-login).
 */
const credential = z
  .strictObject({
    host: registryEntry,
    username: z.string().min(1).optional(),
    password: z.string().optional(),
    passwordFile: z.string().min(1).optional(),
    helper: z.string().min(1).optional(),
  })
  .superRefine((value, ctx) => {
    const sources = [value.password, value.passwordFile, value.helper].filter((v) => v !== undefined);
    if (sources.length !== 1) {
      ctx.addIssue({ code: 'custom', message: 'give exactly one of password, passwordFile or helper' });
    } else if (value.helper === undefined && value.username === undefined) {
      ctx.addIssue({ code: 'custom', message: 'username is required with password or passwordFile' });
    }
  });

const repositoryPattern = parsedValue(
  'a repository glob (e.g. library/*, myorg/*, */crypto-miner*)',
  asString((value) => (isRepositoryPattern(value.trim()) ? value.trim() : undefined)),
);

/** What makes a cached tag be served stale instead of upstream's answer (serveStaleOn). */
export const STALE_CAUSES = ['unreachable', '5xx', '429', '401', '403', '404'] as const;
export type StaleCause = (typeof STALE_CAUSES)[number];
/** Today's behaviour: only upstreams that cannot answer, never ones that refuse. */
export const DEFAULT_SERVE_STALE_ON: readonly StaleCause[] = ['unreachable', '5xx', '429'];

// YAML reads `[5xx, 429]` as a string and a number: both are causes.
const staleCause = z.preprocess(
  (value) => (typeof value === 'number' ? String(value) : value),
  z.enum(STALE_CAUSES),
);

const mirrorLocation = parsedValue(
  'a mirror: host[:port][/prefix] or an http(s):// URL (e.g. mirror.gcr.io, http://cache.internal:5000)',
  asString((value) => (parseMirrorLocation(value) ? value.trim() : undefined)),
);

/**
 * One mirror of a registry (issue 19): a bare location, or `{host, tags, ns}`. Blobs and
 * manifests by digest may come from any mirror (they are verified against their digest); tags
 * only from mirrors with `tags: true`.
 */
const mirror = z.preprocess(
  (value) => (typeof value === 'string' ? { host: value } : value),
  z.strictObject({
    host: mirrorLocation,
    /** Tags may be resolved here (containerd's `resolve` capability); false: digests only. */
    tags: z.boolean().default(false),
    /** Send `?ns=<registry>` (containerd's way; a pullthrough mirror listener reads it). */
    ns: z.boolean().default(false),
  }),
);

/** A registry with settings of its own; unset ones come from `cache`. */
const registrySettings = z.strictObject({
  host: registryEntry,
  /** Overrides cache.tagTtl for this registry. */
  tagTtl: duration.optional(),
  /** Overrides cache.maxStale for this registry. */
  maxStale: duration.optional(),
  /**
   * Who may be served this registry's cached content. verify (default): public content to
   * anyone, private content only to clients that upstream authorizes. share: everything to
   * everyone, fetched with the configured credentials. no-cache: relayed, never stored.
   */
  policy: z.enum(['verify', 'share', 'no-cache']).optional(),
  /** Disk budget of this registry's content inside cache.maxSize; unset: only the global cap. */
  maxSize: size.optional(),
  /** Repositories served, as globs (`*` crosses `/`); unset or empty: every repository. */
  allow: z.array(repositoryPattern).optional(),
  /** Repositories refused with 403 DENIED and never fetched; wins over allow. Unset: none. */
  deny: z.array(repositoryPattern).optional(),
  /** When a cached tag is served stale instead of upstream's answer; unset: DEFAULT_SERVE_STALE_ON. */
  serveStaleOn: z.array(staleCause).optional(),
  /** Other sources of this registry's content, asked in order before it (issue 19). Unset: none. */
  mirrors: z.array(mirror).optional(),
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
  /**
   * Mirror mode (issue 23): a second listener serving the registry API directly, for nodes that
   * name the cache as a registry mirror instead of trusting the CA. Off while listen is null.
   */
  mirror: z
    .strictObject({
      /** Where the mirror listens (plain HTTP), e.g. 0.0.0.0:5000; null: no mirror. */
      listen: listenAddress.nullable().default(null),
      /** The registry of bare names (dockerd's registry-mirrors sends `/v2/library/alpine/...`). */
      default: registryEntry.nullable().default(null),
      /** PEM certificate chain and key files: the mirror speaks HTTPS with them; null: plain HTTP. */
      tls: z
        .strictObject({ cert: z.string().min(1), key: z.string().min(1) })
        .nullable()
        .default(null),
    })
    .prefault({}),
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
      /**
       * Disk budget of the cache. Eviction starts when usage passes 95 % of it and stops at 90 %;
       * a fill larger than the whole budget is served but not stored.
       */
      maxSize: size.prefault('32GiB'),
      /**
       * Free space kept on the cache's filesystem (bytes or a percentage of it): cached images
       * are evicted to keep it, and when eviction cannot, new fills are served uncached.
       */
      minFree: minFree.prefault('10%'),
      /** Cached images not pulled for this long are removed, even under maxSize. 0s: never. */
      inactive: duration.prefault('60d'),
      /** Images eviction never removes (still counted in maxSize): references or repository globs. */
      pin: z.array(pin).default([]),
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
  /**
   * Where blobs, manifests and tag records live (issue 24): fs (default) in cache.dir, or s3 in
   * an S3-compatible bucket; cache.dir then keeps the index, the fills' temp files and the
   * public marks. Credentials come from the AWS SDK's default chain (environment, profile, SSO,
   * web identity, instance role), never from this file.
   */
  storage: z
    .strictObject({
      type: z.enum(['fs', 's3']).default('fs'),
      s3: z
        .strictObject({
          /** S3 API endpoint (MinIO, Ceph RGW, R2, GCS); null: AWS S3 of `region`. */
          endpoint: s3Endpoint.nullable().default(null),
          bucket: s3Bucket.nullable().default(null),
          /** null: AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1. */
          region: z.string().min(1).nullable().default(null),
          /** Key prefix of every object, e.g. `pullthrough/` (a shared bucket). */
          prefix: s3Prefix.default(''),
          /** Path-style URLs (endpoint/bucket/key): MinIO and Ceph RGW usually need them. */
          forcePathStyle: z.boolean().default(false),
          /** Cached blobs are answered with a 307 to a presigned URL instead of streamed. */
          redirect: z.boolean().default(false),
        })
        .prefault({}),
      /** With s3: recently used blobs also kept in cache.dir/front, served from local disk. */
      front: z
        .strictObject({
          /** Bytes of the local front tier, least recently used dropped past it; 0: off. */
          maxSize: size.prefault('0'),
        })
        .prefault({}),
    })
    .superRefine((value, ctx) => {
      if (value.type === 's3' && value.s3.bucket === null) {
        ctx.addIssue({
          code: 'custom',
          path: ['s3', 'bucket'],
          message: 'missing: required when storage.type is s3',
        });
      }
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
      /**
       * Who reads blob bodies from upstream: `own`, a small HTTP/1.1 reader into reused buffers
       * (upstream/h1/, cheaper per GiB), or `undici`, as every other request. Through a parent
       * proxy, undici always.
       */
      blobReader: z.enum(['own', 'undici']).default('own'),
      /**
       * Parent proxy (http://[user:pass@]host:port) that upstream registry traffic and tunnels
       * CONNECT through. null: connect directly.
       */
      proxy: parentProxyUrl.nullable().default(null),
      /** Without `proxy`: use pullthrough's own HTTPS_PROXY (else HTTP_PROXY) and NO_PROXY. */
      proxyFromEnv: z.boolean().default(false),
      /** Credentials for registries whose policy is `share` (AUTH_REGISTRIES). */
      credentials: z.array(credential).default([]),
    })
    .prefault({}),
  /** How long upstream's answers about who may read a repository are trusted. */
  access: z
    .strictObject({
      /** A credential that upstream accepted for a repository is served from the cache this long without asking again. */
      grantTtl: duration.prefault('10m'),
      /** Content served anonymously is served to anyone this long before upstream is asked again (a repository may turn private). */
      publicTtl: duration.prefault('1h'),
      /** While upstream is unreachable, a credential accepted this recently keeps its access. */
      offlineGrace: duration.prefault('24h'),
    })
    .prefault({}),
  /** Who may use the proxy, and where it may connect for them. */
  proxy: z
    .strictObject({
      /** Client networks allowed to connect; empty: any. */
      allowClients: z.array(cidr).default([]),
      /** htpasswd file of `user:bcrypt-hash` lines; when set, clients must send Proxy-Authorization. */
      htpasswd: z.string().min(1).nullable().default(null),
      /** Ports a CONNECT may tunnel to, besides the ports of intercepted registries. */
      connectPorts: z.array(port).default([443]),
      /** Ports plain-HTTP requests may be forwarded to. */
      httpPorts: z.array(port).default([80]),
      /** Networks no tunnel, forwarded request or upstream fetch may reach. */
      denyNetworks: z.array(cidr).default([...DEFAULT_DENY_NETWORKS]),
      /** Connect to the IPv6 addresses of names too; false resolves names to IPv4 only (DISABLE_IPV6). */
      ipv6: z.boolean().default(true),
    })
    .prefault({}),
  /** Limits on what clients may hold or send; each refusal is a status and one log line. */
  limits: z
    .strictObject({
      /** Client TCP connections open at once; more are answered 503 and closed. */
      maxConnections: z.number().int().min(1).default(4096),
      /** CONNECT tunnels (not intercepted) open at once; more are answered 503. */
      maxTunnels: z.number().int().min(1).default(1024),
      /** Total size of a request's header block (431 above it). */
      maxHeaderSize: size.prefault('16KiB'),
      /** Number of header lines in a request (431 above it). */
      maxHeaders: z.number().int().min(1).default(100),
      /** Time a client may take to send a request's headers (408 after it). */
      headersTimeout: duration.prefault('30s'),
      /** Time a client may take to finish the TLS handshake of an intercepted CONNECT. */
      handshakeTimeout: duration.prefault('10s'),
      /**
       * Idle time after which a client connection with no request in progress is closed: between
       * kept-alive requests, and before the first one (on the proxy port and inside intercepted TLS).
       */
      idleTimeout: duration.prefault('5m'),
      /** Idle time after which a tunnel with no bytes either way is closed. */
      tunnelIdleTimeout: duration.prefault('1h'),
    })
    .prefault({}),
  admin: z
    .strictObject({
      /**
       * Bearer token of the admin API (`/admin/` on the proxy port, and the `cache` commands);
       * null: the API is off and every `/admin/` path answers 404.
       */
      token: z
        .string()
        .min(16, 'at least 16 characters: it guards purging the cache')
        .nullable()
        .default(null),
      /**
       * A listener of its own for `/metrics` and `/admin/` (plain HTTP, e.g. 127.0.0.1:9128, to
       * keep them off the network clients use); null: both are served on the proxy port.
       */
      listen: listenAddress.nullable().default(null),
    })
    .prefault({}),
  /**
   * Watching the images in use (issue 25): every tag served within `window`, and every pinned
   * one, is asked upstream with a HEAD once per `interval`; a tag that changed, vanished or
   * turned private is logged, counted, sent to `webhook` and, when gone, pinned.
   */
  watch: z
    .strictObject({
      /** How often each watched tag is revalidated, spread over the interval. 0: no watching. */
      interval: watchInterval.prefault('1h'),
      /** Tags served within this long are watched (pinned ones always). */
      window: duration.prefault('7d'),
      /** HEAD requests per second at most, per registry (token requests not counted). */
      ratePerSecond: z.number().min(0.01).max(1000).default(1),
      /** http(s) URL that gets a JSON POST per change of state (Slack-compatible: it has `text`). */
      webhook: webhookUrl.nullable().default(null),
    })
    .prefault({}),
  /**
   * Several replicas coordinated through Redis (cluster/): one upstream fetch per digest across
   * them, shared access answers and tags. Off while redis is null: one process, nothing else to run.
   */
  cluster: z
    .strictObject({
      /** redis://[:password@]host:port[/db] (rediss:// for TLS); null: no cluster. */
      redis: redisUrl.nullable().default(null),
      /** This replica's name among the others; null: the host name and process id. */
      id: z
        .string()
        .regex(/^[\w.-]{1,100}$/, 'letters, digits, ".", "_" or "-"')
        .nullable()
        .default(null),
      /** Where the internal endpoint listens (plain HTTP) for the other replicas to stream fills. */
      listen: listenAddress.prefault('0.0.0.0:9129'),
      /** The URL the other replicas reach that endpoint at; null: http://<host name>:<listen port>. */
      advertise: httpUrl.nullable().default(null),
      /** The shared secret the replicas present to each other's internal endpoint (16+ characters). */
      secret: z
        .string()
        .min(16, 'at least 16 characters: it guards every cached blob')
        .nullable()
        .default(null),
      /** How long a fill lease outlives a replica that stopped renewing it (died, or lost Redis). */
      leaseTtl: duration.prefault('10s'),
      /** How often a replica renews its membership (its key lives three times as long). */
      heartbeat: duration.prefault('2s'),
      /** Prefix of every key this cluster writes, so that several can share one Redis. */
      keyPrefix: z.string().default('pullthrough:'),
    })
    .superRefine((cluster, ctx) => {
      if (cluster.redis !== null && cluster.secret === null)
        ctx.addIssue({
          code: 'custom',
          path: ['secret'],
          message: 'missing: required when cluster.redis is set',
        });
    })
    .prefault({}),
  /** Pushes (POST/PUT/PATCH/DELETE under /v2/) go upstream; false answers 405 UNSUPPORTED. */
  allowPush: z.boolean().default(true),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      /** json: one JSON object a line, for collectors; pretty: readable lines for a terminal. */
      format: z.enum(['json', 'pretty']).default('json'),
    })
    .prefault({}),
  /** On SIGTERM/SIGINT, how long in-flight requests may finish before tunnels and sockets are cut. */
  shutdownTimeout: duration.prefault('10s'),
});

export type Config = z.output<typeof configSchema>;
