import { describe, expect, it } from 'vitest';
import { junitReport } from '../../../engine/testing/junit.ts';

describe('the JUnit report of synapse test', () => {
  it('one suite per test file, a failed case with its first line as the message and the whole failure as text', () => {
    const xml = junitReport([
      { file: `${process.cwd()}/pipelines/orders.test.yaml`, pipeline: 'orders', errors: [], cases: [
        { name: 'a placed order is confirmed', passed: true, failures: [], seconds: 0.0125 },
        { name: 'the title says shipped', passed: false, failures: ['sink publish: what reached it differs (- expected, + actual)\n-  "title": "shipped"\n+  "title": "confirmed"'], seconds: 0.002 },
      ] },
      { file: '/elsewhere/orphan.test.yaml', errors: [{ file: '/elsewhere/orphan.test.yaml', line: 1, col: 11, message: "no pipeline named 'x'" }], cases: [] },
    ]);
    expect(xml).toBe([
      '<?xml version="1.0" encoding="UTF-8"?>',
      '<testsuites name="synapse test" tests="3" failures="2" skipped="0" time="0.015">',
      '  <testsuite name="pipelines/orders.test.yaml (pipeline orders)" tests="2" failures="1" skipped="0" time="0.015">',
      '    <testcase classname="pipelines/orders.test.yaml" name="a placed order is confirmed" time="0.013"/>',
      '    <testcase classname="pipelines/orders.test.yaml" name="the title says shipped" time="0.002">',
      '      <failure message="sink publish: what reached it differs (- expected, + actual)">sink publish: what reached it differs (- expected, + actual)',
      '-  "title": "shipped"',
      '+  "title": "confirmed"</failure>',
      '    </testcase>',
      '  </testsuite>',
      '  <testsuite name="/elsewhere/orphan.test.yaml" tests="1" failures="1" skipped="0" time="0.000">',
      '    <testcase classname="/elsewhere/orphan.test.yaml" name="load" time="0.000">',
      "      <failure message=\"/elsewhere/orphan.test.yaml:1:11 no pipeline named 'x'\">/elsewhere/orphan.test.yaml:1:11 no pipeline named 'x'</failure>",
      '    </testcase>',
      '  </testsuite>',
      '</testsuites>',
      '',
    ].join('\n'));
  });

  it('a run without test files is an empty report', () => {
    expect(junitReport([])).toBe('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="synapse test" tests="0" failures="0" skipped="0" time="0.000">\n</testsuites>\n');
  });

  it('a file that could not run: its errors come first in each of its failed cases', () => {
    const xml = junitReport([{ file: '/t.test.yaml', pipeline: 'p', errors: [{ file: '/p.yaml', line: 3, col: 5, message: 'bad' }], cases: [{ name: 'c', passed: false, failures: ['not run: see the errors above'] }] }]);
    expect(xml).toContain('<testcase classname="/t.test.yaml" name="c" time="0.000">\n      <failure message="/p.yaml:3:5 bad">/p.yaml:3:5 bad\nnot run: see the errors above</failure>');
  });

  it('fuzz: a case per pipeline, skipped ones with their reason, dead-lettered ones failed', () => {
    const xml = junitReport([], {
      runs: 50, seed: 7, results: [
        { pipeline: 'ok', file: '/p/ok.yaml', schemaId: 's', generated: 50, valid: 50, failures: [], seconds: 1.5 },
        { pipeline: 'ticks', file: '/p/ticks.yaml', reason: 'a schedule source: its events are ticks' },
        { pipeline: 'bad', file: '/p/bad.yaml', schemaId: 's', generated: 50, valid: 50, failures: [{ stage: 'transform', error: 'boom', count: 3, example: { a: 1 } }] },
        { pipeline: 'none', file: '/p/none.yaml', schemaId: 's', generated: 200, valid: 0, failures: [] },
      ],
    });
    // tests 4 = 1 passed + 2 failed + 1 skipped, as the last line counts them (1 passed, 2 failed).
    expect(xml).toContain('<testsuites name="synapse test" tests="4" failures="2" skipped="1" time="1.500">');
    expect(xml).toContain('<testsuite name="fuzz (--fuzz 50 --seed 7)" tests="4" failures="2" skipped="1" time="1.500">');
    expect(xml).toContain('<testcase classname="/p/ok.yaml" name="fuzz ok" time="1.500"/>');
    expect(xml).toContain('<testcase classname="/p/ticks.yaml" name="fuzz ticks" time="0.000">\n      <skipped message="a schedule source: its events are ticks"/>');
    expect(xml).toContain('<failure message="3 of 50 valid event(s) dead-lettered by the pipeline">3 of 50 valid event(s) dead-lettered by the pipeline\n3× at transform: boom\n  smallest: {"a":1}</failure>');
    expect(xml).toContain('<failure message="none of 200 events generated from s passed the pipeline\'s own validation; the schema may be unsatisfiable">');
  });

  it('names and failures from test files and events cannot break the XML', () => {
    const hostile = 'a "quoted" <tag> & ]]> \u0000\u0008\u001b\uFFFE \uD800 tab\there\nnew line\rreturn 😀';
    const xml = junitReport([{ file: '/t"<&.test.yaml', pipeline: 'p', errors: [], cases: [{ name: hostile, passed: false, failures: [hostile] }] }]);
    const name = 'a &quot;quoted&quot; &lt;tag&gt; &amp; ]]&gt; \\u0000\\u0008\\u001b\\ufffe \\ud800 tab&#9;here&#10;new line&#13;return 😀';
    expect(xml).toContain(`<testcase classname="/t&quot;&lt;&amp;.test.yaml" name="${name}" time="0.000">`);
    expect(xml).toContain(`<failure message="a &quot;quoted&quot; &lt;tag&gt; &amp; ]]&gt; \\u0000\\u0008\\u001b\\ufffe \\ud800 tab&#9;here">a "quoted" &lt;tag&gt; &amp; ]]&gt; \\u0000\\u0008\\u001b\\ufffe \\ud800 tab\there\nnew line&#13;return 😀</failure>`);
    // Nothing XML 1.0 forbids is left.
    expect(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\uFFFE\uFFFF]/.test(xml)).toBe(false);
  });
});
