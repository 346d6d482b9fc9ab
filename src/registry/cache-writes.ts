// Writes to the cache made while answering a client (tag records, manifests) are best effort: a
// cache that cannot be written (full, read-only, failing) never fails a response. The failure is
// reported to `cacheWriteFailed` (logged once per cause by the app) and the request goes on.
import type { RegistryDeps } from './context.ts';

/** Runs `write`; resolves true when it succeeded, false (reported, never thrown) when it failed. */
export async function bestEffort(deps: RegistryDeps, write: () => Promise<void>): Promise<boolean> {
  try {
    await write();
    return true;
  } catch (error) {
    deps.cacheWriteFailed(error);
    return false;
  }
}
