// `npm run image [-- --engine E] [--base REF] [--tag T]`: builds the Dockerfile as pullthrough:dev
// with docker, podman or buildah. The base is, in order: --base; the Dockerfile's pinned official
// Node image, when it is in the store or can be pulled; else one made here (base.ts).
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { baseInputs, localBase } from './base.ts';
import { findEngine, type Engine } from './engine.ts';

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');
export const DEFAULT_TAG = 'pullthrough:dev';
/** Where the host's CA bundle appears in the build's RUN steps (NODE_EXTRA_CA_CERTS for npm). */
const BUILD_CA_PATH = '/run/host-ca.pem';
/** The label both stages of the Dockerfile carry. */
const LABEL = 'org.opencontainers.image.title=pullthrough';

/** The default of `ARG BASE_IMAGE` in the Dockerfile: one place says which official image. */
export function defaultBase(dockerfile = join(REPO_ROOT, 'Dockerfile')): string {
  const match = /^ARG BASE_IMAGE=(\S+)$/m.exec(readFileSync(dockerfile, 'utf8'));
  if (match?.[1] === undefined) throw new Error(`${dockerfile} has no ARG BASE_IMAGE=… default`);
  return match[1];
}

async function chooseBase(engine: Engine, given: string | undefined): Promise<string> {
  if (given !== undefined) return given;
  const official = defaultBase();
  if (await engine.has(official)) return official;
  console.log(`image: pulling ${official}`);
  if (await engine.pull(official)) return official;
  console.log(`image: ${official} cannot be pulled; making a base from Debian and the node package`);
  return localBase(engine, baseInputs(REPO_ROOT));
}

/** The CA bundle the host's npm trusts, for a registry reached through a TLS-inspecting proxy. */
function hostCaBundle(): string | undefined {
  const candidates = [process.env['NODE_EXTRA_CA_CERTS'], '/etc/ssl/certs/ca-certificates.crt'];
  return candidates.find((file): file is string => file !== undefined && file !== '' && existsSync(file));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { engine: { type: 'string' }, base: { type: 'string' }, tag: { type: 'string' } },
  });
  const started = performance.now();
  const engine = await findEngine(values.engine);
  const tag = values.tag ?? DEFAULT_TAG;
  const base = await chooseBase(engine, values.base);
  const baseSeconds = (performance.now() - started) / 1000;
  const ca = engine.name === 'docker' ? undefined : hostCaBundle();
  const options = {
    context: REPO_ROOT,
    buildArgs: { BASE_IMAGE: base, ...(ca === undefined ? {} : { NODE_EXTRA_CA_CERTS: BUILD_CA_PATH }) },
    mounts: ca === undefined ? {} : { [ca]: BUILD_CA_PATH },
  };
  // The build stage gets a tag of its own: the next build reuses its layers (npm ci, tsc) from
  // it, and the prune below, which removes what earlier builds left untagged, leaves it alone.
  await engine.build({ ...options, tag: `${tag}-build`, target: 'build' });
  await engine.build({ ...options, tag });
  await engine.prune(LABEL);
  const size = await engine.size(tag);
  const total = (performance.now() - started) / 1000;
  console.log(
    `image: built ${tag} with ${engine.name} on ${base}: ${(size / 1e6).toFixed(0)} MB; ` +
      `${total.toFixed(1)} s (base ${baseSeconds.toFixed(1)} s)`,
  );
}

if (import.meta.main) {
  main().catch((error: unknown) => {
    console.error(`image: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}
