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
  /** A blob's GET: its body is large and read by a fill (client.ts sends it with the own reader). */
  readonly bulk?: boolean;
}

/** What a response body offers besides being a stream: undici's dump(), which the own reader has too. */
export type UpstreamBody = Readable & { dump(): Promise<void> };

/** An upstream response, from undici (Dispatcher.ResponseData fits) or the own blob reader (h1/). */
export interface UpstreamResponse {
  readonly statusCode: number;
  readonly headers: Dispatcher.ResponseData['headers'];
  readonly body: UpstreamBody;
}
