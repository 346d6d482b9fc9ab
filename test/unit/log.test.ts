import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, redactSecrets, redactUrl } from '../../src/log.ts';
import { withoutHopByHop } from '../../src/http/headers.ts';

describe('redaction', () => {
  it('redacts signature and credential query values, keeps the rest', () => {
    expect(redactUrl('/v2/x/blobs/sha256:ab')).toBe('/v2/x/blobs/sha256:ab');
    expect(
      redactUrl('/data?X-Amz-Signature=s3cr3t&X-Amz-Credential=AKIA&X-Amz-Date=2026&sig=abc&se=2026&n=1'),
    ).toBe(
      '/data?X-Amz-Signature=[redacted]&X-Amz-Credential=[redacted]&X-Amz-Date=2026&sig=[redacted]&se=[redacted]&n=1',
    );
    expect(redactUrl('/token?account=me&access_token=abc')).toBe('/token?account=me&access_token=[redacted]');
  });

  it('redacts authorization headers and passwords in log objects', () => {
    let out = '';
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        out += chunk.toString();
        cb();
      },
    });
    const log = createLogger('info', sink);
    log.info(
      { headers: { authorization: 'Bearer abc', 'proxy-authorization': 'Basic xyz' }, password: 'pw' },
      'x',
    );
    expect(out).not.toMatch(/abc|xyz|"pw"/);
    expect(JSON.parse(out)).toMatchObject({
      headers: { authorization: '[redacted]', 'proxy-authorization': '[redacted]' },
      password: '[redacted]',
      msg: 'x',
    });
  });

  it("redacts one level down, keeps everything else, and never changes the caller's objects", () => {
    const error = Object.assign(new Error('upstream refused'), { passphrase: 'secret-2' });
    const upstream = Object.freeze({
      url: '/v2/',
      headers: Object.freeze({ cookie: 'c=secret-3', 'set-cookie': 'd=secret-4', accept: '*/*' }),
    });
    const input = { upstream, err: error, user: { name: 'me', password: 'secret-5' }, n: 1 };
    const output = redactSecrets(input);
    expect(JSON.stringify(output)).not.toMatch(/secret-/);
    expect(output).toMatchObject({
      upstream: { url: '/v2/', headers: { cookie: '[redacted]', 'set-cookie': '[redacted]', accept: '*/*' } },
      user: { name: 'me', password: '[redacted]' },
      n: 1,
    });
    expect(output['err']).toBeInstanceOf(Error);
    expect((output['err'] as Error).message).toBe('upstream refused');
    expect(input.upstream.headers.cookie).toBe('c=secret-3');
    expect(input.user.password).toBe('secret-5');
    expect(error.passphrase).toBe('secret-2');
  });

  it('hands back the same object when there is nothing to redact', () => {
    const input = { host: 'ghcr.io', headers: { accept: '*/*' }, nested: { n: 1 }, list: ['password'] };
    expect(redactSecrets(input)).toBe(input);
  });
});

describe('hop-by-hop headers', () => {
  it('drops hop-by-hop fields and the ones Connection names', () => {
    expect(
      withoutHopByHop({
        connection: 'keep-alive, x-secret',
        'x-secret': '1',
        'keep-alive': 'timeout=5',
        'transfer-encoding': 'chunked',
        'proxy-authorization': 'Basic x',
        host: 'a',
        expect: '100-continue',
        authorization: 'Bearer t',
        'x-multi': ['a', 'b'],
      }),
    ).toEqual({ authorization: 'Bearer t', 'x-multi': ['a', 'b'] });
  });
});
