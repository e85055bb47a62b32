// Preloaded (`node --import`) into an engine child process during `npm run mutation`'s first test
// run, when the test that starts it asks for coverage (SYNAPSE_MUTATION_COVERAGE_FILE). It writes
// `{ ack, counts }` to that file: `counts`, which mutants the child's code has reached so far (and
// how often), for the test helper to count against the test that is running
// (tests/helpers/mutation.ts). It writes
// - once at start, when the SIGUSR2 handler is in place (the helper signals only a child whose
//   file exists: before that, SIGUSR2 would kill it);
// - on SIGUSR2: the helper writes a request number to `<file>.req` and signals; the child answers
//   with that number as `ack`, so the helper knows the counts it reads include every hit made
//   before it asked (at the end of each test, at the start of the next, before a SIGKILL);
// - every 100 ms and at exit, for what no request covers (a child SIGKILLed by the test itself
//   loses at most its last 100 ms).
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

const file = process.env.SYNAPSE_MUTATION_COVERAGE_FILE;
if (file) {
  const ns = (globalThis.__stryker__ ??= {});
  let ack = 0;
  const write = () => {
    writeFileSync(`${file}.tmp`, JSON.stringify({ ack, counts: ns.mutantCoverage?.static ?? {} }));
    renameSync(`${file}.tmp`, file);
  };
  // Signals of one kind sent close together may arrive as one: the file holds the latest request.
  process.on('SIGUSR2', () => {
    try {
      ack = Math.max(ack, Number(readFileSync(`${file}.req`, 'utf8')) || 0);
    } catch {
      // no request file: answer with the last ack
    }
    write();
  });
  write();
  setInterval(write, 100).unref();
  process.on('exit', write);
}
