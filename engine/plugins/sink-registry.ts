import { readdir } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import type { SinkDefinition } from './define-sink.ts';
import { SynapseError } from '../errors.ts';
import { builtinSinks } from '../../plugins/sinks/index.ts';

/** A sink definition with its config validator compiled once. */
export interface RegisteredSink {
  definition: SinkDefinition<any>;
  /** Validates (and fills defaults into) a `with:` block. */
  validateConfig: ValidateFunction;
}

/**
 * The sink plugins the engine knows: the built-in set plus any loaded from plugin directories.
 * Each plugin's configSchema is compiled once, with defaults applied on validation.
 */
export class SinkRegistry {
  private readonly sinks = new Map<string, RegisteredSink>();
  private readonly ajv = new Ajv2020({ allErrors: true, useDefaults: true, strict: false, verbose: true });
  /**
   * The built-in sinks' schemas are this repository's (tests check them against the meta-schema):
   * compiled without checking them, which spares every command start the meta-schema's compilation.
   */
  private readonly builtinAjv = new Ajv2020({ allErrors: true, useDefaults: true, strict: false, validateSchema: false, verbose: true });

  /** A registry with the built-in sinks. */
  static withBuiltins(): SinkRegistry {
    const registry = new SinkRegistry();
    for (const def of builtinSinks) registry.add(def, registry.builtinAjv);
    return registry;
  }

  /** Adds a plugin; a second plugin of the same name replaces the first. */
  register(definition: SinkDefinition<any>): void {
    this.add(definition, this.ajv);
  }

  private add(definition: SinkDefinition<any>, ajv: Ajv2020): void {
    if (!definition?.name || typeof definition.create !== 'function') {
      throw new Error('a sink plugin must default-export defineSink({ name, description, configSchema, create })');
    }
    this.sinks.set(definition.name, { definition, validateConfig: ajv.compile(definition.configSchema) });
  }

  get(name: string): RegisteredSink | undefined {
    return this.sinks.get(name);
  }

  names(): string[] {
    return [...this.sinks.keys()].sort();
  }

  /**
   * Loads third-party plugins: every .js/.mjs/.ts file in each directory (the `sinks/` folder of
   * it when there is one), or an npm package name, whose default export is a sink definition.
   */
  async loadPlugins(specs: string[]): Promise<void> {
    for (const spec of specs) {
      if (spec.startsWith('.') || spec.startsWith('/')) {
        let dir = resolve(spec);
        const entries = await readdir(dir);
        if (entries.includes('sinks')) dir = join(dir, 'sinks');
        for (const name of (await readdir(dir)).sort()) {
          if (!['.js', '.mjs', '.ts'].includes(extname(name)) || name.endsWith('.d.ts') || name.startsWith('index.')) continue;
          const mod = await import(pathToFileURL(join(dir, name)).href).catch((err: NodeJS.ErrnoException) => {
            // The engine is built JavaScript: Node 20 runs no TypeScript on its own.
            if (err?.code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw err;
            throw new SynapseError(`cannot load the TypeScript plugin ${join(dir, name)}: compile it to JavaScript, or run synapse under a TypeScript loader (node --import tsx node_modules/synapse/bin/synapse.mjs ...)`, { cause: err });
          });
          this.register(mod.default);
        }
      } else {
        const mod = await import(spec);
        const defs = Array.isArray(mod.default) ? mod.default : [mod.default];
        for (const def of defs) this.register(def);
      }
    }
  }
}

/** Plugin locations from SYNAPSE_PLUGINS (comma- or colon-separated directories or package names). */
export function pluginSpecsFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.SYNAPSE_PLUGINS ?? '').split(/[,:]/).map((s) => s.trim()).filter(Boolean);
}
