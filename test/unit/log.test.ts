import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, redactUrl } from '../../src/log.ts';
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
