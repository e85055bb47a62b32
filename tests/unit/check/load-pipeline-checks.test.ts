/**
 * The schema-aware checks as loading runs them: errors reject the file at FILE:LINE:COL, hints
 * are kept as the compiled pipeline's warnings, a schema named by file path is checked against
 * too, and a file with other errors gets no schema findings on top.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compilePipelineText } from '../../../engine/config/load-pipeline.ts';
import { PipelineInvalidError } from '../../../engine/errors.ts';
import { rejection } from '../support/rejection.ts';
import { loadContext, tempDirs } from '../support/temp-dir.ts';

const dirs = tempDirs('synapse-load-checks-');
afterAll(() => dirs.cleanup());

const schema = (id: string) => JSON.stringify({
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: id,
  type: 'object',
  additionalProperties: false,
  properties: { event: { type: 'string' }, data: { type: 'object', additionalProperties: false, properties: { total: { type: 'number' }, who: { type: 'string' } } } },
});

describe('schema checks at load', () => {
  it('a field that can never exist rejects the file at its token', async () => {
    const dir = await dirs.make({ 'schemas/order.json': schema('https://synapse.test/load/order.json') });
    const ctx = await loadContext(join(dir, 'schemas'));
    const text = 'source: { stream: s }\nvalidate: { schema: https://synapse.test/load/order.json }\nfilter: |\n  data.totl > 1\nsink: { type: log }\n';
    const err = await rejection(compilePipelineText(join(dir, 'p.yaml'), text, ctx), PipelineInvalidError);
    expect(err.diagnostics).toEqual([{ file: join(dir, 'p.yaml'), line: 4, col: 8, message: "filter: field 'totl' can never exist in 'data' (it allows 'total', 'who'); did you mean 'total'?" }]);
  });

  it('hints are the compiled pipeline\'s warnings, and do not reject it', async () => {
    const dir = await dirs.make({ 'schemas/order.json': schema('https://synapse.test/load/order.json') });
    const ctx = await loadContext(join(dir, 'schemas'));
    const text = 'source: { stream: s }\nvalidate: { schema: https://synapse.test/load/order.json }\ntransform: "$uppercase(data.total)"\nsink: { type: log }\n';
    const p = await compilePipelineText(join(dir, 'p.yaml'), text, ctx);
    expect(p.warnings).toEqual([{ file: join(dir, 'p.yaml'), line: 3, col: 24, message: "transform: $uppercase needs a string, but 'data.total' is a number (a run-time error on every event that has it)" }]);
  });

  it('a schema named by file path is checked against too', async () => {
    const dir = await dirs.make({ 'schemas/.keep': '', 'pipelines/order.json': schema('https://synapse.test/load/by-path.json') });
    const ctx = await loadContext(join(dir, 'schemas'));
    const text = 'source: { stream: s }\nvalidate: { schema: ./order.json }\nsink: { type: broadcast, with: { channel: c, audience: data.whom } }\n';
    const err = await rejection(compilePipelineText(join(dir, 'pipelines/p.yaml'), text, ctx), PipelineInvalidError);
    expect(err.diagnostics.map((d) => [d.line, d.col, d.message])).toEqual([[3, 61, "sink.audience: field 'whom' can never exist in 'data' (it allows 'total', 'who'); did you mean 'who'?"]]);
  });

  it('a file with other errors gets no schema findings on top', async () => {
    const dir = await dirs.make({ 'schemas/order.json': schema('https://synapse.test/load/order.json') });
    const ctx = await loadContext(join(dir, 'schemas'));
    const text = 'source: { stream: s }\nvalidate: { schema: https://synapse.test/load/order.json }\nfilter: data.totl > 1\nsink: { type: nosuch }\n';
    const err = await rejection(compilePipelineText(join(dir, 'p.yaml'), text, ctx), PipelineInvalidError);
    expect(err.diagnostics.map((d) => d.message)).toEqual([expect.stringContaining("unknown sink type 'nosuch'")]);
  });

  it('no schema: nothing claimed about the event, but sink expressions still meet the transform\'s output', async () => {
    const dir = await dirs.make({});
    const ctx = await loadContext(join(dir, 'schemas'));
    const fine = 'source: { stream: s }\nfilter: data.anything.at.all\ntransform: \'{ "userId": data.user }\'\nsink: { type: broadcast, with: { channel: c, audience: userId } }\n';
    expect((await compilePipelineText(join(dir, 'p.yaml'), fine, ctx)).warnings).toEqual([]);
    const typo = fine.replace('audience: userId', 'audience: usrId');
    const err = await rejection(compilePipelineText(join(dir, 'p.yaml'), typo, ctx), PipelineInvalidError);
    expect(err.diagnostics.map((d) => d.message)).toEqual(["sink.audience: field 'usrId' can never exist in the transform's output (it allows 'userId'); did you mean 'userId'?"]);
  });
});
