// The root pino logger (JSON lines on stdout), redaction of what must never be logged
// (credentials in headers, the signatures of pre-signed URLs), and start-up notices.
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

const REDACTED = '[redacted]';

export function createLogger(level: LevelWithSilent, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { name: 'pullthrough' },
      // Not pino's `redact`: @pinojs/redact parses its paths again on every line, which cost ~15%
      // of the proxy's CPU at 10k cached manifest requests a second.
      formatters: { log: redactSecrets },
    },
    destination,
  );
}

/** A log object, or an object inside one. */
type Fields = Record<string, unknown>;

const SECRET_FIELDS = ['password', 'passphrase'];
const SECRET_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie'];

/**
 * A log object with credentials replaced: `password` and `passphrase`, and the credential fields
 * of `headers`, at the top level and one level down (`upstream.headers.authorization`). The
 * caller's objects are never changed: what holds a secret is copied first. Cheap when nothing does.
 */
export function redactSecrets(object: Fields): Fields {
  let result = redactLevel(object);
  for (const key of Object.keys(result)) {
    const value = result[key];
    if (!isObject(value)) continue;
    const redacted = redactLevel(value);
    if (redacted === value) continue;
    if (result === object) result = clone(object);
    result[key] = redacted;
  }
  return result;
}

/** `object` itself when it holds no secret field or secret header, else a redacted copy. */
function redactLevel(object: Fields): Fields {
  let result = object;
  // The few secret names are looked up, not every key walked: a nested Buffer has one per byte.
  for (const key of SECRET_FIELDS) {
    if (Object.prototype.propertyIsEnumerable.call(object, key)) {
      if (result === object) result = clone(object);
      censor(result, key);
    }
  }
  const headers = object['headers'];
  if (isObject(headers) && SECRET_HEADERS.some((name) => name in headers)) {
    const copy = clone(headers);
    for (const name of SECRET_HEADERS) if (name in copy) censor(copy, name);
    if (result === object) result = clone(object);
    result['headers'] = copy;
  }
  return result;
}

function isObject(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A shallow copy with the same prototype and every own property (an Error keeps its message),
 * each one writable, so that a frozen object can be redacted too.
 */
function clone(object: Fields): Fields {
  const descriptors = Object.getOwnPropertyDescriptors(object);
  for (const descriptor of Object.values(descriptors)) {
    descriptor.configurable = true;
    if (!('get' in descriptor) && !('set' in descriptor)) descriptor.writable = true;
  }
  return Object.create(Object.getPrototypeOf(object) as object | null, descriptors) as Fields;
}

/** Replaces a property of a clone, whether it was a value or an accessor. */
function censor(object: Fields, key: string): void {
  Object.defineProperty(object, key, {
    value: REDACTED,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

// Query parameters that carry a signature or a credential: S3 (X-Amz-*), GCS (X-Goog-*),
// CloudFront (Signature, Key-Pair-Id, Policy), Azure SAS (sig, se, sp), Docker Hub's CDN, tokens.
const SECRET_PARAM = /sig|signature|token|credential|key|policy|secret|auth|password|^se$|^sp$|^st$|^sv$/i;

/** The path of a request URL with secret query values replaced, for logs. Never throws. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  const params = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq === -1 ? pair : pair.slice(0, eq);
      return eq !== -1 && SECRET_PARAM.test(decodeURIComponentSafe(name)) ? `${name}=${REDACTED}` : pair;
    });
  return `${url.slice(0, q)}?${params.join('&')}`;
}

function decodeURIComponentSafe(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Something to say once at start, made by a module that does not log itself. */
export interface Notice {
  readonly level: 'info' | 'warn';
  readonly fields: Record<string, unknown>;
  readonly message: string;
}

export function logNotices(log: Logger, notices: readonly Notice[]): void {
  for (const notice of notices) log[notice.level](notice.fields, notice.message);
}
