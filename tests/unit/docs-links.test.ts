import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

// README.md and docs/ stand alone: every link is relative, stays inside the repository, names a
// file (or directory) that exists, and a #fragment names a heading of the Markdown file it points at.
const ROOT = resolve(import.meta.dirname, '../..');
const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** Markdown text without fenced code blocks and inline code, where `[a](b)` is not a link. */
function prose(text: string): string {
  return text.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');
}

/** The targets of inline links and images, `[text](target)` and `[text](target "title")`. */
export function linksOf(text: string): string[] {
  return [...prose(text).matchAll(/!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!);
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens; repeats get -1, -2. */
export function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const [, heading] of prose(markdown.replace(/`([^`\n]*)`/g, '$1')).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = heading!.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

describe('links in README.md and docs/', () => {
  it('the link and anchor readers find what GitHub would', () => {
    expect(linksOf('see [a](b.md#c) and ![img](d.png "t"), not `[x](y)`\n```\n[p](q)\n```\n')).toEqual(['b.md#c', 'd.png']);
    expect([...anchorsOf('# Tests (pipelines/NAME.test.yaml)\n## The `schedule` source\n## Redrive\n## Redrive\n')])
      .toEqual(['tests-pipelinesnametestyaml', 'the-schedule-source', 'redrive', 'redrive-1']);
  });

  it('finds the links there are to check (README.md links to every page of docs/)', () => {
    expect(DOCS.length).toBeGreaterThan(8);
    const readme = linksOf(readFileSync(join(ROOT, 'README.md'), 'utf8'));
    expect(DOCS.filter((f) => f.startsWith('docs/') && !readme.includes(f))).toEqual([]);
  });

  it('every link is relative, stays in the repository, and resolves (file and #anchor)', () => {
    const broken: string[] = [];
    for (const doc of DOCS) {
      const from = join(ROOT, doc);
      for (const link of linksOf(readFileSync(from, 'utf8'))) {
        const problem = (why: string) => broken.push(`${doc}: ${link}: ${why}`);
        if (/^[a-z][a-z0-9+.-]*:/i.test(link) || link.startsWith('//')) {
          problem('leaves the repository');
          continue;
        }
        const [path, fragment] = link.split('#') as [string, string | undefined];
        const target = path === '' ? from : resolve(dirname(from), decodeURIComponent(path));
        if (relative(ROOT, target).startsWith('..')) {
          problem('leaves the repository');
          continue;
        }
        if (!existsSync(target)) {
          problem('no such file');
          continue;
        }
        if (fragment !== undefined) {
          if (!target.endsWith('.md') || statSync(target).isDirectory()) problem('an anchor into a file that is not Markdown');
          else if (!anchorsOf(readFileSync(target, 'utf8')).has(fragment)) problem(`no heading #${fragment} in ${relative(ROOT, target)}`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it('no text sends the reader to a document outside the repository', () => {
    for (const doc of DOCS) {
      const text = readFileSync(join(ROOT, doc), 'utf8');
      expect(text, doc).not.toMatch(/\.\.\/shared|SPEC(\.md| §)/);
    }
  });
});
