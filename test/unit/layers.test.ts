import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ROOT } from '../support/processes.js';

/**
 * The layers import one way: doors (cli, oidc hooks, interactions, federation)
 * → services → storage. Storage holds all SQL and imports nothing above it;
 * common/ holds shared facts and imports nothing else; the resource kit is
 * published on its own and imports nothing of the server.
 */

const SRC = join(ROOT, 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'generated' ? [] : sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Every relative import of a file, as the top folder under src/ it lands in (a file's own name for src/ itself). */
function importedFolders(file: string): { specifier: string; folder: string }[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+'(\.[^']+)'|import\('(\.[^']+)'\)/g)].map((m) => m[1] ?? m[2]);
  return specifiers.map((specifier) => {
    const target = relative(SRC, resolve(dirname(file), specifier));
    return { specifier, folder: target.split('/')[0].replace(/\.js$/, '.ts') };
  });
}

const files = sourceFiles(SRC).map((file) => ({ file: relative(SRC, file), folder: relative(SRC, file).split('/')[0], imports: importedFolders(file) }));

/** Imports from `folder` that reach a folder it must not. */
function violations(folder: string, allowed: string[]): string[] {
  return files
    .filter((f) => f.folder === folder)
    .flatMap((f) => f.imports.filter((i) => i.folder !== folder && !allowed.includes(i.folder)).map((i) => `${f.file} imports ${i.specifier}`));
}

describe('layers', () => {
  it('finds the imports it checks', () => {
    const keys = files.find((f) => f.file === 'services/keys.ts');
    expect(keys?.imports.map((i) => i.folder)).toEqual(expect.arrayContaining(['storage', 'common']));
    expect(files.find((f) => f.file === 'storage/database.ts')?.imports.map((i) => i.folder)).toContain('config.ts');
    expect(files.filter((f) => f.folder === 'storage').length).toBeGreaterThan(5);
  });

  it('storage imports nothing above it (only shared facts, config types and the generated clients)', () => {
    expect(violations('storage', ['common', 'generated', 'config.ts'])).toEqual([]);
  });

  it('common imports nothing else', () => {
    expect(violations('common', [])).toEqual([]);
  });

  it('services import only storage and common, never a door', () => {
    expect(violations('services', ['storage', 'common'])).toEqual([]);
  });

  it('limits build only on the shared facts', () => {
    expect(violations('limits', ['common'])).toEqual([]);
  });

  it('the web room (rendering, CSRF, error boundaries, forms, headers) is shared by the doors and imports none of them', () => {
    expect(files.filter((f) => f.folder === 'web').length).toBeGreaterThan(5);
    expect(violations('web', ['common', 'config.ts'])).toEqual([]);
  });

  it('the console reaches the rules only through services, and no other door (storage only for the type of the database handle)', () => {
    expect(violations('console', ['web', 'services', 'common', 'storage'])).toEqual([]);
    const storageValues = files
      .filter((f) => f.folder === 'console')
      .flatMap((f) => [...readFileSync(join(SRC, f.file), 'utf8').matchAll(/^import (?!type )[^;]*from '[./]+\/storage\/[^']+';/gm)].map((m) => `${f.file}: ${m[0]}`));
    expect(storageValues).toEqual([]);
  });

  it('the resource kit is self-contained', () => {
    expect(violations('resource-kit', [])).toEqual([]);
  });
});
