// `npx node test/bench/cold-only.ts [--quick]`: the cold-blob scenario alone (run.ts runs it among
// all the others), printing its rows: the fill against nginx, the floor, the own blob reader
// against undici, pinned and paced upstreams. Writes no results.md.
import { runAlone } from './alone.ts';
import { coldBlob } from './scenarios/cold.ts';

await runAlone((world) => coldBlob(world));
