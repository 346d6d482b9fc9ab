// The mirror keys: off by default, set by file or environment, paths resolved against the
// config's directory, and bad values refused with their path.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/config/errors.ts';
import { effectiveConfig } from '../../../src/config/effective.ts';
import { parseConfig } from '../../../src/config/load.ts';

describe('mirror config', () => {
  it('is off by default, and written back as such', () => {
    const config = parseConfig({}, {}, 't', '/etc/pullthrough');
    expect(config.mirror).toEqual({ listen: null, default: null, tls: null });
    expect(effectiveConfig(config)['mirror']).toEqual({ listen: null, default: null, tls: null });
  });

  it('takes listen and default from the file or the environment, and resolves the TLS files', () => {
    const config = parseConfig(
      { mirror: { listen: '127.0.0.1:5000', tls: { cert: 'mirror.crt', key: '/keys/mirror.key' } } },
      { PULLTHROUGH_MIRROR_DEFAULT: 'Docker.io' },
      't',
      '/etc/pullthrough',
    );
    expect(config.mirror).toEqual({
      listen: { host: '127.0.0.1', port: 5000 },
      default: 'docker.io',
      tls: { cert: '/etc/pullthrough/mirror.crt', key: '/keys/mirror.key' },
    });
    expect(effectiveConfig(config)['mirror']).toMatchObject({ listen: '127.0.0.1:5000' });
    const fromEnv = parseConfig({}, { PULLTHROUGH_MIRROR_LISTEN: '[::]:5000' }, 't', '/');
    expect(fromEnv.mirror.listen).toEqual({ host: '::', port: 5000 });
  });

  it('refuses a bad address, a bad default and an unknown key with their paths', () => {
    let error: unknown;
    try {
      parseConfig({ mirror: { listen: '5000', default: 'not a host', tsl: {} } }, {}, 't', '/');
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain('mirror.listen');
    expect(message).toContain('mirror.default');
    expect(message).toContain('unknown key "tsl"');
  });
});
