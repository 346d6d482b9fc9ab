// The import rules of src/, read from the source itself (type imports included): each folder (or
// top-level file) may import only the modules listed for it below, `oci/` imports nothing of
// ours, `proxy/` never reaches the registry layer, modules form no cycle, and only the wiring
// module (app.ts) imports everything. docs/architecture.md explains the layers.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.join(import.meta.dirname, '../../src');

/** Module → the modules it may import. A module is a folder of src/ or a file at its top. */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  oci: [],
  'buffer-pool.ts': [],
  'node-flags.ts': [],
  'node-version.ts': [],
  'log.ts': [],
  http: [],
  net: [],
  'local.ts': ['setup'],
  'health.ts': ['cache', 'local.ts', 'log.ts'],
  setup: [],
  metrics: [],
  tls: ['log.ts'],
  config: ['http', 'log.ts', 'net', 'oci'],
  upstream: ['net', 'oci', 'http', 'log.ts'],
  cache: ['oci', 'buffer-pool.ts', 'config', 'http', 'log.ts'],
  storage: ['cache', 'oci'],
  access: ['cache', 'config', 'http', 'oci', 'upstream'],
  proxy: ['buffer-pool.ts', 'http', 'log.ts', 'net'],
  admin: ['cache'],
  cluster: ['access', 'cache', 'config', 'log.ts', 'oci'],
  ui: [],
  warm: ['oci'],
  mirror: ['http', 'log.ts'],
  registry: ['access', 'buffer-pool.ts', 'cache', 'config', 'http', 'log.ts', 'net', 'oci', 'upstream'],
  watch: ['cache', 'config', 'http', 'upstream'],
  cli: ['app.ts', 'cache', 'config', 'log.ts', 'node-flags.ts', 'oci', 'setup', 'tls', 'warm', 'watch'],
  'main.ts': ['cli', 'node-version.ts'],
};
/** The one module that wires everything together. */
const WIRING = 'app.ts';
/** Its parts, one file per part it builds: only app.ts uses them, and they may import anything. */
const WIRING_PARTS = 'wiring';
/** What the proxy layer must never see: it moves sockets and is handed a request handler. */
const REGISTRY_LAYER = ['registry', 'access', 'cache', 'upstream'];

type Graph = Map<string, Set<string>>;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

function moduleOf(file: string): string {
  return path.relative(SRC, file).split(path.sep)[0]!;
}

/** Every relative import, `export … from` and dynamic `import()` of a file, `import type` included. */
function importsOf(text: string): string[] {
  const specifiers = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)'(\.{1,2}\/[^']+)'/g)];
  return specifiers.map((match) => match[1]!);
}

function readGraph(): Graph {
  const graph: Graph = new Map();
  for (const file of sourceFiles(SRC)) {
    const from = moduleOf(file);
    const edges = graph.get(from) ?? new Set<string>();
    graph.set(from, edges);
    for (const specifier of importsOf(readFileSync(file, 'utf8'))) {
      const to = moduleOf(path.resolve(path.dirname(file), specifier));
      if (to !== from) edges.add(to);
    }
  }
  return graph;
}

/** Every broken rule, as `from → to: why` lines. */
function violations(graph: Graph): string[] {
  const found: string[] = [];
  for (const [from, edges] of graph) {
    for (const to of edges) {
      if (to.startsWith('..')) found.push(`${from} → ${to}: imports from outside src/`);
      else if (to === WIRING_PARTS && from !== WIRING)
        found.push(`${from} → ${to}: only app.ts uses the wiring parts`);
      else if (from === WIRING || from === WIRING_PARTS) continue;
      else if (to === WIRING && from !== 'cli' && from !== 'main.ts')
        found.push(`${from} → ${to}: only the CLI starts the app`);
      else if (from === 'proxy' && REGISTRY_LAYER.includes(to))
        found.push(`${from} → ${to}: the proxy layer knows nothing of registries`);
      else if (!(from in ALLOWED))
        found.push(`${from}: a module with no rule in test/unit/architecture.test.ts`);
      else if (!ALLOWED[from]!.includes(to)) found.push(`${from} → ${to}: not in its allowed imports`);
    }
  }
  return [...found, ...cycles(graph).map((cycle) => `cycle: ${cycle.join(' → ')}`)];
}

/** Each cycle among modules (one path per strongly connected component). */
function cycles(graph: Graph): string[][] {
  const found: string[][] = [];
  const done = new Set<string>();
  const visit = (node: string, trail: string[]): void => {
    const at = trail.indexOf(node);
    if (at !== -1) {
      found.push([...trail.slice(at), node]);
      return;
    }
    if (done.has(node)) return;
    for (const next of graph.get(node) ?? []) visit(next, [...trail, node]);
    done.add(node);
  };
  for (const node of graph.keys()) visit(node, []);
  return found;
}

describe('architecture', () => {
  const graph = readGraph();

  it('keeps every import of src/ within its rules, with no cycle between modules', () => {
    expect(violations(graph)).toEqual([]);
  });

  it('has a rule for every module of src/, and only app.ts imports them all', () => {
    const modules = [...graph.keys()].filter((module) => module !== WIRING && module !== WIRING_PARTS).sort();
    expect(modules.filter((module) => !(module in ALLOWED))).toEqual([]);
    for (const module of modules) expect(graph.get(module)?.size ?? 0).toBeLessThan(modules.length - 1);
  });

  it('finds the imports it must: type-only, re-exports and dynamic imports', () => {
    const text = [
      "import type { A } from '../oci/digest.ts';",
      "export { B } from './b.ts';",
      "const c = await import('../cache/blobs.ts');",
      "import { D } from 'node:fs';",
    ].join('\n');
    expect(importsOf(text)).toEqual(['../oci/digest.ts', './b.ts', '../cache/blobs.ts']);
  });

  it('reports a bad import, a proxy that reaches the registry layer, and a cycle', () => {
    const bad: Graph = new Map([
      ['oci', new Set(['cache'])],
      ['cache', new Set(['oci'])],
      ['proxy', new Set(['registry'])],
      ['registry', new Set(['wiring'])],
    ]);
    expect(violations(bad)).toEqual([
      'oci → cache: not in its allowed imports',
      'proxy → registry: the proxy layer knows nothing of registries',
      'registry → wiring: only app.ts uses the wiring parts',
      'cycle: oci → cache → oci',
    ]);
  });
});
