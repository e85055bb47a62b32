import { describe, expect, it } from 'vitest';
import { PING_ID, key, ping, pipelineYaml, publish, useEngines } from '../../helpers/engine.ts';
import { startHttpRecorder } from '../../helpers/http-recorder.ts';
import { waitFor } from '../../helpers/redis.ts';

const { start } = useEngines();

const COMMON_ID = 'https://synapse.test/admin/common.json';

/** `common.json` ($defs.n) and a ping schema whose data.n refers to it. */
function schemasWithRef(nMinimum?: number) {
  return {
    'common.json': { $schema: 'https://json-schema.org/draft/2020-12/schema', $id: COMMON_ID, $defs: { n: { type: 'integer', ...(nMinimum === undefined ? {} : { minimum: nMinimum }) } } },
    'ping.json': {
      $schema: 'https://json-schema.org/draft/2020-12/schema', $id: PING_ID, type: 'object', required: ['event', 'data'],
      properties: { event: { const: 'ping' }, source: { type: 'string' }, timestamp: { type: 'string' }, data: { type: 'object', required: ['n'], properties: { n: { $ref: 'common.json#/$defs/n' }, keep: { type: 'boolean' } } } },
    },
    'pong.json': { $schema: 'https://json-schema.org/draft/2020-12/schema', $id: 'https://synapse.test/admin/pong.json', type: 'object', properties: { event: { const: 'pong' } } },
  };
}

describe('reload scope', () => {
  it('a schema change reloads only the pipelines whose validation reaches it through $ref; an unrelated schema reloads none', async () => {
    const a = { name: key('a'), stream: key('in'), out: key('out') };
    const b = { name: key('b'), stream: key('in'), out: key('out') };
    const c = { name: key('c'), stream: key('in'), out: key('out') };
    const bYaml = pipelineYaml(b).replace(PING_ID, 'https://synapse.test/admin/pong.json');
    const f = await start({ schemas: schemasWithRef(), pipelines: { [a.name]: pipelineYaml(a), [b.name]: bYaml, [c.name]: pipelineYaml({ ...c, validate: false }) } });
    const generations = () => [a, b, c].map((p) => f.engine.handles.get(p.name)!.generation);

    await f.writeSchema('unrelated.json', { $id: 'https://synapse.test/admin/unrelated.json', type: 'string' });
    expect(await f.engine.reloadSchemas({ cause: 'test' })).toEqual([]);
    expect(generations()).toEqual([1, 1, 1]);

    // common.json is reached from ping.json, which only `a` validates with.
    await f.writeSchema('common.json', schemasWithRef(0)['common.json']);
    const results = await f.engine.reloadSchemas({ cause: 'test' });
    expect(results).toEqual([expect.objectContaining({ ok: true, change: 'updated', name: a.name, generation: 2 })]);
    expect(generations()).toEqual([2, 1, 1]);
    // And `a` validates with the new rule.
    await publish(f.client, a.stream, [ping(-1)]);
    await waitFor(async () => (await f.client.xlen(`${a.stream}:dlq`)) === 1, 'n = -1 dead-lettered by the new rule');
  });

  it('reloads of different pipelines do not wait for each other: one waiting for its batch in hand does not hold up another', async () => {
    const hook = await startHttpRecorder(() => 'hang');
    try {
      const slow = { name: key('slow'), stream: key('in'), out: key('out') };
      const fast = { name: key('fast'), stream: key('in'), out: key('out') };
      const slowYaml = pipelineYaml(slow).replace(/sink:\n  type: publish\n  with: \{ stream: [^}]+\}/, `sink:\n  type: http\n  with: { url: "${hook.url}/hook", timeout_ms: 60000 }`);
      const f = await start({ pipelines: { [slow.name]: slowYaml, [fast.name]: pipelineYaml(fast) } });
      await publish(f.client, slow.stream, [ping(1)]);
      await waitFor(() => hook.requests.length === 1, 'the slow pipeline to be in its batch (the hook holds its request)');

      // The slow pipeline's new version waits for the batch in hand to finish ...
      let slowDone = false;
      const slowReload = f.engine.reloadFile(f.engine.handles.get(slow.name)!.pipeline.file, { force: true, cause: 'test' }).then((r) => (slowDone = true, r));
      // ... while the other's goes through.
      const fastResult = await f.engine.reloadFile(f.engine.handles.get(fast.name)!.pipeline.file, { force: true, cause: 'test' });
      expect(fastResult).toMatchObject({ ok: true, change: 'updated', generation: 2 });
      expect(slowDone).toBe(false);
      expect(f.engine.handles.get(slow.name)!.generation).toBe(1);

      hook.answer(() => ({ status: 200 }));
      await hook.close(); // the held request fails; the batch ends (retry, then DLQ) and the swap happens
      expect(await slowReload).toMatchObject({ ok: true, change: 'updated', generation: 2 });
    } finally {
      await hook.close();
    }
  });
});
