// The Node flags pullthrough is meant to run with. The Dockerfile and `npm start` pass them
// (test/unit/node-flags.test.ts holds both to this list), so do the bench and the e2e tests;
// `serve` warns when a flag is missing, unless the operator set it to a value of their own.
//
// --max-semi-space-size=4 (MiB; V8 picks 16 on a machine with this much memory): upstream TLS
// hands each 16 KiB record over in a new buffer. With 16 MiB semi-spaces the young generation
// rarely fills, so the external memory of those buffers sets off a full mark-compact every
// ~80 ms of a cold fill; with 4 MiB, scavenges free them first. Measured on 512 MiB cold fills
// (`--trace-gc`, per-thread CPU from /proc): mark-compacts 11–15 → 1, V8 helper threads
// 1.2–1.5 → 0.5 CPU-s/GiB, proxy 4.4–5.5 → 3.7 CPU-s/GiB; peak RSS of 10 cold + 10 cached
// 256 MiB blobs 300–313 → 253–257 MiB. 1 MiB is too small: chunks waiting for the disk live
// through two scavenges, get promoted, and the mark-compacts come back (20–24).
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];

/**
 * The flags of NODE_FLAGS that neither `execArgv` nor NODE_OPTIONS sets, in any value (an
 * operator's `--max-semi-space-size=8` is a choice, not a gap).
 */
export function missingNodeFlags(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string | undefined = process.env['NODE_OPTIONS'],
): string[] {
  const given = [...execArgv, ...(nodeOptions?.split(/\s+/) ?? [])].map(flagName);
  return NODE_FLAGS.filter((flag) => !given.includes(flagName(flag)));
}

/** `--max-semi-space-size` of `--max-semi-space-size=4`; V8 takes `_` and `-` alike. */
function flagName(arg: string): string {
  return arg.split('=')[0]!.replaceAll('_', '-');
}
