// The root pino logger (JSON lines on stdout) and redaction of what must never be logged:
// credentials in headers and the signatures of pre-signed URLs.
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

const REDACTED = '[redacted]';

export function createLogger(level: LevelWithSilent, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { name: 'pullthrough' },
      redact: {
        paths: [
          'headers.authorization',
          'headers["proxy-authorization"]',
          'headers.cookie',
          'headers["set-cookie"]',
          '*.headers.authorization',
          '*.headers["proxy-authorization"]',
          '*.headers.cookie',
          'password',
          'passphrase',
          '*.password',
          '*.passphrase',
        ],
        censor: REDACTED,
      },
    },
    destination,
  );
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
