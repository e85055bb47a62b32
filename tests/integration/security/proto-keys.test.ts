import { describe, expect, it } from 'vitest';
import { checkEvent } from '../../../engine/config/check-event.ts';
import { SchemaRegistry } from '../../../engine/config/schema-registry.ts';
import { decodeFields, decodeJson } from '../../../engine/runner/codec.ts';
import { entries, key, payloads, ping, PING_ID, publish, useEngines } from '../../helpers/engine.ts';
import { waitFor } from '../../helpers/redis.ts';

// Issue #10, item 6: a `__proto__` key in an event must not turn into a prototype somewhere down
// the line (slipping past schema and filter, or silently vanishing from pass-through pipelines).
// Every decoder refuses it: the entry goes to the DLQ at stage decode, its bytes kept.

const { start } = useEngines();

function passThrough(o: { name: string; stream: string; out: string; codec?: 'json' | 'fields'; validate?: boolean; filter?: string; transform?: string }): string {
  return [
    `name: ${o.name}`, 'source:', `  stream: ${o.stream}`, '  start: "0"', '  block_ms: 100', `  codec: ${o.codec ?? 'json'}`,
    ...(o.validate ? ['validate:', `  schema: ${PING_ID}`] : []),
    ...(o.filter ? [`filter: ${JSON.stringify(o.filter)}`] : []),
    ...(o.transform ? [`transform: ${JSON.stringify(o.transform)}`] : []),
    'sink:', '  type: publish', `  with: { stream: ${o.out} }`, '',
  ].join('\n');
}

const ATTACKS = [
  ['at the top', '{"event":"ping","data":{"n":1},"__proto__":{"admin":true}}'],
  ['nested', '{"event":"ping","data":{"n":1,"__proto__":{"userId":"../admin"}}}'],
  ['inside an array', '{"event":"ping","data":{"n":1,"list":[{"__proto__":{"x":1}}]}}'],
  ['written with escapes', '{"event":"ping","data":{"n":1,"\\u005f_pro\\u0074o__":{"userId":"../admin"}}}'],
] as const;

describe('__proto__ keys in events', () => {
  it.each(ATTACKS)('codec json, %s: to the DLQ at decode, payload kept byte for byte', async (_title, payload) => {
    const name = key('p');
    const stream = key('in');
    const out = key('out');
    const f = await start({ pipelines: { [name]: passThrough({ name, stream, out }) } });
    const [id] = await publish(f.client, stream, [payload, ping(2)]);
    await waitFor(async () => (await f.client.xlen(out)) === 1 && (await f.client.xlen(`${stream}:dlq`)) === 1, 'one output and one DLQ entry');
    const [dlq] = await entries(f.client, `${stream}:dlq`);
    expect(dlq!.fields).toMatchObject({ stage: 'decode', source_id: id, payload, error: expect.stringContaining("'__proto__' key") });
    expect(await payloads(f.client, out)).toEqual([ping(2)]);
  });

  it('the attack of the issue: a schema-required field supplied through __proto__ reaches no sink', async () => {
    const name = key('p');
    const stream = key('in');
    const out = key('out');
    const f = await start({ pipelines: { [name]: passThrough({ name, stream, out, validate: true, filter: 'data.n = 1', transform: '{ "inbox": "inbox:" & data.tag }' }) } });
    await publish(f.client, stream, ['{"event":"ping","data":{"__proto__":{"n":1,"tag":"../admin"}}}']);
    await waitFor(async () => (await f.client.xlen(`${stream}:dlq`)) === 1, 'the DLQ entry');
    expect((await entries(f.client, `${stream}:dlq`))[0]!.fields.stage).toBe('decode');
    expect(await f.client.xlen(out)).toBe(0);
  });

  it('codec fields: a __proto__ field, or one inside a JSON value, goes to the DLQ at decode', async () => {
    const name = key('p');
    const stream = key('in');
    const out = key('out');
    const f = await start({ pipelines: { [name]: passThrough({ name, stream, out, codec: 'fields' }) } });
    await f.client.xadd(stream, '*', 'event', 'ping', '__proto__', '{"admin":true}');
    await f.client.xadd(stream, '*', 'event', 'ping', 'data', '{"__proto__":{"admin":true}}');
    await f.client.xadd(stream, '*', 'event', 'ping', 'data', '{"n":1}', 'note', 'the text __proto__ in a value is fine');
    await waitFor(async () => (await f.client.xlen(out)) === 1 && (await f.client.xlen(`${stream}:dlq`)) === 2, 'one output and two DLQ entries');
    expect((await entries(f.client, `${stream}:dlq`)).map((e) => e.fields.stage)).toEqual(['decode', 'decode']);
    expect(await payloads(f.client, out)).toEqual([{ event: 'ping', data: { n: 1 }, note: 'the text __proto__ in a value is fine' }]);
  });

  it('decoders: __proto__ as a string value or a longer key is an ordinary event; deep nesting is no stack overflow', () => {
    const ok = decodeJson({ id: '1-0', fields: ['payload', '{"event":"__proto__","x__proto__":1,"\\u00e9":2}'] }, 1 << 20) as Record<string, unknown>;
    expect(ok).toEqual({ event: '__proto__', x__proto__: 1, 'é': 2 });
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    expect(() => decodeJson({ id: '1-0', fields: ['payload', `{"a":${deep},"__proto__":1}`] }, 1 << 20)).toThrow(/__proto__/);
    expect(() => decodeFields({ id: '1-0', fields: ['__proto__', 'x'] }, 1 << 20)).toThrow(/__proto__/);
    expect(Object.getPrototypeOf(decodeFields({ id: '1-0', fields: ['a', '{"b":1}'] }, 1 << 20))).toBe(Object.prototype);
  });

  it('publishing (CLI, Publisher) refuses an event with a __proto__ key before writing it', () => {
    const why = checkEvent(JSON.parse('{"event":"ping","data":{"list":[{"__proto__":{"x":1}}]}}'), new SchemaRegistry());
    expect(why).toBe("the event has a '__proto__' key (at data.list[0].__proto__): the engine would send it to the DLQ");
  });

  it('POST /events and dry-run refuse a __proto__ key with 400', async () => {
    const name = key('p');
    const f = await start({ pipelines: { [name]: passThrough({ name, stream: key('in'), out: key('out') }) } });
    const body = '{"event":"ping","data":{"n":1},"__proto__":{"admin":true}}';
    const headers = { 'content-type': 'application/json' };
    const ev = await f.inject({ method: 'POST', url: `/events/${key('in')}`, headers, payload: body });
    expect(ev.statusCode, ev.body).toBe(400);
    const dry = await f.inject({ method: 'POST', url: `/pipelines/${name}/dry-run`, headers, payload: `{"events":[${body}]}` });
    expect(dry.statusCode, dry.body).toBe(400);
  });
});
