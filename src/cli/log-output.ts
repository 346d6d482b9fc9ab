// Where `serve` writes its log: process.stdout, never blocking the process. pino's default
// destination writes fd 1 with fs.writeSync, and fd 1 as a child inherits it is a blocking pipe:
// a reader that stops reading (a paused `docker logs`, a full pipe to a stuck collector) froze the
// whole proxy, signals included. process.stdout queues instead; past a bound, lines are dropped
// and counted, and exit waits for the queue only so long. log.format: pretty makes each JSON line
// readable for a person at a terminal (pino-pretty, loaded only then).
import type { Writable } from 'node:stream';
import type { DestinationStream } from 'pino';

/** Bytes queued for stdout beyond which log lines are dropped rather than held in memory. */
const MAX_QUEUED = 8 * 1024 * 1024;

export interface LogOutput extends DestinationStream {
  /** Resolves once every queued line is written, or after `ms`, whichever comes first. */
  drain(ms: number): Promise<void>;
}

export interface LogOutputOptions {
  readonly out?: Writable;
  /** Bytes queued beyond which lines are dropped. */
  readonly maxQueued?: number;
  /** Turns one JSON line into what is written; the line itself when absent. */
  readonly format?: (line: string) => string;
}

export function stdoutLog(options: LogOutputOptions = {}): LogOutput {
  const { out = process.stdout, maxQueued = MAX_QUEUED, format = (line: string) => line } = options;
  let dropped = 0;
  let corked = false;
  const uncork = () => {
    corked = false;
    out.uncork();
  };
  // EPIPE (the reader is gone) is not a reason to stop serving; the lines are lost either way.
  out.on('error', () => {});
  return {
    write(line: string) {
      if (out.writableLength > maxQueued) {
        dropped += 1;
        return;
      }
      // Lines of one tick go out in one write (writev) instead of one syscall each.
      if (!corked) {
        corked = true;
        out.cork();
        process.nextTick(uncork);
      }
      if (dropped > 0) {
        out.write(format(droppedLine(dropped)));
        dropped = 0;
      }
      out.write(format(line));
    },
    async drain(ms) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        // Written in order: its callback runs once everything queued before it is out.
        new Promise<void>((resolve) => out.write('', () => resolve())),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
      ]);
      clearTimeout(timer);
    },
  };
}

/** A warning in pino's shape, for the lines that could not be queued. */
function droppedLine(count: number): string {
  const line = {
    level: 40,
    time: Date.now(),
    name: 'pullthrough',
    dropped: count,
    msg: 'log lines dropped: stdout is not being read',
  };
  return `${JSON.stringify(line)}\n`;
}

/**
 * pino-pretty's formatter for log.format: pretty (a runtime dependency for this alone): colours
 * when stdout is a terminal, the time of day, no repeated `name`.
 */
export async function prettyFormat(
  colorize = Boolean(process.stdout.isTTY),
): Promise<(line: string) => string> {
  const { prettyFactory } = await import('pino-pretty');
  const pretty = prettyFactory({ colorize, translateTime: 'SYS:HH:MM:ss.l', ignore: 'name' });
  return (line) => pretty(line);
}
