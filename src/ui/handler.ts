// Serves the dashboard's static files at /ui/: the page, its ES modules and stylesheet
// (src/ui/static/, plain browser JavaScript checked by tsc, no build step) and uPlot from its
// npm package. Only files listed at start are served, by exact name, so no path reaches
// outside them. The files hold no secret: the data comes from the admin API, behind its token.
import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';

/**
 * src/ui/static from this file in src/ui/ and from its build in dist/ui/ alike (the static
 * folder ships as is: package.json `files`, the Dockerfile), so `npm start` needs no build.
 */
export const STATIC_DIR = path.join(import.meta.dirname, '..', '..', 'src', 'ui', 'static');

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** Scripts and styles from this origin only; uPlot sets element styles from script (CSSOM). */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  // Always revalidated: a new version of the page must not run against old modules.
  'cache-control': 'no-cache',
};

export interface UiOptions {
  /** Where the page's files are (tests give their own). */
  readonly dir?: string;
  /** uPlot's dist folder; default: the installed `uplot` package. */
  readonly uplotDir?: string;
}

export type UiHandler = (req: IncomingMessage, res: ServerResponse) => void;

export function createUiHandler(options: UiOptions = {}): UiHandler {
  const files = servedFiles(options.dir ?? STATIC_DIR, options.uplotDir ?? uplotDist());
  return (req, res) => {
    req.resume();
    const pathname = (req.url ?? '/').split('?', 1)[0] ?? '/';
    if (pathname === '/ui') {
      res.writeHead(308, { location: '/ui/', 'content-length': 0 });
      return void res.end();
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(req, res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'GET, HEAD' });
    }
    const name = pathname === '/ui/' ? 'index.html' : pathname.slice('/ui/'.length);
    const file = files.get(name);
    if (file === undefined) return send(req, res, 404, 'text/plain; charset=utf-8', 'not found\n');
    readFile(file).then(
      (body) => send(req, res, 200, TYPES[path.extname(file)] ?? 'application/octet-stream', body),
      () => send(req, res, 404, 'text/plain; charset=utf-8', 'not found\n'),
    );
  };
}

/** URL name under /ui/ → file: the static folder's files (of the types above), and uPlot's two. */
function servedFiles(dir: string, uplotDir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || TYPES[path.extname(entry.name)] === undefined) continue;
    const full = path.join(entry.parentPath, entry.name);
    files.set(path.relative(dir, full).split(path.sep).join('/'), full);
  }
  files.set('vendor/uPlot.iife.min.js', path.join(uplotDir, 'uPlot.iife.min.js'));
  files.set('vendor/uPlot.min.css', path.join(uplotDir, 'uPlot.min.css'));
  return files;
}

function uplotDist(): string {
  return path.join(path.dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist');
}

function send(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  type: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    ...headers,
    'content-type': type,
    'content-length': Buffer.byteLength(body),
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}
