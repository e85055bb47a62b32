import { resolve } from 'node:path';
import { expandTestFiles, formatTestResults, runTestFiles } from '../../testing/run-test-file.ts';
import { loadContext, pipelinesDir, type CommonOptions } from '../context.ts';

/** `synapse test [PATH...]`: runs pipeline test files; last line `N passed, N failed`. */
export async function testCommand(paths: string[], opts: CommonOptions): Promise<number> {
  const targets = paths.length ? paths.map((p) => resolve(p)) : [pipelinesDir()];
  const files = await expandTestFiles(targets);
  if (files.length === 0) {
    process.stdout.write(`no test files (*.test.yaml) in ${targets.join(', ')}\n0 passed, 0 failed\n`);
    return 1;
  }
  const ctx = await loadContext(opts);
  const results = await runTestFiles(files, ctx);
  const { text, passed, failed } = formatTestResults(results);
  process.stdout.write(`${text}\n\n${passed} passed, ${failed} failed\n`);
  return failed > 0 ? 1 : 0;
}
