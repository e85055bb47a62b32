import type { FuzzSkip } from '../check/fuzz-command.ts';
import type { FuzzResult } from '../check/fuzz.ts';
import { displayPath, formatDiagnostic } from '../errors.ts';
import type { TestFileResult } from './run-test-file.ts';

/**
 * `synapse test --junit FILE`: the run as JUnit XML, the report CI servers (GitLab, Jenkins,
 * GitHub test reporters) read. One `<testsuite>` per test file, its cases as `<testcase>`s (the
 * errors of a file that could not run fail each of them; with no case, one named `load`), and
 * with `--fuzz` one more suite,
 * `fuzz`, with a case per pipeline (`<skipped>` for those it leaves out). `failures` is the
 * failed count of the command's last line; `tests` less `failures` and `skipped` its passed count.
 * Times are in seconds.
 */
export function junitReport(results: TestFileResult[], fuzz?: { results: (FuzzResult | FuzzSkip)[]; runs: number; seed: number }): string {
  const suites: Suite[] = results.map((r) => {
    // What stopped the file from running comes first in each of its cases' failures: a report
    // is read on its own, without the errors the command printed above them.
    const errors = r.errors.map(formatDiagnostic);
    // The file, not the pipeline: two test files of one pipeline may name a case alike.
    const classname = displayPath(r.file);
    return {
      name: `${displayPath(r.file)}${r.pipeline ? ` (pipeline ${r.pipeline})` : ''}`,
      cases: r.cases.length === 0 && errors.length
        ? [{ name: 'load', classname, failure: errors.join('\n'), seconds: 0 }]
        : r.cases.map((c) => ({ name: c.name, classname, failure: c.passed ? undefined : [...errors, ...c.failures].join('\n'), seconds: c.seconds ?? 0 })),
    };
  });
  if (fuzz) suites.push({ name: `fuzz (--fuzz ${fuzz.runs} --seed ${fuzz.seed})`, cases: fuzz.results.map(fuzzCase) });
  const count = (s: Suite[], f: (c: Case) => boolean) => s.reduce((n, suite) => n + suite.cases.filter(f).length, 0);
  const seconds = (cases: Case[]) => cases.reduce((t, c) => t + c.seconds, 0).toFixed(3);
  const all = suites.flatMap((s) => s.cases);
  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="synapse test" tests="${all.length}" failures="${count(suites, (c) => c.failure !== undefined)}" skipped="${count(suites, (c) => c.skipped !== undefined)}" time="${seconds(all)}">`,
  ];
  for (const s of suites) {
    const failures = s.cases.filter((c) => c.failure !== undefined).length;
    const skipped = s.cases.filter((c) => c.skipped !== undefined).length;
    out.push(`  <testsuite name="${attr(s.name)}" tests="${s.cases.length}" failures="${failures}" skipped="${skipped}" time="${seconds(s.cases)}">`);
    for (const c of s.cases) {
      const open = `    <testcase classname="${attr(c.classname)}" name="${attr(c.name)}" time="${c.seconds.toFixed(3)}"`;
      if (c.failure !== undefined) {
        out.push(`${open}>`, `      <failure message="${attr(c.failure.split('\n')[0]!)}">${text(c.failure)}</failure>`, '    </testcase>');
      } else if (c.skipped !== undefined) {
        out.push(`${open}>`, `      <skipped message="${attr(c.skipped)}"/>`, '    </testcase>');
      } else out.push(`${open}/>`);
    }
    out.push('  </testsuite>');
  }
  out.push('</testsuites>', '');
  return out.join('\n');
}

interface Case {
  name: string;
  classname: string;
  seconds: number;
  failure?: string;
  skipped?: string;
}
interface Suite {
  name: string;
  cases: Case[];
}

/** A fuzzed pipeline passes when no valid event was dead-lettered, as `synapse test --fuzz` counts it. */
function fuzzCase(r: FuzzResult | FuzzSkip): Case {
  const base = { name: `fuzz ${r.pipeline}`, classname: displayPath(r.file), seconds: 'reason' in r ? 0 : r.seconds ?? 0 };
  if ('reason' in r) return { ...base, skipped: r.reason };
  if (r.valid === 0) return { ...base, failure: `none of ${r.generated} events generated from ${r.schemaId} passed the pipeline's own validation; the schema may be unsatisfiable` };
  if (r.failures.length === 0) return base;
  const dead = r.failures.reduce((n, f) => n + f.count, 0);
  return {
    ...base,
    failure: [
      `${dead} of ${r.valid} valid event(s) dead-lettered by the pipeline`,
      ...r.failures.map((f) => `${f.count}× at ${f.stage}${f.sink ? ` (sink ${f.sink})` : ''}: ${f.error}\n  smallest: ${JSON.stringify(f.example)}`),
    ].join('\n'),
  };
}

/**
 * Text as XML 1.0 character data. Names, diffs and errors come from test files and events: `<`,
 * `&` and `>` are escaped, and characters XML 1.0 cannot hold at all (control characters other
 * than tab and newlines, lone surrogates, U+FFFE/U+FFFF) become `\uXXXX`, so the report always parses.
 */
function text(value: string): string {
  return value
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    // A raw CR would be read as a line end (XML normalises CR LF and CR to LF).
    .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#13;');
}

/** An attribute value: also its quotes, and newlines and tabs, which an attribute would fold into spaces. */
function attr(value: string): string {
  return text(value).replace(/"/g, '&quot;').replace(/\n/g, '&#10;').replace(/\t/g, '&#9;');
}
