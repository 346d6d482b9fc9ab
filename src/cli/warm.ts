// `pullthrough warm REF...`: pulls images into the cache through a running proxy, as a client
// would (warm-pull.ts), so that the next pulls are served from the cache. Through the proxy means
// CONNECT and TLS trusting its CA (--ca, else fetched from the proxy's /ca.crt). A bar per image
// on a terminal (cli-progress), a line per image otherwise; a summary; exit 1 if any failed.
// A proxy with proxy.htpasswd gets the credentials of the proxy URL (--proxy or PULLTHROUGH_PROXY,
// `http://user:pass@host:3128`), which no message repeats.
import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { Command, Option } from 'commander';
import { ProxyAgent, request } from 'undici';
import { UsageError } from './errors.ts';
import { humanSize, plural } from './format.ts';
import { formatRef, parseImageRef, type ImageRef } from './image-ref.ts';
import { hostPlatform, RegistryClient, type PlatformChoice, type PullResult } from '../warm/pull.ts';
import { DEFAULT_SERVER } from './cache.ts';

interface WarmOptions {
  readonly file?: string;
  readonly platform?: string;
  readonly allPlatforms?: boolean;
  readonly proxy: string;
  readonly ca?: string;
}

type Outcome = { ref: string; result: PullResult } | { ref: string; error: string };

export function warmCommand(): Command {
  return new Command('warm')
    .description('pull images into the cache through a running proxy, so that later pulls are served from it')
    .argument('[refs...]', 'images, e.g. alpine:3.20 ghcr.io/org/app:1.2 quay.io/a/b@sha256:…')
    .option('--file <list>', 'read more references from this file, one a line (# comments)')
    .option('--platform <list>', `platforms to take from a multi-platform image (default: ${hostPlatform()})`)
    .option('--all-platforms', 'take every platform of a multi-platform image')
    .addOption(
      new Option('--proxy <url>', 'the running proxy; http://USER:PASSWORD@HOST:PORT with proxy.htpasswd')
        .env('PULLTHROUGH_PROXY')
        .default(DEFAULT_SERVER),
    )
    .option('--ca <file>', "the proxy's CA certificate (default: fetched from <proxy>/ca.crt)")
    .addHelpText('after', '\nExit codes: 0 every image warmed, 1 some failed, 2 bad usage.')
    .action((refs: string[], options: WarmOptions) => warm(refs, options));
}

async function warm(args: readonly string[], options: WarmOptions): Promise<void> {
  if (options.platform !== undefined && options.allPlatforms === true) {
    throw new UsageError('give --platform or --all-platforms, not both');
  }
  const texts = [...args, ...(options.file === undefined ? [] : await readList(options.file))];
  if (texts.length === 0) throw new UsageError('warm needs at least one image reference (or --file)');
  const refs = texts.map((text) => parseImageRef(text));
  const platforms: PlatformChoice =
    options.allPlatforms === true
      ? 'all'
      : (options.platform ?? hostPlatform())
          .split(',')
          .map((p) => p.trim())
          .filter((p) => p !== '');
  const proxy = proxyUrl(options.proxy);
  const ca = options.ca === undefined ? await fetchCa(proxy.plain) : await readFile(options.ca, 'utf8');
  // The proxy's CA for intercepted registries, the usual roots for anything it only tunnels.
  // undici sends the URL's user and password as Proxy-Authorization: Basic on each CONNECT.
  const agent = new ProxyAgent({ uri: options.proxy, requestTls: { ca: [...rootCertificates, ca] } });
  try {
    const outcomes = await pullAll(new RegistryClient(agent), refs, platforms, proxy);
    process.stdout.write(summary(outcomes));
    if (outcomes.some((o) => 'error' in o)) process.exitCode = 1;
  } finally {
    await agent.close().catch(() => undefined);
  }
}

