// serve's log destination: lines queue on a stream that may not be read, past a bound they are
// dropped and then counted in one warning, and drain() waits for the queue only so long.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { prettyFormat, stdoutLog } from '../../../src/cli/log-output.ts';
import { createLogger } from '../../../src/log.ts';

/** A stream that takes writes only when `flow()` is called; `written` is what it took. */
function stalledStream() {
  const written: string[] = [];
  const pending: Array<() => void> = [];
  const stream = new Writable({
    highWaterMark: 16,
    writev(chunks, callback) {
      written.push(...chunks.map(({ chunk }) => (chunk as Buffer).toString()));
      pending.push(callback);
    },
  });
  const flow = () => pending.splice(0).forEach((callback) => callback());
  /** Lets the stream take everything queued. */
  const flowAll = async () => {
    while (stream.writableLength > 0 || pending.length > 0) {
      flow();
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  return { stream, written, flow, flowAll };
}

describe('stdoutLog', () => {
  it('queues lines while the reader stalls, drops them past the bound, then says how many', async () => {
    const { stream, written, flowAll } = stalledStream();
    const output = stdoutLog({ out: stream, maxQueued: 100 });
    for (let i = 0; i < 20; i += 1) output.write(`line ${String(i).padStart(2, '0')} .........\n`); // 20 bytes
    expect(stream.writableLength).toBeGreaterThan(0);
    expect(stream.writableLength).toBeLessThanOrEqual(120);
    await flowAll();
    output.write('after\n');
    await flowAll();
    const lines = written.join('').split('\n').filter(Boolean);
    const kept = lines.filter((line) => line.startsWith('line ')).length;
    expect(kept).toBeGreaterThanOrEqual(5);
    expect(kept).toBeLessThan(20);
    expect(JSON.parse(lines.at(-2)!)).toMatchObject({
      level: 40,
      dropped: 20 - kept,
      msg: 'log lines dropped: stdout is not being read',
    });
    expect(lines.at(-1)).toBe('after');
  });

  it('drain() resolves once everything is written, or after its time when nothing moves', async () => {
    const { stream, flowAll } = stalledStream();
    const output = stdoutLog({ out: stream });
    output.write('one\n');
    const started = performance.now();
    await output.drain(100);
    expect(performance.now() - started).toBeGreaterThanOrEqual(90);

    const drained = output.drain(10_000);
    await flowAll();
    await drained;
    expect(stream.writableLength).toBe(0);
  });

  it('log.format: pretty writes readable lines, credentials still redacted', async () => {
    const { stream, written, flowAll } = stalledStream();
    const output = stdoutLog({ out: stream, format: await prettyFormat(false) });
    const log = createLogger('info', output);
    log.info({ port: 3128, headers: { authorization: 'Bearer sesame' } }, 'listening');
    await flowAll();
    const text = written.join('');
    expect(text).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: listening\n/);
    expect(text).toContain('port: 3128');
    expect(text).not.toContain('sesame');
    expect(text).not.toContain('{"level"');
  });
});
