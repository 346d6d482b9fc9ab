import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseChallenge, readCredentials, scopeOf } from '../../../src/upstream/login.ts';
import { tempDir } from '../../helpers/tmp.ts';

describe('upstream login', () => {
  it('parses Bearer and Basic challenges, quoted or not', () => {
    expect(
      parseChallenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
      ),
    ).toEqual({
      scheme: 'bearer',
      params: {
        realm: 'https://auth.docker.io/token',
        service: 'registry.docker.io',
        scope: 'repository:library/alpine:pull',
      },
    });
    expect(parseChallenge('basic realm="Registry Realm"')).toEqual({
      scheme: 'basic',
      params: { realm: 'Registry Realm' },
    });
    expect(parseChallenge('Bearer realm=https://x/token, service=x')?.params).toEqual({
      realm: 'https://x/token',
      service: 'x',
    });
    expect(parseChallenge('Negotiate abc')).toBeUndefined();
  });

  it('keeps each challenge of a header its own parameters', () => {
    expect(parseChallenge('Bearer realm="a",service="b", Basic realm="c"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'a', service: 'b' },
    });
    // The first challenge the proxy can answer wins, whatever comes before it.
    expect(parseChallenge('Negotiate abc==, Basic realm="c", Bearer realm="https://t/token"')).toEqual({
      scheme: 'basic',
      params: { realm: 'c' },
    });
    expect(parseChallenge('Negotiate, Bearer realm="https://t/token",scope="repository:a,b:pull"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://t/token', scope: 'repository:a,b:pull' },
    });
    expect(parseChallenge('Bearer realm="quote \\" inside" , error="invalid_token"')?.params).toEqual({
      realm: 'quote " inside',
      error: 'invalid_token',
    });
    expect(parseChallenge('')).toBeUndefined();
    expect(parseChallenge(', ,')).toBeUndefined();
  });

  it('derives the pull scope from a /v2/ path', () => {
    expect(scopeOf('/v2/library/alpine/manifests/3.20')).toBe('repository:library/alpine:pull');
    expect(scopeOf('/v2/a/b/c/blobs/sha256:00')).toBe('repository:a/b/c:pull');
    expect(scopeOf('/v2/')).toBe('');
  });

  it('reads a password file afresh each time and runs a docker credential helper', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'password');
    await writeFile(file, 'first\n');
    expect(await readCredentials({ username: 'bot', passwordFile: file }, 'r.example')).toEqual({
      username: 'bot',
      password: 'first',
    });
    await writeFile(file, 'rotated\n');
    expect((await readCredentials({ username: 'bot', passwordFile: file }, 'r.example')).password).toBe(
      'rotated',
    );

    const helper = path.join(dir, 'docker-credential-test');
    // The protocol: `get`, the server on stdin, {Username, Secret} on stdout.
    await writeFile(
      helper,
      '#!/bin/sh\n[ "$1" = get ] || exit 3\nread host\nprintf \'{"ServerURL":"%s","Username":"AWS","Secret":"token-for-%s"}\' "$host" "$host"\n',
    );
    await chmod(helper, 0o755);
    expect(await readCredentials({ helper }, 'r.example:5000')).toEqual({
      username: 'AWS',
      password: 'token-for-r.example:5000',
    });
    const broken = path.join(dir, 'docker-credential-broken');
    await writeFile(broken, '#!/bin/sh\necho "secret-in-output"; exit 1\n');
    await chmod(broken, 0o755);
    const failure = readCredentials({ helper: broken }, 'r.example');
    await expect(failure).rejects.toThrow(`credential helper ${broken} failed (1)`);
    await expect(failure).rejects.not.toThrow('secret-in-output');
  });
});
