import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { ROOT } from '../support/processes.js';

/**
 * Every function in src/ reads at once: about 120 lines at most. A function
 * that is mostly one data literal (the OpenAPI document) may be longer, and is
 * named here with the reason.
 */

const LIMIT = 120;
/** functions whose body is a data literal, not steps */
const DATA_LITERALS = new Set(['admin/openapi.ts adminOpenApi']);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'generated' ? [] : sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

function nameOf(node: ts.Node): string {
  if ((ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node)) && node.name) return node.name.getText();
  const parent = node.parent;
  if (parent && ts.isVariableDeclaration(parent)) return parent.name.getText();
  if (parent && ts.isPropertyAssignment(parent)) return parent.name.getText();
  return '(anonymous)';
}

function longFunctions(file: string): { name: string; lines: number }[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const found: { name: string; lines: number }[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isFunctionDeclaration(node) || ts.isFunctionExpression(node) || ts.isArrowFunction(node) || ts.isMethodDeclaration(node)) {
      const start = source.getLineAndCharacterOfPosition(node.getStart()).line;
      const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      if (end - start + 1 > LIMIT) found.push({ name: nameOf(node), lines: end - start + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

describe('function length', () => {
  it(`finds no function in src/ longer than ${LIMIT} lines, data literals aside`, () => {
    const src = join(ROOT, 'src');
    const long = sourceFiles(src).flatMap((file) =>
      longFunctions(file).map((f) => ({ ...f, where: `${relative(src, file)} ${f.name}` })),
    ).filter((f) => !DATA_LITERALS.has(f.where));
    expect(long.map((f) => `${f.where}: ${f.lines} lines`)).toEqual([]);
  });

  it('measures: the OpenAPI document is a long data literal', () => {
    expect(longFunctions(join(ROOT, 'src', 'admin', 'openapi.ts')).map((f) => f.name)).toContain('adminOpenApi');
  });
});
