// Access decisions that end a request: the wire form of each is chosen in registry/errors.ts.

/** Nobody can ask upstream who may read this, and the client has not proved access before. */
export class UnverifiableAccessError extends Error {
  override readonly name = 'UnverifiableAccessError';

  constructor() {
    super('upstream registry unreachable and no earlier answer for this client');
  }
}
