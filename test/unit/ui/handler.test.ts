// The dashboard's static files (ui/handler.ts) on a real server on port 0: the page, its modules
// and uPlot with their content types and security headers, HEAD, the /ui redirect, 405, and no
// way out of the listed files: `..` in any spelling, encoded slashes, absolute paths, files of
// types not served (tsconfig.json) and names that are not files.
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { onTestFinished, describe, expect, it } from 'vitest';
import { createUiHandler, STATIC_DIR } from '../../../src/ui/handler.ts';
import { tempDir } from '../../helpers/tmp.ts';

async function serve(handler: http.RequestListener): Promise<number> {
  const server = http.createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

/** A request with the path exactly as given (no client normalises it). */
function get(port: number, rawPath: string, method = 'GET') {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>(
    (resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: rawPath, method }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end();
    },
  );
}

describe('ui handler', () => {
  it('serves the page, its modules and stylesheet, and uPlot, with their types', async () => {
    const port = await serve(createUiHandler());
    const page = await get(port, '/ui/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.body).toContain('<script type="module" src="app.js"></script>');
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    const cases: Array<[string, string, string]> = [
      ['/ui/app.js', 'text/javascript; charset=utf-8', 'signIn'],
      ['/ui/style.css', 'text/css; charset=utf-8', ':focus-visible'],
      ['/ui/vendor/uPlot.iife.min.js', 'text/javascript; charset=utf-8', 'uPlot'],
      ['/ui/vendor/uPlot.min.css', 'text/css; charset=utf-8', '.uplot'],
      ['/ui/index.html?x=1', 'text/html; charset=utf-8', '<!doctype html>'],
    ];
    for (const [url, type, text] of cases) {
      const res = await get(port, url);
      expect(res.status, url).toBe(200);
      expect(res.headers['content-type'], url).toBe(type);
      expect(res.body, url).toContain(text);
      expect(Number(res.headers['content-length']), url).toBe(Buffer.byteLength(res.body));
    }
  });

  it('answers HEAD without a body, redirects /ui to /ui/ and refuses other methods', async () => {
    const port = await serve(createUiHandler());
    const head = await get(port, '/ui/app.js', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(Number(head.headers['content-length'])).toBeGreaterThan(100);
    const bare = await get(port, '/ui');
    expect(bare.status).toBe(308);
    expect(bare.headers.location).toBe('/ui/');
    const post = await get(port, '/ui/app.js', 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });

  it('serves nothing outside the listed files', async () => {
    const port = await serve(createUiHandler());
    for (const url of [
      '/ui/../package.json',
      '/ui/../../package.json',
      '/ui/%2e%2e/%2e%2e/package.json',
      '/ui/..%2f..%2fpackage.json',
      '/ui/vendor/../../../package.json',
      '/ui//etc/passwd',
      '/ui/%2fetc%2fpasswd',
      '/ui/tsconfig.json',
      '/ui/vendor/',
      '/ui/vendor/uPlot.cjs.js',
      '/ui/nope.js',
      '/ui/.',
    ]) {
      const res = await get(port, url);
      expect(res.status, url).toBe(404);
      expect(res.body, url).toBe('not found\n');
    }
  });

  it('serves nested files of its folder by their relative names, and only its types', async () => {
    const dir = await tempDir();
    await mkdir(path.join(dir, 'views'));
    await writeFile(path.join(dir, 'index.html'), '<p>hi</p>');
    await writeFile(path.join(dir, 'views', 'a.js'), 'export {};');
    await writeFile(path.join(dir, 'secret.txt'), 'no');
    const port = await serve(createUiHandler({ dir }));
    expect((await get(port, '/ui/')).body).toBe('<p>hi</p>');
    expect((await get(port, '/ui/views/a.js')).status).toBe(200);
    expect((await get(port, '/ui/secret.txt')).status).toBe(404);
    expect((await get(port, '/ui/views%2fa.js')).status).toBe(404);
  });

  it('finds its static folder in src/ whether it runs from src/ or dist/', () => {
    expect(STATIC_DIR).toBe(path.resolve(import.meta.dirname, '../../../src/ui/static'));
  });
});
