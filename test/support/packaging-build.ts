import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative } from 'node:path';
import { ROOT } from './processes.js';

/**
 * The production image, built natively the way the Dockerfile builds it
 * (Docker has no engine on the development machine). The Dockerfile itself is
 * read: the build stage's COPY lines are copied from the repository (less what
 * .dockerignore leaves out) into a temp folder OUTSIDE the repository, so no
 * parent node_modules can help; its RUN lines run there (npm ci, which builds,
 * and npm prune); then only what the runtime stage's COPY lines copy goes into
 * a second folder, which is what the tests start.
 *
 * One build serves every packaging test: it is kept under the system temp
 * folder keyed by a digest of its inputs, and a lock makes a second test file
 * wait for the first one's build instead of running its own.
 *
 * GATEHOUSE_PACKAGING_MANIFEST_FROM=<commit> builds with package.json and
 * package-lock.json from that commit (how the tests were shown to fail on
 * 4b68b32, where openid-client was a devDependency).
 */

export interface Instruction {
  op: string;
  args: string;
}

export interface Stage {
  name?: string;
  image: string;
  instructions: Instruction[];
}

export const DOCKERFILE = join(ROOT, 'Dockerfile');

export function parseDockerfile(text: string): Stage[] {
  const lines = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op, args] = /^(\S+)\s*(.*)$/.exec(line)!;
    if (op.toUpperCase() === 'FROM') {
      const [image, as, name] = args.split(/\s+/);
      stages.push({ image, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
    } else {
      if (!stages.length) throw new Error(`Dockerfile: ${op} before FROM`);
      stages.at(-1)!.instructions.push({ op: op.toUpperCase(), args });
    }
  }
  return stages;
}

/** ENV lines of a stage (KEY=value form), in order. */
export function stageEnv(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of stage.instructions.filter((x) => x.op === 'ENV')) {
    for (const m of i.args.matchAll(/(\w+)=("[^"]*"|\S*)/g)) env[m[1]] = m[2].replace(/^"|"$/g, '');
  }
  return env;
}

export const stageWorkdir = (stage: Stage) => stage.instructions.filter((i) => i.op === 'WORKDIR').at(-1)?.args ?? '/';

/** The runtime stage's CMD (exec form). */
export function stageCmd(stage: Stage): string[] {
  const cmd = stage.instructions.filter((i) => i.op === 'CMD').at(-1);
  if (!cmd) throw new Error('Dockerfile: the runtime stage has no CMD');
  return JSON.parse(cmd.args);
}

/** .dockerignore as a predicate on context-relative paths (patterns from the context root, * within one segment). */
export function dockerignore(root: string): (rel: string) => boolean {
  const file = join(root, '.dockerignore');
  const patterns = existsSync(file)
    ? readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).map((l) => l.replace(/^\/+|\/+$/g, ''))
    : [];
  const regexes = patterns.map((p) => new RegExp(`^${p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')}(/|$)`));
  return (rel) => regexes.some((r) => r.test(rel));
}

/** Files to write over the context (a manifest from another commit). */
function contextOverlay(): Record<string, Buffer> {
  const ref = process.env.GATEHOUSE_PACKAGING_MANIFEST_FROM;
  if (!ref) return {};
  const show = (path: string) => execFileSync('git', ['show', `${ref}:${path}`], { cwd: ROOT });
  return { 'package.json': show('package.json'), 'package-lock.json': show('package-lock.json') };
}

/** Every file under a context path that .dockerignore keeps, context-relative. */
function contextFiles(rel: string, ignored: (rel: string) => boolean): string[] {
  if (ignored(rel)) return [];
  const abs = join(ROOT, rel);
  if (!existsSync(abs)) throw new Error(`Dockerfile copies ${rel}, which is not in the build context`);
  if (!statSync(abs).isDirectory()) return [rel];
  return readdirSync(abs).flatMap((name) => contextFiles(posix.join(rel, name), ignored));
}

interface Copy {
  from?: string;
  sources: string[];
  dest: string;
}

function parseCopy(args: string): Copy {
  const words = args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith('--'));
  const rest = words.filter((w) => !w.startsWith('--'));
  const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
  return { from, sources: rest.slice(0, -1), dest: rest.at(-1)! };
}

