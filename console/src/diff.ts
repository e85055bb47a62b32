/** A line diff (longest common subsequence), for the dry-run comparison and the save conflict. */
export type DiffLine = { op: ' ' | '-' | '+'; text: string };

/**
 * `budget`, when given, is shared by several diffs (a dry-run's rows): the cells of each table
 * are taken from it, and once it is spent the rest show all their differing lines as changed.
 */
export function diffLines(a: string, b: string, budget?: { cells: number }): DiffLine[] {
  const xs = a.split('\n');
  const ys = b.split('\n');
  // The lines both start and end with are kept as they are: the table is only for the middle
  // (a dry-run diffs up to 1000 outputs in the page; most differ in a few lines or none).
  let head = 0;
  while (head < xs.length && head < ys.length && xs[head] === ys[head]) head++;
  let tail = 0;
  while (tail < xs.length - head && tail < ys.length - head && xs[xs.length - 1 - tail] === ys[ys.length - 1 - tail]) tail++;
  const same = (text: string): DiffLine => ({ op: ' ', text });
  const x = xs.slice(head, xs.length - tail);
  const y = ys.slice(head, ys.length - tail);
  return [...xs.slice(0, head).map(same), ...middle(x, y, budget), ...xs.slice(xs.length - tail).map(same)];
}

function middle(x: string[], y: string[], budget?: { cells: number }): DiffLine[] {
  // Files and sink outputs are small; past this the table would be too big: show all as changed.
  const cells = x.length * y.length;
  if (cells > Math.min(4_000_000, budget?.cells ?? Infinity)) return [...x.map((text) => ({ op: '-' as const, text })), ...y.map((text) => ({ op: '+' as const, text }))];
  if (budget) budget.cells -= cells;
  const n = x.length;
  const m = y.length;
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i]![j] = x[i] === y[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const out: DiffLine[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) { out.push({ op: ' ', text: x[i]! }); i++; j++; }
    else if (lcs[i + 1]![j]! >= lcs[i]![j + 1]!) out.push({ op: '-', text: x[i++]! });
    else out.push({ op: '+', text: y[j++]! });
  }
  while (i < n) out.push({ op: '-', text: x[i++]! });
  while (j < m) out.push({ op: '+', text: y[j++]! });
  return out;
}
