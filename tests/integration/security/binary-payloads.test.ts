import { describe, expect, it } from 'vitest';
import { key, payloads, ping, pipelineYaml, useEngines } from '../../helpers/engine.ts';
import { waitFor } from '../../helpers/redis.ts';

// Issue #10, item 14: payloads that are not UTF-8 were decoded with U+FFFD in place of their bytes
// and went on through the pipeline; the DLQ stored binary payloads lossily. Now they fail at
// decode, and the DLQ keeps their original bytes.

const { start } = useEngines();

/** `{"event":"ping","data":{"n":1,"tag":"<0xff 0xfe>"}}`: valid JSON once decoded lossily. */
const BAD = Buffer.concat([Buffer.from('{"event":"ping","data":{"n":1,"keep":true,"tag":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}}')]);

describe('payloads that are not UTF-8', () => {
  it('codec json: DLQ at decode, the original bytes stored and listed as base64; redrive skips them', async () => {
    const name = key('p');
    const stream = key('in');
    const out = key('out');
    const dlq = `${stream}:dlq`;
    const f = await start({ pipelines: { [name]: pipelineYaml({ name, stream, out, transform: '{ "n": data.n, "tag": data.tag }' }) } });
    const id = await f.client.xadd(stream, '*', 'payload', BAD);
    await f.client.xadd(stream, '*', 'payload', JSON.stringify(ping(2, { tag: 'é ✓ 😀' })));
    await waitFor(async () => (await f.client.xlen(out)) === 1 && (await f.client.xlen(dlq)) === 1, 'one output and one DLQ entry');

    expect(await payloads(f.client, out)).toEqual([{ n: 2, tag: 'é ✓ 😀' }]);
    const fields = (await f.client.xrangeBuffer(dlq, '-', '+'))[0]![1];
    const stored: Record<string, Buffer> = {};
    for (let i = 0; i < fields.length; i += 2) stored[fields[i]!.toString()] = fields[i + 1]!;
    expect(stored.payload!.equals(BAD)).toBe(true);
    expect(stored.stage!.toString()).toBe('decode');
    expect(stored.source_id!.toString()).toBe(id);
    expect(stored.error!.toString()).toContain('not valid UTF-8');

    const listed = JSON.parse((await f.inject({ method: 'GET', url: `/dlq/${dlq}` })).body).entries[0];
    expect(listed).toMatchObject({ payload_encoding: 'base64', payload: BAD.toString('base64'), stage: 'decode' });
    const redrive = JSON.parse((await f.inject({ method: 'POST', url: `/dlq/${dlq}/redrive`, payload: {} })).body);
    expect(redrive.skipped).toEqual([{ dlqId: listed.id, reason: expect.stringContaining('not UTF-8') }]);
  });

  it('a payload holding U+FFFD itself (valid UTF-8) goes through like any other', async () => {
    const name = key('p');
    const stream = key('in');
    const out = key('out');
    const dlq = `${stream}:dlq`;
    const f = await start({ pipelines: { [name]: pipelineYaml({ name, stream, out, transform: '{ "n": data.n, "tag": data.tag }' }) } });
    await f.client.xadd(stream, '*', 'payload', JSON.stringify(ping(1, { tag: 'a\uFFFDb' })));
    await f.client.xadd(stream, '*', 'payload', BAD);
    await f.client.xadd(stream, '*', 'payload', JSON.stringify(ping(3, { tag: 'c' })));
    await waitFor(async () => (await f.client.xlen(out)) === 2 && (await f.client.xlen(dlq)) === 1, 'two outputs and one DLQ entry');
    expect(await payloads(f.client, out)).toEqual([{ n: 1, tag: 'a\uFFFDb' }, { n: 3, tag: 'c' }]);
  });

  it('codec fields: a value that is not UTF-8 sends the entry to the DLQ at decode', async () => {
    const name = key('p');
    const stream = key('in');
    const out = key('out');
    const dlq = `${stream}:dlq`;
    const yaml = pipelineYaml({ name, stream, out, validate: false, filter: 'true', transform: '{ "tag": tag }' }).replace('  start:', '  codec: fields\n  start:');
    const f = await start({ pipelines: { [name]: yaml } });
    await f.client.xadd(stream, '*', 'event', 'ping', 'tag', Buffer.from([0x61, 0xff]));
    await f.client.xadd(stream, '*', 'event', 'ping', 'tag', 'fine');
    await waitFor(async () => (await f.client.xlen(out)) === 1 && (await f.client.xlen(dlq)) === 1, 'one output and one DLQ entry');
    const listed = JSON.parse((await f.inject({ method: 'GET', url: `/dlq/${dlq}` })).body).entries[0];
    expect(listed).toMatchObject({ stage: 'decode', error: expect.stringContaining("field 'tag' is not valid UTF-8") });
    expect(JSON.parse(listed.payload)).toEqual({ event: 'ping', tag: `\u0000base64:${Buffer.from([0x61, 0xff]).toString('base64')}` });
  });

  it('a dry-run of the stream decodes strictly too, and a replay into another stream copies the bytes exactly', async () => {
    const name = key('p');
    const stream = key('in');
    const copy = key('copy');
    const f = await start({ pipelines: { [name]: pipelineYaml({ name, stream, out: key('out') }) } });
    await f.inject({ method: 'POST', url: `/pipelines/${name}/pause` });
    await f.client.xadd(stream, '*', 'payload', BAD);
    const dry = JSON.parse((await f.inject({ method: 'POST', url: `/pipelines/${name}/dry-run`, payload: { count: 10 } })).body);
    expect(dry.results).toEqual([expect.objectContaining({ outcome: 'dlq', stage: 'decode', error: expect.stringContaining('not valid UTF-8') })]);

    const res = await f.inject({ method: 'POST', url: '/replay', payload: { stream, from: '-', to: '+', toStream: copy } });
    expect(res.statusCode, res.body).toBe(202);
    await waitFor(async () => (await f.client.xlen(copy)) === 1, 'the copy');
    const copied = (await f.client.xrangeBuffer(copy, '-', '+'))[0]![1];
    expect(copied[1]!.equals(BAD)).toBe(true);
  });
});
