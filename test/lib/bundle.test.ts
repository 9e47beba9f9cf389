/**
 * The init stage's bundle cache (lib/runtime/bundle.ts) and the fast entry (bin/calf.cjs), on a
 * copy of a real level file and lib/ in a temp dir: an edit to the level file, or to a lib file
 * it imports, rebuilds the bundle on both paths; a corrupt bundle or manifest is rebuilt; two
 * first runs at once both get an intact bundle; the cache directories of level files that are
 * gone are removed.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { LEVELS, levelDir } from '../../ladder/ladder.js';
import { repo } from '../support/paths.js';

let tmp: string;
let cache: string;
let entry: string;
let cli: string;
const level = levelDir(LEVELS.at(-1)!, 'solutions');

/** Put a fresh random token into calf's --help text (lib/runtime/cli.ts), and return it. */
function editLib(): string {
  const token = `lib-${randomBytes(6).toString('hex')}`;
  fs.writeFileSync(cli, fs.readFileSync(cli, 'utf8').replace(/\.description\('[^']*'\)/, `.description('${token}')`));
  return token;
}

/** Append a line to the level file that prints a fresh random token on stderr, and return it. */
function editLevel(): string {
  const token = `level-${randomBytes(6).toString('hex')}`;
  fs.appendFileSync(entry, `\nif (process.argv[2] === '--help') process.stderr.write('${token}\\n');\n`);
  return token;
}

/** `node BUNDLE --help`, the bundle run as the init stage is: plain node, no tsx. */
async function help(bundle: string) {
  const r = await execa(process.execPath, [bundle, '--help'], { reject: false, env: { CALF_CACHE: cache } });
  return `${r.stdout}\n${r.stderr}`;
}

/** `bin/calf.cjs --help` with the copied level file as its entry. */
async function fastHelp() {
  const r = await execa(process.execPath, [path.join(repo, 'bin/calf.cjs'), '--help'], {
    reject: false, env: { CALF_CACHE: cache, CALF_FAST_ENTRY: entry },
  });
  return `${r.stdout}\n${r.stderr}`;
}

/** What the library says about the copied level file: the cached bundle, or a new build. */
async function bundle() {
  const { cachedBundle, ensureBundle } = await import('../../lib/runtime/bundle.js');
  process.env.CALF_CACHE = cache;
  return { cached: cachedBundle(entry), current: await ensureBundle(entry) };
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-test-bundle-'));
  cache = path.join(tmp, 'cache');
  fs.cpSync(path.join(repo, 'lib'), path.join(tmp, 'lib'), { recursive: true });
  fs.cpSync(path.join(repo, level), path.join(tmp, level), { recursive: true }); // same relative imports
  for (const file of ['package.json', 'tsconfig.json']) fs.copyFileSync(path.join(repo, file), path.join(tmp, file));
  fs.symlinkSync(path.join(repo, 'node_modules'), path.join(tmp, 'node_modules'));
  entry = path.join(tmp, level, 'calf.ts');
  cli = path.join(tmp, 'lib/runtime/cli.ts');
});

afterAll(() => {
  delete process.env.CALF_CACHE;
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('init stage bundle', () => {
  it('is built once, then reused while nothing changes', async () => {
    const token = editLib();
    const first = await bundle();
    expect(first.cached).toBeUndefined();
    expect(await help(first.current)).toContain(token); // positive control: the bundle runs, with this lib
    const second = await bundle();
    expect(second.cached).toBe(first.current);
  });

  it('is rebuilt after an edit to a lib file the level imports', async () => {
    const before = (await bundle()).current;
    const token = editLib();
    const after = await bundle();
    expect(after.cached).toBeUndefined();
    expect(after.current).not.toBe(before);
    expect(await help(after.current)).toContain(token);
  });

  it('is rebuilt after an edit to the level file', async () => {
    await bundle();
    const token = editLevel();
    const after = await bundle();
    expect(after.cached).toBeUndefined();
    expect(await help(after.current)).toContain(token);
  });

  it('is rebuilt when the bundle or its manifest is corrupt', async () => {
    const good = (await bundle()).current;
    const token = editLib();
    const fresh = (await bundle()).current;
    expect(await help(fresh)).toContain(token);
    fs.truncateSync(fresh, 100); // a half-written file
    const rebuilt = await bundle();
    expect(rebuilt.cached).toBeUndefined();
    expect(await help(rebuilt.current)).toContain(token);
    fs.writeFileSync(path.join(path.dirname(fresh), 'manifest.json'), '{"format":1,"inp');
    expect((await bundle()).cached).toBeUndefined();
    expect(await help((await bundle()).current)).toContain(token);
    expect(good).not.toBe(fresh);
  });

  it('removes, at a build, the directories of level files that are gone, once untouched for an hour', async () => {
    await bundle();
    /** A cache directory as a build leaves it, for `entry`, last touched `hoursAgo`. */
    const fake = (entryFile: string, hoursAgo: number) => {
      const dir = path.join(cache, `fake-${randomBytes(4).toString('hex')}`);
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'x.cjs'), '');
      fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ format: 3, inputs: [[entryFile, '']], entry: entryFile }));
      const then = new Date(Date.now() - hoursAgo * 3_600_000);
      fs.utimesSync(path.join(dir, 'manifest.json'), then, then);
      return dir;
    };
    const gone = path.join(tmp, 'deleted-copy/calf.ts');
    const dirs = { goneOld: fake(gone, 2), goneRecent: fake(gone, 0), thereOld: fake(entry, 2) };
    const own = path.dirname((await bundle()).current);
    editLevel();
    expect(path.dirname((await bundle()).current)).toBe(own); // a build
    expect(Object.fromEntries(Object.entries(dirs).map(([k, d]) => [k, fs.existsSync(d)])))
      .toEqual({ goneOld: false, goneRecent: true, thereOld: true });
    expect(fs.existsSync(own)).toBe(true);
  });

  it('survives two first runs at once: both get an intact, current bundle', async () => {
    fs.rmSync(cache, { recursive: true, force: true });
    const token = editLib();
    const build = () => execa(process.execPath, ['--import', 'tsx', path.join(repo, 'scripts/bundle.ts'), entry], {
      cwd: repo, env: { CALF_CACHE: cache },
    });
    const [a, b] = await Promise.all([build(), build()]);
    for (const r of [a, b]) expect(await help(r.stdout.trim())).toContain(token);
    expect((await bundle()).cached).toBe(a.stdout.trim());
  });
});