/** A path inside a stage's filesystem, in the folder that stands for its WORKDIR. */
function inStage(dir: string, workdir: string, path: string): string {
  if (!path.startsWith('/')) return join(dir, path);
  const rel = posix.relative(workdir, path);
  if (rel.startsWith('..')) throw new Error(`${path} is outside the stage's WORKDIR ${workdir}; the native build only has the WORKDIR`);
  return join(dir, rel);
}

/** COPY from the context: a directory's contents go into dest, files into dest (a folder when it ends with / or there are several). */
function copyFromContext(copy: Copy, dir: string, workdir: string, ignored: (rel: string) => boolean, overlay: Record<string, Buffer>, inputs: string[]) {
  for (const source of copy.sources) {
    const src = posix.normalize(source).replace(/\/$/, '');
    const isDir = statSync(join(ROOT, src)).isDirectory();
    for (const rel of contextFiles(src, ignored)) {
      const target = isDir
        ? join(inStage(dir, workdir, copy.dest), posix.relative(src, rel))
        : copy.dest.endsWith('/') || copy.sources.length > 1 ? join(inStage(dir, workdir, copy.dest), posix.basename(rel)) : inStage(dir, workdir, copy.dest);
      mkdirSync(dirname(target), { recursive: true });
      const bytes = overlay[rel] ?? readFileSync(join(ROOT, rel));
      writeFileSync(target, bytes);
      inputs.push(`${rel}\0${createHash('sha256').update(bytes).digest('hex')}`);
    }
  }
}

function run(command: string, cwd: string, env: Record<string, string>, log: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', command], {
      cwd,
      // a clean environment, as in a build container: no NODE_ENV=test from jest, no CI flags
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    child.on('close', (code) => {
      log.push(`$ ${command}\n${out}`);
      if (code === 0) resolve();
      else reject(new Error(`\`${command}\` exited with ${code} in ${cwd}:\n${out.slice(-4000)}`));
    });
  });
}

