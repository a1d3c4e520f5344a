import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.ts';

describe('config: admin', () => {
  it('listens on loopback port 5001 by default', () => {
    expect(parseConfig({}, { env: {} }).admin).toEqual({ listen: ['127.0.0.1:5001'] });
  });

  it('takes one address or a list, and false or [] turns it off', () => {
    expect(parseConfig({ admin: { listen: '127.0.0.1:6001' } }, { env: {} }).admin.listen).toEqual(['127.0.0.1:6001']);
    expect(parseConfig({ admin: { listen: ['127.0.0.1:6001', '[::1]:6001'] } }, { env: {} }).admin.listen).toEqual(['127.0.0.1:6001', '[::1]:6001']);
    expect(parseConfig({ admin: false }, { env: {} }).admin.listen).toEqual([]);
    expect(parseConfig({ admin: { listen: [] } }, { env: {} }).admin.listen).toEqual([]);
    expect(parseConfig({ admin: {} }, { env: {} }).admin.listen).toEqual(['127.0.0.1:5001']);
  });

  it('refuses unknown keys and true', () => {
    expect(() => parseConfig({ admin: { listn: ':5001' } }, { env: {} })).toThrow(ConfigError);
    expect(() => parseConfig({ admin: true }, { env: {} })).toThrow(ConfigError);
  });

  it('is overridden by OCIMIRROR_ADMIN_LISTEN (empty: off)', () => {
    expect(loadConfig({ env: { OCIMIRROR_ADMIN_LISTEN: '127.0.0.1:7001, 127.0.0.2:7001' } }).admin.listen).toEqual(['127.0.0.1:7001', '127.0.0.2:7001']);
    expect(loadConfig({ env: { OCIMIRROR_ADMIN_LISTEN: '' } }).admin.listen).toEqual([]);
  });
});
