import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { copyCatalog, filesOutsideCatalog, readManifest, renderCatalog } from '../../scripts/catalog.ts';

const root = resolve(import.meta.dirname, '../..');
const made: string[] = [];
afterAll(() => Promise.all(made.map((d) => rm(d, { recursive: true, force: true }))));

describe('docs/catalog.md', () => {
  it('is what `npm run catalog` generates from the files catalog.json lists (run it after changing them)', async () => {
    const committed = await readFile(resolve(root, 'docs/catalog.md'), 'utf8');
    expect(committed).toBe(await renderCatalog());
  });

  it('a pipeline and a schema of your own change neither the catalog nor its check', async () => {
    // A checkout with a user's pipeline and schema added, as the issue had it (shop-paid).
    const checkout = await mkdtemp(join(tmpdir(), 'synapse-user-checkout-'));
    made.push(checkout);
    for (const f of ['catalog.json', 'pipelines', 'schemas']) await cp(join(root, f), join(checkout, f), { recursive: true });
    await writeFile(join(checkout, 'schemas', 'shop-paid.json'), JSON.stringify({ $id: 'https://shop.test/paid.json', type: 'object', properties: { event: { const: 'shop-paid' } } }));
    await writeFile(join(checkout, 'pipelines', 'shop-paid.yaml'), 'name: shop-paid\nsource:\n  stream: shop-events\nvalidate:\n  schema: https://shop.test/paid.json\nsink:\n  type: publish\n  with: { stream: shop-paid }\n');

    expect(await renderCatalog(checkout)).toBe(await readFile(resolve(root, 'docs/catalog.md'), 'utf8'));
    expect(await filesOutsideCatalog(checkout)).toEqual(['pipelines/shop-paid.yaml', 'schemas/shop-paid.json']);
    // What the engine's own tests run on: the catalog's files, without the user's.
    const copy = await copyCatalog(checkout);
    made.push(copy.dir);
    const manifest = await readManifest(checkout);
    expect((await readdir(copy.pipelines)).filter((f) => !f.endsWith('.test.yaml')).sort()).toEqual(manifest.pipelines.map((n) => `${n}.yaml`).sort());
    expect((await readdir(copy.schemas)).sort()).toEqual([...manifest.schemas].sort());
  });
});
