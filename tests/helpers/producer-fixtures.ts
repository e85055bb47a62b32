import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StreamEntry } from '../../engine/runner/codec.ts';
import { REPO_ROOT } from './pipelines.ts';

/** The directory of the producer contract fixtures (written by generate.py beside them). */
export const PRODUCER_FIXTURES = join(REPO_ROOT, 'tests', 'fixtures', 'producers');

/** One stream entry as a platform producer writes it. */
export interface ProducerFixture {
  /** The file name without .json: `helox-training-progress`, `cyrex-rag-retrieval-flat`, ... */
  name: string;
  stream: string;
  producer: string;
  /** The entry's fields as XRANGE returned them. */
  fields: Record<string, string>;
}

/** Every producer fixture, sorted by name. */
export async function loadProducerFixtures(): Promise<ProducerFixture[]> {
  const names = (await readdir(PRODUCER_FIXTURES)).filter((n) => n.endsWith('.json')).sort();
  return Promise.all(names.map(async (n) => {
    const raw = JSON.parse(await readFile(join(PRODUCER_FIXTURES, n), 'utf8')) as Omit<ProducerFixture, 'name'>;
    return { name: n.slice(0, -'.json'.length), stream: raw.stream, producer: raw.producer, fields: raw.fields };
  }));
}

/** The fixture as the flat field list Redis hands a consumer. */
export function fixtureFields(f: ProducerFixture): string[] {
  return Object.entries(f.fields).flat();
}

/** The fixture as a stream entry, for a dry run. */
export function fixtureEntry(f: ProducerFixture, id = '0-1'): StreamEntry {
  return { id, fields: fixtureFields(f) };
}
