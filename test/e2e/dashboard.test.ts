// The dashboard (/ui/) in a real browser: Debian's chromium driven by playwright-core (the system
// browser, never a download) against a running pullthrough and the real registry. A wrong token
// is refused; skopeo pulls move the hit ratio and the image appears in the cache browser; a purge
// from the page removes its files from the cache directory and the next pull fetches the layer
// from the registry again (its own access log). An image warmed from the page is fetched through
// the proxy and listed. Saves the screenshots the README shows.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { skopeoCopy } from './env/clients/skopeo.ts';
import { expectPullLogged } from './env/expect-pull.ts';
import { REPO_ROOT, type Pullthrough } from './env/proxy.ts';
import { servedRequests } from './env/registry.ts';
import { expectSuccess, useWorld } from './env/vitest.ts';
import { REGISTRY } from './env/world.ts';

const TOKEN = 'e2e-dashboard-token-0123456789';
const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = join(REPO_ROOT, 'docs', 'screenshots');
const world = useWorld({
  images: { warm: { repository: 'e2e/dashboard-warm', tag: 'v1', file: 'warm.bin', size: 2 * 1024 * 1024 } },
});
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run test/e2e/env/ensure-deps.ts`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});
afterAll(() => browser?.close());

async function pullWithSkopeo(proxy: Pullthrough, name: string): Promise<void> {
  const image = world().images.small;
  const from = proxy.log.mark();
  expectSuccess(
    `skopeo copy (${name})`,
    await skopeoCopy(world(), `docker://${REGISTRY}/${image.repository}:${image.tag}`, world().mkdir(name), {
      certDir: proxy.caCertDir,
      proxy: proxy.url,
    }),
  );
  await expectPullLogged(proxy.log, REGISTRY, image, from);
}

/** Resolves once the proxy has taken another sample (2 s apart): the charts gain a point. */
async function nextSample(proxy: Pullthrough): Promise<void> {
  const last = async () => {
    const res = await fetch(`${proxy.url}/admin/stats`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const stats = (await res.json()) as { points: Array<{ t: number }> };
    return stats.points.at(-1)?.t ?? 0;
  };
  const before = await last();
  await expect.poll(last, { timeout: 10_000, interval: 250 }).toBeGreaterThan(before);
}

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

test('sign in, watch pulls move the hit ratio, browse the cache, purge from the page', async () => {
  const proxy = await world().startProxy('proxy-dashboard', { admin: { token: TOKEN } });
  const image = world().images.small;
  const registry = world().registries.find((r) => r.name === REGISTRY);
  if (registry === undefined) throw new Error(`no ${REGISTRY} in the world`);
  const layerGets = async () => {
    await registry.mark(); // its log is complete up to here (env/registry.ts)
    return servedRequests(registry).filter((r) => r.method === 'GET' && r.uri.endsWith(image.layer.digest))
      .length;
  };
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.setDefaultTimeout(20_000);
  page.on('dialog', (dialog) => void dialog.accept()); // the purge's confirmation

  await page.goto(`${proxy.url}/ui/`);
  await page.getByLabel('Admin token').fill('not-the-token-0123456789');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect
    .poll(() => page.getByRole('alert').textContent())
    .toMatch(/Wrong token: the server refused it/);
  expect(await page.getByRole('navigation').isVisible()).toBe(false);
  await shot(page, 'login');

  await page.getByLabel('Admin token').fill(TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const hitRatio = page.locator('[data-kpi=hit-ratio] strong');
  await expect.poll(() => hitRatio.textContent()).toBe('–');

  await pullWithSkopeo(proxy, 'first'); // misses
  expect(await layerGets()).toBe(1);
  await nextSample(proxy); // each pull in an interval of its own: the chart shows the ratio rise
  await pullWithSkopeo(proxy, 'second'); // blobs from the cache
  expect(await layerGets()).toBe(1);
  await expect.poll(() => hitRatio.textContent(), { timeout: 15_000 }).toMatch(/^[1-9]\d*(\.\d)? %$/);
  const served = page.locator('[data-kpi=bytes-cache] strong');
  await expect.poll(() => served.textContent()).toMatch(/MiB$/); // the 1 MiB layer, from the cache
  expect(await page.locator('.uplot').count()).toBe(2);
  await nextSample(proxy);
  await pullWithSkopeo(proxy, 'third');
  await nextSample(proxy);
  await nextSample(proxy); // the third pull's point and an idle one after it
  await page.waitForTimeout(3500); // the page's next poll (every 3 s) draws them
  await shot(page, 'overview');

  const tagName = `${REGISTRY}/${image.repository}:${image.tag}`;
  await page.getByRole('link', { name: 'Cache', exact: true }).click();
  await page.locator('summary', { hasText: REGISTRY }).click();
  await page.locator('summary', { hasText: image.repository }).click();
  const row = page.locator(`tr[data-tag="${tagName}"]`);
  await expect.poll(() => row.textContent()).toContain(image.manifest.digest.slice(0, 19));
  expect(await row.locator('td[data-col=pulls]').textContent()).toBe('3'); // pulls since start

  await page.getByRole('link', { name: 'Registries', exact: true }).click();
  await page.getByRole('link', { name: REGISTRY, exact: true }).first().click();
  await expect
    .poll(() => page.locator(`[data-registry="${REGISTRY}:443"] .badge`).textContent())
    .toBe('reachable');
  await shot(page, 'registry');

  const layerFile = join(
    proxy.cacheDir,
    'blobs',
    'sha256',
    image.layer.digest.slice(7, 9),
    image.layer.digest.slice(7),
  );
  expect(existsSync(layerFile)).toBe(true);
  await page.getByRole('link', { name: 'Cache', exact: true }).click();
  await page.getByRole('button', { name: `Purge ${image.repository}:${image.tag}` }).click();
  await expect.poll(() => page.getByRole('status').textContent()).toMatch(/^Purged .*1 tags/);
  await expect.poll(() => row.count()).toBe(0);
  expect(existsSync(layerFile)).toBe(false);

  const again = proxy.log.mark();
  await pullWithSkopeo(proxy, 'after-purge');
  expect(await layerGets()).toBe(2);
  const lines = await expectPullLogged(proxy.log, REGISTRY, image, again);
  expect(lines.find((l) => l.method === 'GET' && l.path.endsWith(image.layer.digest))?.['cache']).toBe(
    'miss',
  );

  // Warm a second image from the page: the proxy pulls it through itself, the registry serves it.
  const warmed = world().image('warm');
  const warmedRef = `${REGISTRY}/${warmed.repository}:${warmed.tag}`;
  await page.getByRole('link', { name: 'Cache', exact: true }).click();
  await page.getByLabel('Image', { exact: true }).fill(warmedRef);
  await page.getByRole('button', { name: 'Warm', exact: true }).click();
  const job = page.locator(`li[data-warm="${warmedRef}"][data-state=done]`);
  await expect.poll(() => job.textContent(), { timeout: 20_000 }).toMatch(/fetched 2 blobs, 2\.0 MiB/);
  await registry.mark();
  const warmedGets = servedRequests(registry).filter(
    (r) => r.method === 'GET' && r.uri.endsWith(warmed.layer.digest),
  );
  expect(warmedGets).toHaveLength(1);
  await page.locator('summary', { hasText: warmed.repository }).click();
  await expect.poll(() => page.locator(`tr[data-tag="${warmedRef}"]`).count()).toBe(1);
  await shot(page, 'cache');

  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByRole('link', { name: 'Overview', exact: true }).click();
  await shot(page, 'phone');
  await page.close();
});
