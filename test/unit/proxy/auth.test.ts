import { inspect } from 'node:util';
import bcrypt from 'bcryptjs';
import { describe, expect, it } from 'vitest';
import { HtpasswdError, InternalCredential, ProxyAuth, parseHtpasswd } from '../../../src/proxy/auth.ts';

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('proxy authentication', () => {
  it('accepts the right password, refuses wrong ones, unknown users and other schemes', async () => {
    const hash = await bcrypt.hash('s3cret:with:colons', 4);
    const auth = new ProxyAuth(parseHtpasswd(`# comment\n\nalice:${hash.replace(/^\$2b\$/, '$2y$')}\n`, 'f'));
    expect(await auth.check(basic('alice', 's3cret:with:colons'))).toBe('alice');
    expect(await auth.check(basic('alice', 'wrong'))).toBeUndefined();
    expect(await auth.check(basic('bob', 's3cret:with:colons'))).toBeUndefined();
    expect(await auth.check('Bearer abc')).toBeUndefined();
    expect(await auth.check(undefined)).toBeUndefined();
    expect(await auth.check('Basic !!!')).toBeUndefined();
  });

  it('refuses htpasswd lines that are not bcrypt, naming the line', () => {
    expect(() =>
      parseHtpasswd(
        'ok:$2b$04$abcdefghijklmnopqrstuu5s2v8.w8OaWq0C9b1kq1f0eXeKJ4Q1u\nbob:$apr1$x$y\n',
        'users',
      ),
    ).toThrow(
      new HtpasswdError('users line 2: expected user:bcrypt-hash (make one with: htpasswd -nB user)'),
    );
    expect(() => parseHtpasswd('plain:password\n', 'users')).toThrow('users line 1');
  });

  it("accepts this process's own credential beside the file's users, and no other process's", async () => {
    const internal = new InternalCredential();
    const auth = new ProxyAuth(parseHtpasswd(`alice:${await bcrypt.hash('pw', 4)}\n`, 'f'), internal);
    expect(await auth.check(internal.header())).toBe(InternalCredential.USER);
    expect(await auth.check(new InternalCredential().header())).toBeUndefined();
    expect(await auth.check(basic(InternalCredential.USER, ''))).toBeUndefined();
    expect(await auth.check(basic('alice', 'pw'))).toBe('alice');
    // Without it, the same header is just a user the file does not list.
    expect(await new ProxyAuth(new Map()).check(internal.header())).toBeUndefined();
    // Nothing that prints or serialises the credential shows it.
    const secret = internal.header().slice('Basic '.length);
    expect(JSON.stringify({ internal })).not.toContain(secret);
    expect(inspect(internal)).not.toContain(secret);
  });
});