describe('fast entry', () => {
  it('runs the level file without tsx and rebuilds after an edit to it or to lib', async () => {
    const libToken = editLib();
    expect(await fastHelp()).toContain(libToken);
    const levelToken = editLevel();
    const out = await fastHelp();
    expect(out).toContain(levelToken);
    expect(out).toContain(libToken);
    const again = editLib();
    expect(await fastHelp()).toContain(again);
  });
});

describe('init stage environment', () => {
  it('drops what changes or slows Node, keeps the rest', async () => {
    const { initEnv } = await import('../../lib/runtime/bundle.js');
    const token = randomBytes(6).toString('hex');
    const saved = { ...process.env };
    Object.assign(process.env, { NODE_OPTIONS: '--import tsx', NODE_EXTRA_CA_CERTS: '/x.pem', CALF_DEBUG: token, KEEP_ME: token });
    try {
      const env = initEnv();
      expect(env.CALF_DEBUG).toBe(token); // positive control: calf's own variables pass
      expect(env.KEEP_ME).toBe(token);
      expect(Object.keys(env).filter((k) => k.startsWith('NODE_'))).toEqual([]);
    } finally {
      for (const key of ['NODE_OPTIONS', 'NODE_EXTRA_CA_CERTS', 'CALF_DEBUG', 'KEEP_ME']) {
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
      }
    }
  });
});
