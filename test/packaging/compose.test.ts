import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { parse } from 'yaml';
import { ROOT } from '../support/processes.js';

/**
 * docker-compose.yml is the production shape. Debian's docker-compose (.ci/run
 * installs it) parses and interpolates it without a Docker daemon: with the
 * required variables set it gives the production environment; without
 * KEY_ENCRYPTION_KEY (or ISSUER, or COOKIE_KEYS) it refuses, with the file's
 * own message. Outside CI a machine without it skips with one line.
 */

const COMPOSE = process.env.DOCKER_COMPOSE_PATH ?? (process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'docker-compose')).find((p) => existsSync(p));

function composeAvailable(): boolean {
  if (COMPOSE && existsSync(COMPOSE)) return true;
  if (process.env.CI) throw new Error('docker-compose not found: .ci/run must install it (apt-get install docker-compose)');
  process.stderr.write('docker-compose tests skipped: no docker-compose on PATH (apt-get install docker-compose, or set DOCKER_COMPOSE_PATH)\n');
  return false;
}

const required = {
  ISSUER: 'https://login.example.com',
  COOKIE_KEYS: randomBytes(32).toString('base64'),
  KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64url'),
};

/** `docker-compose config` on the repository's file, with only these variables (no .env, nothing from the caller). */
function config(vars: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-compose-'));
  const noEnvFile = join(dir, 'empty.env');
  writeFileSync(noEnvFile, '');
  const r = spawnSync(COMPOSE!, ['--env-file', noEnvFile, '-f', join(ROOT, 'docker-compose.yml'), 'config'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...vars },
    encoding: 'utf8',
  });
  rmSync(dir, { recursive: true, force: true });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

(composeAvailable() ? describe : describe.skip)('docker-compose.yml, checked by docker-compose config', () => {
  it('parses and interpolates with ISSUER, COOKIE_KEYS and KEY_ENCRYPTION_KEY set: two production replicas on PostgreSQL and Redis', () => {
    const r = config(required);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const file = parse(r.stdout) as { services: Record<string, { environment?: Record<string, string>; build?: unknown; image?: string }> };
    const replicas = Object.entries(file.services).filter(([, s]) => s.build);
    expect(replicas.map(([name]) => name).sort()).toEqual(['gatehouse-1', 'gatehouse-2']);
    for (const [, replica] of replicas) {
      expect(replica.environment).toMatchObject({
        NODE_ENV: 'production',
        TRUST_PROXY: 'true',
        ...required,
        DATABASE_URL: expect.stringMatching(/^postgresql:\/\/[^@]+@postgres:5432\//),
        REDIS_URL: 'redis://redis:6379',
      });
    }
    expect(Object.keys(file.services)).toEqual(expect.arrayContaining(['postgres', 'redis', 'balancer']));
  });

  it.each(Object.keys(required))('refuses to run without %s, with the message that says how to set it', (name) => {
    const vars: Record<string, string> = { ...required };
    delete vars[name];
    const r = config(vars);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`in service "gatehouse-\\d": set ${name}\\b`));
  });

  it('refuses an empty KEY_ENCRYPTION_KEY as well as a missing one', () => {
    const r = config({ ...required, KEY_ENCRYPTION_KEY: '' });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/set KEY_ENCRYPTION_KEY \(openssl rand -base64 32/);
  });
});
