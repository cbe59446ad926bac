/**
 * docs/CONFORMANCE.md cannot drift from the catalogue (plans.ts): every plan has its
 * section, and every module is listed in it with its catalogue status (out of scope with
 * the reason, or a result for a run module). `npm run conformance` rewrites the file.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../support/processes.js';
import { PLANS, PLANS_OUT_OF_SCOPE } from './plans.js';

const doc = readFileSync(join(ROOT, 'docs', 'CONFORMANCE.md'), 'utf8');

/** The rows of one plan's section: module name → [result, notes]. */
function section(planName: string): Map<string, [string, string]> {
  const start = doc.indexOf(`: \`${planName}\``);
  if (start < 0) throw new Error(`docs/CONFORMANCE.md has no section for ${planName}`);
  const end = doc.indexOf('\n## ', start);
  const rows = new Map<string, [string, string]>();
  for (const m of doc.slice(start, end < 0 ? undefined : end).matchAll(/^\| `([^`]+)` \| ([^|]+) \| (.*) \|$/gm)) rows.set(m[1], [m[2].trim(), m[3].trim()]);
  return rows;
}

describe('conformance catalogue', () => {
  test.each(PLANS.map((p) => [p.name, p] as const))('docs/CONFORMANCE.md lists every module of %s with its status', (_name, plan) => {
    const rows = section(plan.name);
    expect([...rows.keys()]).toEqual(plan.modules.map((m) => m.name));
    for (const m of plan.modules) {
      const [result, notes] = rows.get(m.name)!;
      if (m.status === 'out-of-scope') expect({ module: m.name, result, notes }).toEqual({ module: m.name, result: 'out of scope', notes: m.reason });
      // a run module was run, and passed, when the file was last written (`npm run conformance`)
      else expect({ module: m.name, result }).toEqual({ module: m.name, result: 'passed' });
    }
  });

  test('every out-of-scope module says why, and module names are unique within a plan', () => {
    for (const plan of PLANS) {
      expect(new Set(plan.modules.map((m) => m.name)).size).toBe(plan.modules.length);
      for (const m of plan.modules.filter((x) => x.status === 'out-of-scope')) expect(m.reason).toEqual(expect.any(String));
    }
    for (const p of PLANS_OUT_OF_SCOPE) expect(doc).toContain(`| \`${p.name}\` | ${p.reason} |`);
  });
});
