// Preloaded (`node --import`) into an engine child process during `npm run mutation`'s first test
// run, when the test that starts it asks for coverage (SYNAPSE_MUTATION_COVERAGE_FILE): every
// 100 ms and at exit it writes which mutants the child's code has reached, for the test helper to
// count against the test that is running (tests/helpers/mutation.ts). A SIGKILLed child loses at
// most its last 100 ms.
import { renameSync, writeFileSync } from 'node:fs';

const file = process.env.SYNAPSE_MUTATION_COVERAGE_FILE;
if (file) {
  const ns = (globalThis.__stryker__ ??= {});
  const write = () => {
    if (!ns.mutantCoverage) return;
    writeFileSync(`${file}.tmp`, JSON.stringify(ns.mutantCoverage.static ?? {}));
    renameSync(`${file}.tmp`, file);
  };
  setInterval(write, 100).unref();
  process.on('exit', write);
}
