import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { requireTool, toolOnPath } from '../../helpers/promtool.ts';

/** A stand-in for the test context: skip() records its note and ends the test body, as vitest's does. */
function fakeContext(): { ctx: TestContext; skipped: string[] } {
  const skipped: string[] = [];
  const ctx = { skip: (note?: string) => {
    skipped.push(String(note));
    throw new Error('skipped');
  } } as unknown as TestContext;
  return { ctx, skipped };
}

describe('requireTool (tests/helpers/promtool.ts)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'synapse-tool-'));
    await writeFile(join(dir, 'faketool'), '#!/bin/sh\n', { mode: 0o755 });
    await writeFile(join(dir, 'notexec'), 'x', { mode: 0o644 });
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('finds an executable on PATH, and not a file that is not executable', () => {
    expect(toolOnPath('faketool', `/nonexistent:${dir}`)).toBe(join(dir, 'faketool'));
    expect(toolOnPath('notexec', dir)).toBeUndefined();
    expect(toolOnPath('faketool', '')).toBeUndefined();
  });

  it('gives the path when the tool is there', () => {
    const { ctx, skipped } = fakeContext();
    expect(requireTool(ctx, 'faketool', 'fake', { PATH: dir, SYNAPSE_CI: '1' })).toBe(join(dir, 'faketool'));
    expect(skipped).toEqual([]);
  });

  it('skips with the reason and the package when the tool is missing', () => {
    const { ctx, skipped } = fakeContext();
    expect(() => requireTool(ctx, 'promtool', 'prometheus', { PATH: dir })).toThrow('skipped');
    expect(skipped).toEqual(['promtool is not on PATH (Debian: apt-get install prometheus)']);
  });

  it('fails instead under SYNAPSE_CI=1, where CI installs the tool', () => {
    const { ctx, skipped } = fakeContext();
    expect(() => requireTool(ctx, 'promtool', 'prometheus', { PATH: dir, SYNAPSE_CI: '1' })).toThrow(/promtool is not on PATH .*SYNAPSE_CI=1/);
    expect(skipped).toEqual([]);
  });
});
