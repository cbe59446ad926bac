// Runs `prisma generate` for each provider's schema with the JavaScript engine,
// so nothing is downloaded (see docs/ARCHITECTURE.md, "Storage"), then makes
// the generated clients load faster (useEsmRuntime, wasmFromFile below).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Generation never connects, but the schema's url must parse for its provider.
const placeholderUrl = { sqlite: 'file:./data/prisma-cli.db', postgresql: 'postgresql://localhost:5432/gatehouse' };
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
for (const provider of ['sqlite', 'postgresql']) {
  const result = spawnSync(
    process.execPath,
    [join(root, 'node_modules/prisma/build/index.js'), 'generate', '--config', `prisma/${provider}/prisma.config.mjs`],
    {
      cwd: root,
      stdio: 'inherit',
      // The Prisma CLI tries to download a query engine when no URL is set.
      env: { ...process.env, PRISMA_HIDE_UPDATE_MESSAGE: '1', DATABASE_URL: placeholderUrl[provider] },
    },
  );
  if (result.status !== 0) process.exit(result.status ?? 1);
  useEsmRuntime(join(root, 'src/generated', provider));
  await wasmFromFile(provider);
}

/**
 * The generated client imports "@prisma/client/runtime/client", which Node
 * resolves to the CommonJS build of the runtime (the package's "node"
 * condition). Imported from ESM, that 230 kB file is compiled three times (to
 * detect its format, to find its exports, to run it): about 0.1 s of every
 * start, a third of a CLI command. The package ships the same runtime as ESM,
 * runtime/client.mjs, with identical types; the clients import that instead.
 * storage/errors.ts imports the same file, so there is one runtime and its
 * error classes match with instanceof.
 */
function useEsmRuntime(dir) {
  const from = '"@prisma/client/runtime/client"';
  const to = '"@prisma/client/runtime/client.mjs"';
  let rewritten = 0;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const file = join(entry.parentPath ?? entry.path, entry.name);
    const text = readFileSync(file, 'utf8');
    if (!text.includes(from)) continue;
    writeFileSync(file, text.replaceAll(from, to));
    rewritten++;
  }
  // a Prisma upgrade that changes the generated import must not silently bring the slow path back
  if (!readFileSync(join(dir, 'internal/class.ts'), 'utf8').includes(to)) {
    console.error(`prisma-generate: ${dir}/internal/class.ts does not import ${to}; update useEsmRuntime for this Prisma version`);
    process.exit(1);
  }
  console.log(`prisma-generate: ${rewritten} file(s) of ${dir} import the ESM runtime`);
}

/**
 * The generated client loads the query compiler (1.8 MB of WebAssembly) from a
 * JavaScript module holding it as one 2.5 MB base64 string: decoding that file,
 * compiling it as JavaScript and decoding the base64 cost about 50 ms of every
 * start. The same bytes are written here, next to the generated client in src/
 * (tests) and dist/ (the build; tsc copies no .wasm), and read from the file;
 * where the file is missing the client falls back to Prisma's module.
 */
async function wasmFromFile(provider) {
  const file = join(root, 'src/generated', provider, 'internal/class.ts');
  const text = readFileSync(file, 'utf8');
  const load = /( *)const \{ wasm \} = await import\(("@prisma\/client\/runtime\/query_compiler_bg\.\w+\.wasm-base64\.mjs")\)\n *return await decodeBase64AsWasm\(wasm\)/;
  const match = load.exec(text);
  if (!match) {
    console.error(`prisma-generate: ${file} does not load the query compiler as expected; update wasmFromFile for this Prisma version`);
    process.exit(1);
  }
  const [, indent, specifier] = match;
  const { wasm } = await import(JSON.parse(specifier));
  const bytes = Buffer.from(wasm, 'base64');
  if (!WebAssembly.validate(bytes)) {
    console.error(`prisma-generate: ${specifier} does not hold valid WebAssembly`);
    process.exit(1);
  }
  for (const dir of ['src/generated', 'dist/generated']) {
    mkdirSync(join(root, dir, provider), { recursive: true });
    writeFileSync(join(root, dir, provider, 'query_compiler_bg.wasm'), bytes);
  }
  writeFileSync(file, text.replace(load, [
    `${indent}// written by scripts/prisma-generate.mjs from the module below: the same bytes, without decoding them at every start`,
    `${indent}const bytes = await import('node:fs/promises').then((fs) => fs.readFile(new URL('../query_compiler_bg.wasm', import.meta.url))).catch(() => undefined)`,
    `${indent}if (bytes) return new WebAssembly.Module(bytes)`,
    `${indent}const { wasm } = await import(${specifier})`,
    `${indent}return await decodeBase64AsWasm(wasm)`,
  ].join('\n')));
  console.log(`prisma-generate: the ${provider} client reads its query compiler from query_compiler_bg.wasm`);
}
