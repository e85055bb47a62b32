/**
 * JSONata's own conformance suite (MIT), for the expression tests. It is not part of this
 * repository: it is looked for in `JSONATA_CONFORMANCE_DIR`, else beside the repository
 * (`../shared/conformance/jsonata`). When it is absent, `suite` is undefined and `missingReason`
 * says where it was looked for, so a test file can skip itself with that reason.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export interface SuiteCase {
  expr?: string;
  'expr-file'?: string;
  data?: unknown;
  dataset?: string | null;
  bindings?: Record<string, unknown>;
  result?: unknown;
  undefinedResult?: boolean;
  code?: string;
  error?: { code?: string };
  unordered?: boolean;
  timelimit?: number;
  depth?: number;
}

/** One case of the suite, with its expression read and its input resolved. */
export interface LoadedCase extends SuiteCase {
  group: string;
  /** `group/file` or `group/file#index`: where the case is, for messages. */
  name: string;
  source: string;
  input: unknown;
}

export interface JsonataSuite {
  dir: string;
  groups: string[];
  /** The cases of one group, in file order. */
  cases(group: string): LoadedCase[];
}

const REPO = resolve(import.meta.dirname, '../..');
const candidates = process.env.JSONATA_CONFORMANCE_DIR
  ? [resolve(process.env.JSONATA_CONFORMANCE_DIR)]
  : [resolve(REPO, '../shared/conformance/jsonata')];
const dir = candidates.find((d) => existsSync(join(d, 'groups')));

export const missingReason = dir
  ? undefined
  : `JSONata's conformance suite was not found (looked in ${candidates.join(', ')}; set JSONATA_CONFORMANCE_DIR to its folder)`;

function load(root: string): JsonataSuite {
  const datasets = new Map<string, unknown>();
  for (const f of readdirSync(join(root, 'datasets'))) {
    if (f.endsWith('.json')) datasets.set(f.slice(0, -5), JSON.parse(readFileSync(join(root, 'datasets', f), 'utf8')));
  }
  const inputOf = (c: SuiteCase): unknown => {
    if ('data' in c) return c.data;
    if (!c.dataset) return undefined;
    if (!datasets.has(c.dataset)) throw new Error(`missing dataset ${c.dataset}`);
    return datasets.get(c.dataset);
  };
  return {
    dir: root,
    groups: readdirSync(join(root, 'groups')).sort(),
    cases(group) {
      const groupDir = join(root, 'groups', group);
      const out: LoadedCase[] = [];
      for (const file of readdirSync(groupDir).sort()) {
        if (!file.endsWith('.json')) continue;
        const raw = JSON.parse(readFileSync(join(groupDir, file), 'utf8')) as SuiteCase | SuiteCase[];
        const list = Array.isArray(raw) ? raw : [raw];
        for (const [index, c] of list.entries()) {
          const source = c.expr ?? readFileSync(join(groupDir, c['expr-file']!), 'utf8');
          const name = `${group}/${file}${list.length > 1 ? `#${index}` : ''}`;
          out.push({ ...c, group, name, source, input: inputOf(c) });
        }
      }
      return out;
    },
  };
}

export const suite: JsonataSuite | undefined = dir ? load(dir) : undefined;
