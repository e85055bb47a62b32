import { describe, expect, it } from 'vitest';
import { type EngineFixture, entries, hasStackTrace, key, metricValue, payloads, ping, pipelineYaml, useEngines } from '../../helpers/engine.ts';
import { pino } from 'pino';
import { ReplayJobs, type ReplayJob } from '../../../engine/runtime/replay.ts';
import { heldOnXadd, waitFor } from '../../helpers/redis.ts';

const { start } = useEngines();

/** History at known times: entry i at T0 + i seconds, ping for even i, pong for odd i. */
const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const at = (i: number) => new Date(T0 + i * 1000).toISOString();

async function writeHistory(f: EngineFixture, stream: string, n = 10): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const event = i % 2 === 0 ? ping(i) : { event: 'pong', data: { i } };
    ids.push((await f.client.xadd(stream, `${T0 + i * 1000}-0`, 'payload', JSON.stringify(event))) as string);
  }
  return ids;
}

async function finished(f: EngineFixture, id: string) {
  return waitFor(async () => {
    const res = await f.inject({ method: 'GET', url: `/replay/${id}` });
    const job = JSON.parse(res.body);
    return job.status !== 'running' && job;
  }, `replay ${id} to finish`);
}

/** `n` pings at T0, T0+1 ms, … */
async function writeMany(f: EngineFixture, stream: string, n: number): Promise<void> {
  const batch = f.client.pipeline();
  for (let i = 0; i < n; i++) batch.xadd(stream, `${T0 + i}-0`, 'payload', JSON.stringify(ping(i)));
  await batch.exec();
}

