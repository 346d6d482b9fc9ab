// One request to a test proxy's admin API with a bearer token (or none), its JSON answer read.
import { request } from 'undici';
import type { TestProxy } from './proxy.ts';

export interface AdminAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Record<string, unknown>;
}

export async function admin(
  proxy: Pick<TestProxy, 'url'>,
  method: string,
  urlPath: string,
  token: string | null,
): Promise<AdminAnswer> {
  const res = await request(`${proxy.url}${urlPath}`, {
    method: method as 'GET',
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
  });
  return {
    status: res.statusCode,
    headers: res.headers,
    body: (await res.body.json()) as Record<string, unknown>,
  };
}
