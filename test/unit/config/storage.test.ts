// The storage keys (issue 24): fs by default, so nothing changes for today's users; s3 needs a
// bucket; bad values are refused with their path.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/config/errors.ts';
import { parseConfig } from '../../../src/config/load.ts';

function problems(storage: unknown): string[] {
  try {
    parseConfig({ storage }, {}, 't', '/etc/pullthrough');
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.map((issue) => `${issue.path}: ${issue.message}`);
    throw error;
  }
  return [];
}

describe('storage config', () => {
  it('is fs by default, with s3 settings that do nothing until type is s3', () => {
    const config = parseConfig({}, {}, 't', '/etc/pullthrough');
    expect(config.storage).toEqual({
      type: 'fs',
      s3: { endpoint: null, bucket: null, region: null, prefix: '', forcePathStyle: false, redirect: false },
      front: { maxSize: 0 },
    });
    expect(parseConfig({ storage: { front: { maxSize: '2GiB' } } }, {}, 't', '/').storage.front).toEqual({
      maxSize: 2 * 1024 ** 3,
    });
  });

  it('reads an s3 section, normalising the endpoint and the prefix', () => {
    const config = parseConfig(
      {
        storage: {
          type: 's3',
          s3: {
            endpoint: 'http://minio.internal:9000/',
            bucket: 'layers',
            region: 'eu-west-1',
            prefix: 'pullthrough',
            forcePathStyle: true,
            redirect: true,
          },
        },
      },
      {},
      't',
      '/etc/pullthrough',
    );
    expect(config.storage.s3).toEqual({
      endpoint: 'http://minio.internal:9000',
      bucket: 'layers',
      region: 'eu-west-1',
      prefix: 'pullthrough/',
      forcePathStyle: true,
      redirect: true,
    });
  });

  it('names the path of every problem', () => {
    expect(problems({ type: 's3' })).toEqual([
      'storage.s3.bucket: missing: required when storage.type is s3',
    ]);
    expect(problems({ type: 'gcs' })[0]).toMatch(/^storage\.type: expected one of fs, s3/);
    expect(problems({ s3: { bucket: 'ab' } })[0]).toMatch(/^storage\.s3\.bucket: "ab" is not a bucket name/);
    expect(problems({ s3: { endpoint: 'ftp://x' } })[0]).toMatch(
      /^storage\.s3\.endpoint: "ftp:\/\/x" is not/,
    );
    expect(problems({ s3: { endpoint: 'http://x/path' } })[0]).toMatch(/^storage\.s3\.endpoint:/);
    expect(problems({ s3: { prefix: '/abs' } })[0]).toMatch(/^storage\.s3\.prefix:/);
    expect(problems({ s3: { bucket: 'ok-bucket', acl: 'x' } })[0]).toMatch(/^storage\.s3: unknown key "acl"/);
    expect(problems({ front: { maxSize: 'lots' } })[0]).toMatch(
      /^storage\.front\.maxSize: "lots" is not a size/,
    );
  });
});
