import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defineSink } from '../../../engine/plugins/define-sink.ts';
import { SinkRegistry, pluginSpecsFromEnv } from '../../../engine/plugins/sink-registry.ts';

const FIXTURE_PLUGINS = join(import.meta.dirname, '../../fixtures/plugins');

const fake = (name: string, description = 'a test sink') => defineSink({
  name,
  description,
  configSchema: { type: 'object', additionalProperties: false, properties: { n: { type: 'integer', default: 3, description: 'n' } } },
  create: () => ({ write: async () => undefined, close: async () => undefined }),
});

describe('SinkRegistry', () => {
  it('withBuiltins() knows the built-in sinks, names sorted', () => {
    const names = SinkRegistry.withBuiltins().names();
    expect(names).toEqual([...names].sort());
    expect(names).toEqual(expect.arrayContaining(['log', 'publish']));
  });

  it('validateConfig fills in defaults from the configSchema', () => {
    const registry = new SinkRegistry();
    registry.register(fake('counter'));
    const config: Record<string, unknown> = {};
    expect(registry.get('counter')!.validateConfig(config)).toBe(true);
    expect(config).toEqual({ n: 3 });
  });

  it('a second plugin of the same name replaces the first', () => {
    const registry = new SinkRegistry();
    registry.register(fake('dup', 'first'));
    registry.register(fake('dup', 'second'));
    expect(registry.names()).toEqual(['dup']);
    expect(registry.get('dup')!.definition.description).toBe('second');
  });

  it('refuses something that is not a sink definition', () => {
    const registry = new SinkRegistry();
    const message = 'a sink plugin must default-export defineSink({ name, description, configSchema, create })';
    expect(() => registry.register(undefined as never)).toThrow(message);
    expect(() => registry.register({ name: 'x' } as never)).toThrow(message);
  });

  it('unknown names are undefined', () => {
    expect(SinkRegistry.withBuiltins().get('nope')).toBeUndefined();
  });

  it('loadPlugins loads each file of a plugin directory\'s sinks/ folder, skipping index files', async () => {
    const registry = new SinkRegistry();
    await registry.loadPlugins([FIXTURE_PLUGINS]);
    expect(registry.names()).toEqual(['echo']);
    const config: Record<string, unknown> = {};
    expect(registry.get('echo')!.validateConfig(config)).toBe(true);
    expect(config).toEqual({ prefix: '>' });
  });
});

describe('pluginSpecsFromEnv', () => {
  const cases: [string | undefined, string[]][] = [
    [undefined, []],
    ['', []],
    ['/opt/plugins', ['/opt/plugins']],
    ['/a,/b', ['/a', '/b']],
    ['/a:/b', ['/a', '/b']],
    [' ./local , synapse-sink-x ', ['./local', 'synapse-sink-x']],
  ];
  for (const [value, expected] of cases) {
    it(`${JSON.stringify(value)} → ${JSON.stringify(expected)}`, () => {
      expect(pluginSpecsFromEnv(value === undefined ? {} : { SYNAPSE_PLUGINS: value })).toEqual(expected);
    });
  }
});
