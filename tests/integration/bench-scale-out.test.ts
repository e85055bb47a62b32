import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScaleOutReport } from '../../bench/lib/scale-out.ts';
import { REPO_ROOT } from '../helpers/pipelines.ts';

/** Runs `npm run bench` (through bin/run-ts.mjs, as the npm script does) and collects its output. */
function bench(args: string[]): Promise<{ code: number | null; output: string }> {
  const env = { ...process.env };
  delete env.REDIS_URL; // the bench starts its own redis-server
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/run-ts.mjs'), 'bench/stream-throughput.ts', ...args], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (output += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (output += c));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, output })));
}

// Tiny scale-out runs: they check that the processes share the work and the checks come out
// clean, not how fast anything is (the figures are in bench/README.md).
describe('npm run bench -- --replicas / --cluster', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'synapse-bench-test-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('two replicas on one Redis drain the group with the expected outputs', async () => {
    const out = join(dir, 'replicas.json');
    const { code, output } = await bench(['--pipeline', 'task-outcomes', '--replicas', '2', '--events', '300', '--out', out]);
    expect(code, output).toBe(0);
    const report = JSON.parse(await readFile(out, 'utf8')) as ScaleOutReport;
    expect(report.meta).toMatchObject({ replicas: 2, cluster: false, streams: 1, events: 300 });
    expect(report.rounds[0]!.problems).toEqual([]);
    expect(report.rounds[0]!.engineCpuByReplica).toHaveLength(2);
    expect(report.rounds[0]!.outputs.sunk).toBe(report.meta.workload.expectedSunk);
  }, 90_000);

  it('--cluster starts a 3-master cluster and puts one stream on each master', async () => {
    const out = join(dir, 'cluster.json');
    const { code, output } = await bench(['--pipeline', 'task-outcomes', '--cluster', '--replicas', '2', '--events', '300', '--out', out]);
    expect(code, output).toBe(0);
    const report = JSON.parse(await readFile(out, 'utf8')) as ScaleOutReport;
    expect(report.meta).toMatchObject({ replicas: 2, cluster: true, streams: 3 });
    expect(new Set(report.meta.streamNodes).size).toBe(3);
    expect(report.meta.redis.masters).toBe(3);
    expect(report.rounds[0]!.problems).toEqual([]);
  }, 90_000);
});
