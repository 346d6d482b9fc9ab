// A loaded Config written back in the words of config.yaml, for `pullthrough config check`:
// durations and sizes in their units (10s, 32GiB), the listen address as host:port, and every
// secret (passwords, passphrases, tokens) masked. Paths are as resolved, absolute.
import { z } from 'zod';
import {
  configSchema,
  durationSchema,
  listenSchema,
  minFreeSchema,
  sizeSchema,
  type Config,
} from './schema.ts';
import { formatDuration, formatSize } from './units.ts';
import { unwrapOnce } from './walk.ts';

export const MASKED = '[masked]';

/**
 * Keys whose values are secrets; `passwordFile` and `passphraseFile` are paths, shown. A webhook
 * URL is a secret too: Slack's and most others' carry their key in the path.
 */
const SECRET_KEY = /^(password|passphrase|token|secret|webhook)$/i;

export function effectiveConfig(config: Config): Record<string, unknown> {
  return written(configSchema, config) as Record<string, unknown>;
}

function written(schema: z.ZodType, value: unknown): unknown {
  let node: z.ZodType | undefined = schema;
  for (let depth = 0; node !== undefined && depth < 10; depth += 1) {
    if (node === durationSchema && typeof value === 'number') return formatDuration(value);
    if (node === sizeSchema && typeof value === 'number') return formatSize(value);
    if (node === listenSchema) return value === null ? null : listenText(value as Config['listen']);
    if (node === minFreeSchema) return minFreeText(value as Config['cache']['minFree']);
    if (node instanceof z.ZodObject && isMapping(value)) return mapping(node.shape, value);
    if (node instanceof z.ZodArray && Array.isArray(value)) {
      const element = node.element as z.ZodType;
      return value.map((item) => written(element, item));
    }
    node = unwrapOnce(node);
  }
  return value;
}

function mapping(shape: Record<string, z.ZodType>, value: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    if (child === undefined) continue;
    const schema = shape[key];
    out[key] = SECRET_KEY.test(key) && child !== null ? MASKED : schema ? written(schema, child) : child;
    if (typeof out[key] === 'string') out[key] = maskUrlPassword(out[key]);
  }
  return out;
}

/**
 * A URL's password is a secret too: upstream.proxy's `http://user:pass@host:port`, and
 * cluster.redis's `redis://:pass@host:port` (or `rediss://user:pass@…`).
 */
function maskUrlPassword(text: string): string {
  return text.replace(/^((?:https?|rediss?):\/\/[^/:@\s]*:)[^/@\s]+@/i, `$1${MASKED}@`);
}

function minFreeText(minFree: Config['cache']['minFree']): string {
  return 'percent' in minFree ? `${minFree.percent}%` : formatSize(minFree.bytes);
}

function listenText({ host, port }: Config['listen']): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