async function pullAll(
  client: RegistryClient,
  refs: readonly ImageRef[],
  platforms: PlatformChoice,
  proxy: ProxyUrl,
): Promise<Outcome[]> {
  const live = process.stderr.isTTY === true;
  const bars = live
    ? new MultiBar(
        {
          stream: process.stderr,
          // The name last: a terminal narrower than the line cuts it, not the numbers.
          format: ' {bar} {percentage}% {done}/{size}  {ref}',
          barsize: 24,
          hideCursor: true,
          clearOnComplete: false,
        },
        Presets.shades_classic,
      )
    : undefined;
  const outcomes: Outcome[] = [];
  for (const ref of refs) {
    const name = formatRef(ref);
    let bar: SingleBar | undefined;
    let done = 0;
    let total = 0;
    const show = () => bar?.update(done, { done: humanSize(done), size: humanSize(total), ref: name });
    try {
      bar = bars?.create(1, 0, { done: '0 B', size: '?', ref: name });
      const result = await client.pull(ref, platforms, {
        sized: (bytes) => {
          total = bytes;
          bar?.setTotal(Math.max(1, bytes));
          show();
        },
        progress: (bytes) => {
          done += bytes;
          show();
        },
      });
      outcomes.push({ ref: name, result });
      if (!live) process.stderr.write(`${name}: ${describeResult(result)}\n`);
    } catch (error) {
      const message = explain(error, proxy);
      outcomes.push({ ref: name, error: message });
      bar?.update({ ref: `FAILED ${name}` });
      if (!live) process.stderr.write(`${name}: failed: ${message}\n`);
    }
  }
  bars?.stop();
  return outcomes;
}

function describeResult(result: PullResult): string {
  const platforms = result.platforms.length > 0 ? ` (${result.platforms.join(', ')})` : '';
  if (result.fetchedBlobs === 0) return `cached already, ${humanSize(result.bytes)}${platforms}`;
  return `fetched ${plural(result.fetchedBlobs, 'blob')}, ${humanSize(result.fetchedBytes)} of ${humanSize(result.bytes)}${platforms}`;
}

function summary(outcomes: readonly Outcome[]): string {
  let cached = 0;
  let fetched = 0;
  let bytes = 0;
  const failures: string[] = [];
  for (const outcome of outcomes) {
    if ('error' in outcome) failures.push(`  ${outcome.ref}: ${outcome.error}`);
    else if (outcome.result.fetchedBlobs === 0) cached += 1;
    else {
      fetched += 1;
      bytes += outcome.result.fetchedBytes;
    }
  }
  const line = `${plural(outcomes.length, 'image')}: ${cached} cached already, ${fetched} fetched (${humanSize(bytes)}), ${failures.length} failed`;
  return [line, ...failures].join('\n') + '\n';
}

interface ProxyUrl {
  /** Without user and password: for /ca.crt, which needs none. */
  readonly plain: string;
  /** As messages show it: the password masked. */
  readonly shown: string;
  readonly hasCredentials: boolean;
}

function proxyUrl(text: string): ProxyUrl {
  const url = URL.parse(text);
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new UsageError('--proxy must be an http:// URL, e.g. http://127.0.0.1:3128');
  }
  const hasCredentials = url.username !== '' || url.password !== '';
  const shown = new URL(url);
  if (shown.password !== '') shown.password = '***';
  url.username = '';
  url.password = '';
  const trim = (u: URL) => u.href.replace(/\/+$/, '');
  return { plain: trim(url), shown: trim(shown), hasCredentials };
}

/** A failure as one line; the proxy's 407 says where credentials go. */
function explain(error: unknown, proxy: ProxyUrl): string {
  const message = error instanceof Error ? error.message : String(error);
  if (!/^Proxy response \(407\)/.test(message)) return message;
  return proxy.hasCredentials
    ? `the proxy at ${proxy.shown} refused these credentials (407)`
    : `the proxy at ${proxy.shown} wants credentials (407): give them in the proxy URL, ` +
        'http://USER:PASSWORD@HOST:PORT (--proxy or PULLTHROUGH_PROXY)';
}

async function readList(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8');
  return text
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter((line) => line !== '');
}

async function fetchCa(proxy: string): Promise<string> {
  const url = `${proxy}/ca.crt`;
  try {
    const res = await request(url);
    const text = await res.body.text();
    if (res.statusCode !== 200 || !text.includes('BEGIN CERTIFICATE')) {
      throw new Error(`${url} answered ${res.statusCode} without a certificate`);
    }
    return text;
  } catch (error) {
    throw new Error(`cannot get the proxy's CA from ${url} (${(error as Error).message}); give --ca FILE`, {
      cause: error,
    });
  }
}
