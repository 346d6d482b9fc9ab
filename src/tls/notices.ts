// What an operator should know about the CA at start: created or loaded, a rotation in progress
// or left over, an expiry within 90 days. Pure: returns notices; the app logs them.
import type { Notice } from '../log.ts';
import type { CertificateAuthority } from './ca.ts';

const EXPIRY_WARNING_MS = 90 * 86_400_000;

export function caNotices(ca: CertificateAuthority, dir: string, now: number): Notice[] {
  const { overlap } = ca;
  const notices: Notice[] = [
    {
      level: 'info',
      fields: {
        dir,
        fingerprint: ca.fingerprintSha256,
        notAfter: ca.notAfter.toISOString(),
        rotation: overlap.state,
      },
      message: ca.created ? 'ca created' : 'ca loaded',
    },
  ];
  if (overlap.state === 'active') {
    notices.push({
      level: 'info',
      fields: { previous: overlap.previous.fingerprintSha256, until: overlap.until.toISOString() },
      message: 'ca rotation in progress: signing with the previous ca and sending cross.crt',
    });
  } else if (overlap.state === 'ended') {
    notices.push({
      level: 'warn',
      fields: { until: overlap.until.toISOString() },
      message:
        'previous ca expired: signing with ca.crt alone; delete previous.crt, previous.key and cross.crt',
    });
  } else if (overlap.state === 'ignored') {
    notices.push({ level: 'warn', fields: { reason: overlap.reason }, message: 'ca rotation files ignored' });
  }
  if (ca.notAfter.getTime() - now < EXPIRY_WARNING_MS) {
    notices.push({
      level: 'warn',
      fields: { notAfter: ca.notAfter.toISOString() },
      message: 'ca expires within 90 days: rotate it',
    });
  }
  return notices;
}
