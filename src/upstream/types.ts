// The shapes of an upstream request and response, apart from the client that sends them, so
// that readers of responses (body.ts, login.ts, fetch.ts) do not depend on the client.
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';

export interface UpstreamRequest {
  readonly origin: string;
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string | string[]>;
  readonly body?: Readable | null;
  readonly signal?: AbortSignal;
  /** Time allowed for the response headers, when not the client's own (upstream.headersTimeout). */
  readonly headersTimeoutMs?: number;
}

export type UpstreamResponse = Dispatcher.ResponseData;