export interface PackagingBuild {
  /** the build stage's WORKDIR after its RUN lines: built and pruned */
  buildDir: string;
  /** only what the runtime stage copies: the image's WORKDIR */
  runtimeDir: string;
  runtime: Stage;
  /** the runtime stage's ENV */
  env: Record<string, string>;
  cmd: string[];
  /** what the build printed (npm ci, npm prune) */
  log: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Builds (or reuses) the image's two stages natively. Only RUN lines of the
 * build stage run (the runtime stage's RUN lines make /data and chown it:
 * nothing the native copy needs, and nothing to do to this machine's /).
 */
export async function buildAsDockerfile(): Promise<PackagingBuild> {
  const stages = parseDockerfile(readFileSync(DOCKERFILE, 'utf8'));
  if (stages.length !== 2) throw new Error(`expected a build stage and a runtime stage, found ${stages.length} stages`);
  const [build, runtime] = stages;
  const ignored = dockerignore(ROOT);
  const overlay = contextOverlay();

  // stage the build context first, to key the cache on exactly what goes in
  const staging = join(tmpdir(), `gatehouse-packaging-staging-${process.pid}-${Date.now()}`);
  const inputs: string[] = [readFileSync(DOCKERFILE, 'utf8'), readFileSync(join(ROOT, '.dockerignore'), 'utf8')];
  const buildStaging = join(staging, 'build');
  const runtimeStaging = join(staging, 'runtime');
  mkdirSync(buildStaging, { recursive: true });
  mkdirSync(runtimeStaging, { recursive: true });
  for (const i of build.instructions.filter((x) => x.op === 'COPY')) {
    copyFromContext(parseCopy(i.args), buildStaging, stageWorkdir(build), ignored, overlay, inputs);
  }
  for (const i of runtime.instructions.filter((x) => x.op === 'COPY')) {
    const copy = parseCopy(i.args);
    if (!copy.from) copyFromContext(copy, runtimeStaging, stageWorkdir(runtime), ignored, overlay, inputs);
  }
  const key = createHash('sha256').update(inputs.sort().join('\n')).digest('hex').slice(0, 16);
  const home = join(tmpdir(), `gatehouse-packaging-${key}`);
  const done = join(home, 'done');
  const lock = `${home}.lock`;
  const result = (log: string): PackagingBuild => ({
    buildDir: join(home, 'build'), runtimeDir: join(home, 'runtime'), runtime, env: stageEnv(runtime), cmd: stageCmd(runtime), log,
  });

  try {
    // one builder at a time; the others wait for its result
    for (;;) {
      if (existsSync(done)) return result(readFileSync(done, 'utf8'));
      try {
        mkdirSync(lock);
        break;
      } catch {
        // a lock older than 20 minutes was left by a killed run
        try {
          if (Date.now() - statSync(lock).mtimeMs > 20 * 60_000) rmSync(lock, { recursive: true, force: true });
        } catch {
          // gone meanwhile
        }
        await sleep(1000);
      }
    }
    try {
      if (existsSync(done)) return result(readFileSync(done, 'utf8'));
      rmSync(home, { recursive: true, force: true });
      mkdirSync(home);
      const { buildDir, runtimeDir } = result('');
      cpSync(buildStaging, buildDir, { recursive: true });
      const log: string[] = [];
      const env = stageEnv(build);
      for (const i of build.instructions.filter((x) => x.op === 'RUN')) await run(i.args, buildDir, env, log);
      // the runtime stage: context copies are staged; --from copies come from the build stage
      cpSync(runtimeStaging, runtimeDir, { recursive: true });
      for (const i of runtime.instructions.filter((x) => x.op === 'COPY')) {
        const copy = parseCopy(i.args);
        if (!copy.from) continue;
        if (copy.from !== build.name) throw new Error(`COPY --from=${copy.from}: no such stage`);
        for (const source of copy.sources) {
          cpSync(inStage(buildDir, stageWorkdir(build), source), inStage(runtimeDir, stageWorkdir(runtime), copy.dest), { recursive: true });
        }
      }
      writeFileSync(done, log.join('\n'));
      // earlier builds (other inputs) are not needed any more
      for (const name of readdirSync(tmpdir())) {
        const other = join(tmpdir(), name);
        if (/^gatehouse-packaging-[0-9a-f]{16}$/.test(name) && other !== home && existsSync(join(other, 'done'))) rmSync(other, { recursive: true, force: true });
      }
      return result(log.join('\n'));
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** The repository's files as a developer's checkout has them: tracked and untracked, less what git ignores. */
export function checkoutFiles(): string[] {
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' });
  return listed.split('\0').filter((f) => f && existsSync(join(ROOT, f)) && statSync(join(ROOT, f)).isFile());
}

export interface Packed {
  tarball: string;
  /** the paths inside the package (package/ stripped) */
  files: string[];
  dir: string;
}

/**
 * `npm pack` of a checkout built as the image builds it: the repository's
 * files (with package.json and package-lock.json as the build used them) and
 * the build stage's dist/. `prepare` (the build) already ran in the build
 * stage, so the pack runs no scripts (there are no dev dependencies here to
 * build with).
 */
export function packFromBuild(build: PackagingBuild): Packed {
  const dir = join(tmpdir(), `gatehouse-pack-${process.pid}-${Date.now()}`);
  const checkout = join(dir, 'checkout');
  const out = join(dir, 'out');
  mkdirSync(out, { recursive: true });
  for (const rel of checkoutFiles()) {
    mkdirSync(dirname(join(checkout, rel)), { recursive: true });
    cpSync(join(ROOT, rel), join(checkout, rel));
  }
  for (const manifest of ['package.json', 'package-lock.json']) cpSync(join(build.buildDir, manifest), join(checkout, manifest));
  cpSync(join(build.buildDir, 'dist'), join(checkout, 'dist'), { recursive: true });
  const json = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', out], {
    cwd: checkout,
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    encoding: 'utf8',
  });
  const [info] = JSON.parse(json) as { filename: string; files: { path: string }[] }[];
  rmSync(checkout, { recursive: true, force: true });
  return { tarball: join(out, info.filename), files: info.files.map((f) => f.path), dir };
}

export const relativeToRoot = (path: string) => relative(ROOT, path);
