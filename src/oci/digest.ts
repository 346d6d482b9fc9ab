// Digests (OCI image-spec descriptor.md#digests): parsing, and a streaming verifier that hashes
// content as it flows and says at the end whether it is what was asked for. Pure, no I/O.
import { createHash, type Hash } from 'node:crypto';
import { isDigest } from './reference.ts';

export type DigestAlgorithm = 'sha256' | 'sha512';

export interface ParsedDigest {
  readonly algorithm: DigestAlgorithm;
  readonly hex: string;
}

/** The parts of a well-formed sha256/sha512 digest, or undefined. */
export function parseDigest(digest: string): ParsedDigest | undefined {
  if (!isDigest(digest)) return undefined;
  const [algorithm, hex] = digest.split(':') as [DigestAlgorithm, string];
  return { algorithm, hex };
}

export function digestOf(content: Buffer, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(content).digest('hex')}`;
}

export class DigestMismatchError extends Error {
  readonly code = 'DIGEST_MISMATCH';
  readonly expected: string;
  readonly actual: string;

  constructor(expected: string, actual: string, size: number) {
    super(`content digest ${actual} (${size} bytes) does not match ${expected}`);
    this.name = 'DigestMismatchError';
    this.expected = expected;
    this.actual = actual;
  }
}

export class SizeMismatchError extends Error {
  readonly code = 'SIZE_MISMATCH';

  constructor(expected: number, actual: number) {
    super(`content is ${actual} bytes, expected ${expected}`);
    this.name = 'SizeMismatchError';
  }
}

/** Hashes chunks as they pass; `verify()` throws unless digest (and size, if known) match. */
export class DigestVerifier {
  readonly #expected: ParsedDigest;
  readonly #hash: Hash;
  #size = 0;

  constructor(expected: ParsedDigest) {
    this.#expected = expected;
    this.#hash = createHash(expected.algorithm);
  }

  get size(): number {
    return this.#size;
  }

  update(chunk: Buffer): void {
    this.#hash.update(chunk);
    this.#size += chunk.length;
  }

  verify(expectedSize?: number): void {
    if (expectedSize !== undefined && expectedSize !== this.#size)
      throw new SizeMismatchError(expectedSize, this.#size);
    const actual = this.#hash.digest('hex');
    if (actual !== this.#expected.hex) {
      throw new DigestMismatchError(
        `${this.#expected.algorithm}:${this.#expected.hex}`,
        `${this.#expected.algorithm}:${actual}`,
        this.#size,
      );
    }
  }
}
