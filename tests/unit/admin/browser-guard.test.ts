import { describe, expect, it } from 'vitest';
import { hostName, isLoopbackName } from '../../../engine/admin/browser-guard.ts';

describe('Host header parsing', () => {
  it.each([
    ['127.0.0.1:8080', '127.0.0.1', true],
    ['localhost', 'localhost', true],
    ['LOCALHOST.:80', 'localhost', true],
    ['[::1]:8080', '::1', true],
    ['app.localhost:3000', 'app.localhost', true],
    ['127.1.2.3', '127.1.2.3', true],
    ['attacker.example:8080', 'attacker.example', false],
    ['localhost.attacker.example', 'localhost.attacker.example', false],
    ['127.0.0.1.nip.io', '127.0.0.1.nip.io', false],
    ['[::ffff:7f00:1]', '::ffff:7f00:1', false],
    ['0.0.0.0:8080', '0.0.0.0', false],
  ])('%s is %s, loopback: %s', (header, name, loopback) => {
    expect(hostName(header)).toBe(name);
    expect(isLoopbackName(name)).toBe(loopback);
  });

  it.each([undefined, '', 'a b', 'host:port:extra', '[::1', 'x:99999999'])('%s has no host name', (header) => {
    expect(hostName(header)).toBeUndefined();
  });
});
