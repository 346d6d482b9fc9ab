// CaError: why the proxy's certificate authority could not be loaded, created or used.
// Each error has a stable `code` for callers and tests; the message is one line that names the
// file and says how to fix it. Thrown by tls/; never logged here (the caller logs once).

export type CaErrorCode =
  /** Neither ca.crt nor ca.key exists where a CA is required (`pullthrough ca rotate`). */
  | 'CA_NOT_FOUND'
  /** `ca rotate` while an earlier rotation still overlaps (previous.crt valid). */
  | 'CA_ROTATION_IN_PROGRESS'
  /** Only one of ca.crt / ca.key exists: refuse to guess, never overwrite half a CA. */
  | 'CA_INCOMPLETE'
  /** A CA file exists but cannot be read (permissions, a directory in its place, I/O). */
  | 'CA_UNREADABLE'
  /** The CA directory or its files cannot be created or written. */
  | 'CA_UNWRITABLE'
  /** ca.crt or ca.key cannot be parsed, or ca.crt is not a CA certificate. */
  | 'CA_INVALID'
  /** The certificate has expired (or the CA cannot cover a leaf any more). */
  | 'CA_EXPIRED'
  /** ca.key is encrypted and no passphrase was given. */
  | 'CA_KEY_ENCRYPTED'
  /** ca.key is encrypted and the passphrase given does not decrypt it. */
  | 'CA_KEY_PASSPHRASE'
  /** ca.key is not the private key of ca.crt. */
  | 'CA_KEY_MISMATCH'
  /** ca.key may be read (or written) by users other than its owner: chmod 600 fixes it. */
  | 'CA_KEY_PERMISSIONS'
  /** ca.key is of a type we cannot sign leaves with (only RSA and EC P-256/P-384/P-521). */
  | 'CA_KEY_UNSUPPORTED';

export class CaError extends Error {
  override readonly name = 'CaError';
  readonly code: CaErrorCode;

  constructor(code: CaErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
