import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderCatalog } from '../../scripts/catalog.ts';

describe('docs/catalog.md', () => {
  it('is what `npm run catalog` generates from schemas/ and pipelines/ (run it after changing them)', async () => {
    const committed = await readFile(resolve(import.meta.dirname, '../../docs/catalog.md'), 'utf8');
    expect(committed).toBe(await renderCatalog());
  });
});