describe('POST /replay and GET /replay/:id', () => {
  it('copies a time range of one event type into a stream', async () => {
    const f = await start();
    const stream = key('history');
    const target = key('target');
    const ids = await writeHistory(f, stream);

    const res = await f.inject({ method: 'POST', url: '/replay', payload: { stream, from: at(2), to: at(6), types: ['ping'], toStream: target } });
    expect(res.statusCode, res.body).toBe(202);
    const started = JSON.parse(res.body);
    expect(started).toMatchObject({ id: expect.any(String), request: { stream, toStream: target, types: ['ping'] } });

    const job = await finished(f, started.id);
    // Entries 2..6 are in range; of those 2, 4 and 6 are pings.
    expect(job).toMatchObject({ status: 'done', scanned: 5, matched: 3, written: 3, progress: 1, lastId: ids[6] });
    expect(new Date(job.finishedAt).getTime()).toBeGreaterThanOrEqual(new Date(job.startedAt).getTime());
    expect(await payloads(f.client, target)).toEqual([ping(2), ping(4), ping(6)]);
    // The history itself is untouched.
    expect((await entries(f.client, stream)).map((e) => e.id)).toEqual(ids);
  });

  it('copies every type when no types are given, with stream ids as bounds', async () => {
    const f = await start();
    const stream = key('history');
    const target = key('target');
    const ids = await writeHistory(f, stream);
    const res = await f.inject({ method: 'POST', url: '/replay', payload: { stream, from: ids[7]!, to: '+', toStream: target } });
    expect(res.statusCode, res.body).toBe(202);
    const job = await finished(f, JSON.parse(res.body).id);
    expect(job).toMatchObject({ status: 'done', scanned: 3, matched: 3, written: 3 });
    expect(await payloads(f.client, target)).toEqual([{ event: 'pong', data: { i: 7 } }, ping(8), { event: 'pong', data: { i: 9 } }]);
  });

  it('a replay into a key Redis refuses to append to fails, and the job says why', async () => {
    const f = await start();
    const stream = key('history');
    const target = key('not-a-stream');
    await writeHistory(f, stream, 3);
    await f.client.set(target, 'a string');
    const res = await f.inject({ method: 'POST', url: '/replay', payload: { stream, from: at(0), to: at(2), toStream: target } });
    expect(res.statusCode, res.body).toBe(202);
    const job = await finished(f, JSON.parse(res.body).id);
    expect(job).toMatchObject({ status: 'failed', scanned: 3, matched: 3, written: 0, error: expect.stringMatching(/^WRONGTYPE/) });
    expect(new Date(job.finishedAt).getTime()).toBeGreaterThanOrEqual(new Date(job.startedAt).getTime());
  });

  it('runs a range through a pipeline: its sinks act and its failures go to its DLQ', async () => {
    const name = key('p');
    const source = key('in');
    const out = key('out');
    const f = await start({ pipelines: { [name]: pipelineYaml({ name, stream: source, out }) } });
    const stream = key('history');
    await writeHistory(f, stream, 6);
    // One that fails the pipeline's transform, at T0 + 6 s.
    await f.client.xadd(stream, `${T0 + 6000}-0`, 'payload', JSON.stringify(ping(13)));

    const res = await f.inject({ method: 'POST', url: '/replay', payload: { stream, from: at(0), to: at(6), types: ['ping'], pipeline: name } });
    expect(res.statusCode, res.body).toBe(202);
    const job = await finished(f, JSON.parse(res.body).id);
    expect(job).toMatchObject({ status: 'done', scanned: 7, matched: 4, written: 4 });
    expect(await payloads(f.client, out)).toEqual([{ n: 0, version: 1 }, { n: 2, version: 1 }, { n: 4, version: 1 }]);
    const dlq = await entries(f.client, `${source}:dlq`);
    expect(dlq).toHaveLength(1);
    expect(dlq[0]!.fields).toMatchObject({ stage: 'transform', pipeline: name, payload: JSON.stringify(ping(13)) });
    // The pipeline's own group never saw the replayed entries.
    expect(await f.client.xlen(source)).toBe(0);
    // What the replay did is counted as the pipeline's work: metrics, counters, the last DLQ entry.
    const metrics = await f.engine.metrics.registry.metrics();
    expect(metricValue(metrics, 'synapse_events_total', { pipeline: name, outcome: 'sunk' })).toBe(3);
    expect(metricValue(metrics, 'synapse_events_total', { pipeline: name, outcome: 'dlq' })).toBe(1);
    expect(metricValue(metrics, 'synapse_dlq_total', { pipeline: name, stage: 'transform' })).toBe(1);
    const view = JSON.parse((await f.inject({ method: 'GET', url: `/pipelines/${name}` })).body);
    expect(view.counters).toMatchObject({ sunk: 3, dlq: 1 });
    expect(view.lastDlq).toMatchObject({ stage: 'transform', id: `${T0 + 6000}-0` });
  });

  it('a replay through a pipeline whose DLQ write Redis refuses fails, and says so', async () => {
    const name = key('p');
    const source = key('in');
    const f = await start({ pipelines: { [name]: pipelineYaml({ name, stream: source, out: key('out') }) } });
    const stream = key('history');
    // It fails the pipeline's transform: its place is the DLQ, which is no stream.
    await f.client.xadd(stream, `${T0}-0`, 'payload', JSON.stringify(ping(13)));
    await f.client.set(`${source}:dlq`, 'a string');
    const res = await f.inject({ method: 'POST', url: '/replay', payload: { stream, from: at(0), to: at(0), pipeline: name } });
    expect(res.statusCode, res.body).toBe(202);
    const job = await finished(f, JSON.parse(res.body).id);
    expect(job).toMatchObject({ status: 'failed', scanned: 1, matched: 1, error: expect.stringMatching(/^Redis refused 1 DLQ write\(s\): WRONGTYPE/) });
    expect(await f.client.get(`${source}:dlq`)).toBe('a string');
  });

  it('422 for a bad request, 404 for an unknown replay, 400 for a malformed one', async () => {
    const f = await start();
    const stream = key('history');
    const bad: Record<string, unknown>[] = [
      { stream, from: 'whenever', to: '+', toStream: key() },
      { stream, from: '-', to: '+' },
      { stream, from: '-', to: '+', toStream: key(), pipeline: key() },
      { stream, from: '-', to: '+', pipeline: key('nope') },
      { stream, from: '-', to: '+', toStream: stream },
    ];
    for (const payload of bad) {
      const res = await f.inject({ method: 'POST', url: '/replay', payload });
      expect(res.statusCode, JSON.stringify(payload)).toBe(422);
      expect(JSON.parse(res.body).error).toBe('replay_invalid');
      expect(hasStackTrace(res.body)).toBe(false);
    }
    const missing = await f.inject({ method: 'GET', url: `/replay/${key()}` });
    expect(missing.statusCode).toBe(404);
    expect(JSON.parse(missing.body).error).toBe('not_found');
    const malformed = await f.inject({ method: 'POST', url: '/replay', payload: { stream } });
    expect(malformed.statusCode).toBe(400);
    expect(hasStackTrace(malformed.body)).toBe(false);
  });

  it('DELETE /replay/:id stops a running replay after the chunk in hand; the job says cancelled', async () => {
    const f = await start();
    const stream = key('history');
    const target = key('target');
    await writeMany(f, stream, 1500); // three chunks of 500
    // Writes held: the replay reads its first chunk, then waits on its copy.
    await f.client.call('CLIENT', 'PAUSE', '20000', 'WRITE');
    let job: Record<string, unknown>;
    try {
      const res = await f.inject({ method: 'POST', url: '/replay', payload: { stream, from: '-', to: '+', toStream: target } });
      expect(res.statusCode, res.body).toBe(202);
      job = JSON.parse(res.body);
      await heldOnXadd(f.client, 'a copy held by the paused writes');
      const cancel = await f.inject({ method: 'DELETE', url: `/replay/${job.id}` });
      expect(cancel.statusCode, cancel.body).toBe(202);
      expect(JSON.parse(cancel.body)).toMatchObject({ id: job.id, status: 'running', scanned: 500, written: 0 });
    } finally {
      await f.client.call('CLIENT', 'UNPAUSE');
    }
    // The chunk in hand is copied whole; nothing after it.
    const done = await finished(f, job.id as string);
    // Its progress stays where it stopped: a cancelled replay is not shown as complete.
    expect(done).toMatchObject({ status: 'cancelled', scanned: 500, matched: 500, written: 500, lastId: `${T0 + 499}-0`, progress: 499 / 1499 });
    expect(await f.client.xlen(target)).toBe(500);
    expect(done.finishedAt).toEqual(expect.any(String));
    // A finished replay cannot be cancelled; an unknown one is not found.
    const again = await f.inject({ method: 'DELETE', url: `/replay/${job.id}` });
    expect(again.statusCode).toBe(409);
    expect(JSON.parse(again.body)).toMatchObject({ error: 'replay_finished', message: `replay '${job.id}' has finished (cancelled)` });
    const unknown = await f.inject({ method: 'DELETE', url: `/replay/${key()}` });
    expect(unknown.statusCode).toBe(404);
    expect(JSON.parse(unknown.body).error).toBe('not_found');
  });

  it('at most 8 replays run at once: the next gets 429 until one has stopped', async () => {
    const f = await start();
    const stream = key('history');
    await writeMany(f, stream, 10);
    await f.client.call('CLIENT', 'PAUSE', '20000', 'WRITE');
    const ids: string[] = [];
    try {
      for (let i = 0; i < 8; i++) {
        const res = await f.inject({ method: 'POST', url: '/replay', payload: { stream, from: '-', to: '+', toStream: key('t') } });
        expect(res.statusCode, res.body).toBe(202);
        ids.push(JSON.parse(res.body).id);
      }
      const busy = await f.inject({ method: 'POST', url: '/replay', payload: { stream, from: '-', to: '+', toStream: key('t') } });
      expect(busy.statusCode).toBe(429);
      expect(JSON.parse(busy.body)).toMatchObject({ error: 'replay_busy', message: expect.stringContaining('DELETE /replay/:id') });
      for (const id of ids) expect((await f.inject({ method: 'DELETE', url: `/replay/${id}` })).statusCode).toBe(202);
    } finally {
      await f.client.call('CLIENT', 'UNPAUSE');
    }
    for (const id of ids) await finished(f, id);
    const again = await f.inject({ method: 'POST', url: '/replay', payload: { stream, from: '-', to: '+', toStream: key('t') } });
    expect(again.statusCode, again.body).toBe(202);
  });

  it('a cancel before the first chunk copies nothing; one after the last chunk leaves the replay done; each end is logged', async () => {
    const f = await start();
    const stream = key('history');
    await writeMany(f, stream, 600);
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const jobs = new ReplayJobs(() => f.engine.connection, () => undefined, logger);
    const ended = (job: ReplayJob) => waitFor(() => job.status !== 'running' && job, 'the replay to end');

    // Before the first chunk: cancelled at once, nothing read, nothing written.
    const early = jobs.start({ stream, from: '-', to: '+', toStream: key('t1') });
    expect(jobs.cancel(early.id)).toBe(early);
    expect(await ended(early)).toMatchObject({ status: 'cancelled', scanned: 0, written: 0 });
    expect(await f.client.exists(early.request.toStream!)).toBe(0);

    // After the last chunk (as its progress says so): the replay has nothing left, and is done.
    let late: ReplayJob | undefined;
    late = jobs.start({ stream, from: '-', to: '+', toStream: key('t2') }, (j) => {
      if (j.scanned === 600 && j.status === 'running') jobs.cancel(late!.id);
    });
    expect(await ended(late)).toMatchObject({ status: 'done', scanned: 600, written: 600 });
    expect(jobs.cancel(key())).toBeUndefined();
    expect(jobs.running()).toBe(0);

    // A replay that fails is logged as failed, with why, and not as done.
    const target = key('string');
    await f.client.set(target, 'x');
    const failing = jobs.start({ stream, from: '-', to: '+', toStream: target });
    expect(await ended(failing)).toMatchObject({ status: 'failed', error: expect.stringMatching(/^WRONGTYPE/) });
    expect(lines.map((l) => [l.msg, l.replay, l.status, l.written])).toEqual([
      ['replay started', early.id, undefined, undefined],
      ['replay cancelled', early.id, 'cancelled', 0],
      ['replay started', late.id, undefined, undefined],
      ['replay done', late.id, 'done', 600],
      ['replay started', failing.id, undefined, undefined],
      ['replay failed', failing.id, undefined, undefined],
    ]);
    expect(lines.at(-1)).toMatchObject({ level: 50, replay: failing.id, err: expect.stringMatching(/^WRONGTYPE/) });
    expect(lines[0]).toMatchObject({ stream, from: '-', to: '+', toStream: early.request.toStream });
  });

  it('keeps the last 100 finished replays: an older one is forgotten, and a request cannot hold megabytes', async () => {
    const f = await start();
    const stream = key('missing');
    const ids: string[] = [];
    for (let i = 0; i < 101; i++) {
      const res = await f.inject({ method: 'POST', url: '/replay', payload: { stream, from: '-', to: '+', toStream: key('t') } });
      expect(res.statusCode, res.body).toBe(202);
      ids.push(JSON.parse(res.body).id);
      await finished(f, ids.at(-1)!);
    }
    expect((await f.inject({ method: 'GET', url: `/replay/${ids[0]}` })).statusCode).toBe(404);
    expect((await f.inject({ method: 'GET', url: `/replay/${ids[1]}` })).statusCode).toBe(200);
    expect((await f.inject({ method: 'GET', url: `/replay/${ids[100]}` })).statusCode).toBe(200);
    // A job keeps its request: event types are few and short.
    const many = await f.inject({ method: 'POST', url: '/replay', payload: { stream, from: '-', to: '+', toStream: key('t'), types: Array.from({ length: 1001 }, (_, i) => `t${i}`) } });
    expect(many.statusCode).toBe(400);
    const long = await f.inject({ method: 'POST', url: '/replay', payload: { stream, from: '-', to: '+', toStream: key('t'), types: ['x'.repeat(257)] } });
    expect(long.statusCode).toBe(400);
    expect(hasStackTrace(long.body)).toBe(false);
  });

  it('progress is the share of the range\'s time span done, chunk by chunk', async () => {
    const f = await start();
    const stream = key('history');
    const target = key('target');
    // 1000 entries over 1000 ms, then one at +2000 ms: after the first chunk of 500, a quarter of the span.
    const batch = f.client.pipeline();
    for (let i = 0; i < 1000; i++) batch.xadd(stream, `${T0 + i}-0`, 'payload', JSON.stringify(ping(i)));
    batch.xadd(stream, `${T0 + 1999}-0`, 'payload', JSON.stringify(ping(1999)));
    await batch.exec();
    const seen: number[] = [];
    const jobs = new ReplayJobs(() => f.engine.connection, () => undefined, f.engine.logger);
    await new Promise<void>((resolve) => {
      jobs.start({ stream, from: '-', to: '+', toStream: target }, (j) => {
        seen.push(j.progress);
        if (j.status !== 'running') resolve();
      });
    });
    // Chunk 1 ends at T0+499 of a span T0..T0+1999; chunk 2 at T0+999; chunk 3 at the end; then done.
    expect(seen).toEqual([499 / 1999, 999 / 1999, 1, 1]);
    expect(await f.client.xlen(target)).toBe(1001);

    // A range of one entry (a span of no time) is done in one step; an empty one at once.
    const one: number[] = [];
    const single = jobs.start({ stream, from: `${T0 + 1999}-0`, to: '+', toStream: key('t1') }, (j) => void one.push(j.progress));
    await waitFor(() => single.status !== 'running', 'the one-entry replay');
    expect(single).toMatchObject({ status: 'done', scanned: 1, written: 1 });
    expect(one).toEqual([1, 1]);
    const none = jobs.start({ stream: key('missing'), from: '-', to: '+', toStream: key('t2') });
    await waitFor(() => none.status !== 'running', 'the empty replay');
    expect(none).toMatchObject({ status: 'done', scanned: 0, written: 0, progress: 1 });
  });
});
