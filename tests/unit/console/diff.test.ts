import { describe, expect, it } from 'vitest';
import { diffLines } from '../../../console/src/diff.ts';

// The console's line diff (dry-run comparison, save conflict) on hostile outputs: a dry-run
// answers up to 1000 results, each diffed in the page; it must stay quick.
describe('diffLines', () => {
  it('diffs as before: kept, removed and added lines in order', () => {
    expect(diffLines('a\nb\nc', 'a\nx\nc')).toEqual([{ op: ' ', text: 'a' }, { op: '-', text: 'b' }, { op: '+', text: 'x' }, { op: ' ', text: 'c' }]);
    expect(diffLines('', 'a')).toEqual([{ op: '-', text: '' }, { op: '+', text: 'a' }]);
    expect(diffLines('a\nb', 'a\nb')).toEqual([{ op: ' ', text: 'a' }, { op: ' ', text: 'b' }]);
  });

  it('hundreds of long outputs that differ in one line (or not at all) diff in well under a second each batch, not a table of lines² each', () => {
    const lines = Array.from({ length: 2000 }, (_, i) => `  ${i},`);
    const a = lines.join('\n');
    const b = [...lines.slice(0, 1000), '  changed,', ...lines.slice(1001)].join('\n');
    const t0 = performance.now();
    for (let i = 0; i < 300; i++) {
      const d = diffLines(a, i % 2 ? a : b);
      expect(d.length).toBe(i % 2 ? 2000 : 2001);
    }
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  it('a shared budget bounds the tables of many diffs that differ throughout: once spent, the lines show as changed', () => {
    const a = Array.from({ length: 2000 }, (_, i) => `a${i}`).join('\n');
    const b = Array.from({ length: 2000 }, (_, i) => `b${i}`).join('\n');
    const budget = { cells: 10_000_000 };
    const t0 = performance.now();
    for (let i = 0; i < 300; i++) expect(diffLines(a, b, budget)).toHaveLength(4000);
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(budget.cells).toBeGreaterThan(-4_000_000);
  });
});
