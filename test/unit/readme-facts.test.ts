import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { configSchema } from '../../src/config.js';

/**
 * The README's numbers come from the code: every default in its Configuration
 * table is the default the configuration schema (src/config.ts, the one
 * source) gives, and every variable the schema reads is in the table. A
 * change to either without the other fails here.
 */

const README = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');

/** The rows of the Configuration table: variable names (a row may name several) and the defaults column. */
function configurationRows(): { names: string[]; defaults: string[] }[] {
  const section = README.split('\n## Configuration')[1]?.split('\n## ')[0] ?? '';
  return section.split('\n')
    .filter((line) => /^\| `[A-Z_]+`/.test(line))
    .map((line) => {
      const [names, defaults] = line.split(' | ').map((cell) => cell.replace(/^\| /, ''));
      const code = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
      return { names: code(names), defaults: code(defaults) };
    });
}

describe('the README configuration table', () => {
  const rows = configurationRows();
  const defaults = configSchema.parse({}) as Record<string, unknown>;

  it('has rows to check', () => {
    expect(rows.length).toBeGreaterThan(20);
  });

  it('states each default the schema gives, for every variable with one', () => {
    const wrong: string[] = [];
    for (const { names, defaults: stated } of rows) {
      names.forEach((name, i) => {
        const actual = defaults[name];
        if (actual === undefined) return; // no default: the README says unset or explains it
        const shown = String(actual);
        if (stated[i] !== shown) wrong.push(`${name}: README says ${stated[i] ?? '(nothing)'}, the code ${shown}`);
      });
    }
    expect(wrong).toEqual([]);
  });

  it('lists every variable the configuration reads', () => {
    const documented = new Set(rows.flatMap((r) => r.names));
    // ISSUER and the provider families are documented by their own rows
    const missing = Object.keys(configSchema.shape).filter((name) => !documented.has(name));
    expect(missing).toEqual([]);
  });
});
