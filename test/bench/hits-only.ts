// `npx node test/bench/hits-only.ts [--quick]`: the cache-hit scenarios alone (run.ts runs them
// among all the others), printing their rows: a cached blob to 1 and 8 clients against nginx,
// and cached manifests at 64 connections against nginx. Writes no results.md.
import { runAlone } from './alone.ts';
import { cachedBlob } from './scenarios/cached.ts';
import { cachedManifests } from './scenarios/manifests.ts';

await runAlone(async (world, { quick }) => [
  ...(await cachedBlob(world)),
  ...(await cachedManifests(world, quick ? 20_000 : 100_000)),
]);
