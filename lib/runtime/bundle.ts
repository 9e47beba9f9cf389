/**
 * The init stage's script: the level file and everything it imports, bundled into one
 * JavaScript file that plain `node` runs. Started through tsx, the init stage spent ~260 ms
 * compiling TypeScript to do 2 ms of syscalls; the bundle starts in a fraction of that.
 *
 * runc does the same trick: its init stage is the runc binary re-executed (`runc init`), not a
 * second program; only here the "binary" is built from the attendee's own file, on demand.
 *
 * Cache: one directory per level file under {@link cacheDir}, holding `manifest.json` (every input
 * file with the sha256 of the bytes esbuild compiled, the Node version, the bundle's own sha256)
 * and the content-named bundle. Every use re-hashes the inputs and the bundle (a few ms), so an
 * edit anywhere in what the level imports rebuilds it, and a truncated bundle is never run.
 * Files are written to a temp name and renamed, so two first runs at once both build and
 * neither ever sees half a file.
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type { Plugin } from 'esbuild';

/** Bump when the manifest's meaning or the build options change (they are not an input file). */
const FORMAT = 3;

/**
 * Packages the bundle loads from node_modules at run time, by absolute path: native code
 * (koffi), esbuild itself, and the big ones only some commands need (commander, tar-stream):
 * left out, they cost the init stage nothing, not even parsing.
 */
const EXTERNAL = ['koffi', 'esbuild', 'commander', 'tar-stream'];

/** The manifest next to a bundle: what it was built from. */
interface Manifest {
  format: number;
  node: string;
  /** the bundle's file name in the same directory, and the sha256 of its bytes */
  bundle: string;
  sha256: string;
  /** every file the build read, with the sha256 of its bytes then */
  inputs: [file: string, sha256: string][];
  /** the level file it bundles (older manifests: their first input) */
  entry?: string;
}

/** Set by esbuild's `define` in a bundle: the bundle's own path. Undefined when tsx runs the source. */
declare const CALF_BUNDLE_FILE: string | undefined;

/** This process's bundle, when it runs from one (the fast entry, or an init stage). */
export function runningBundle(): string | undefined {
  return typeof CALF_BUNDLE_FILE === 'string' ? CALF_BUNDLE_FILE : undefined;
}

/** Where bundles are cached: `$CALF_CACHE`, else `$XDG_CACHE_HOME/calf/bundles`, else `~/.cache/calf/bundles`. */
export function cacheDir(): string {
  if (process.env.CALF_CACHE) return process.env.CALF_CACHE;
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'calf', 'bundles');
}

function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The sha256 of a file's bytes, or undefined when it cannot be read. */
function hashFile(file: string): string | undefined {
  try {
    return sha256(fs.readFileSync(file));
  } catch {
    return undefined;
  }
}

/** The cache directory of one level file. */
function entryDir(entry: string): string {
  return path.join(cacheDir(), sha256(fs.realpathSync(entry)).slice(0, 16));
}

/**
 * The cached bundle of `entry`, if it is current: built by this Node version from files that
 * all still have the bytes it was built from, and itself intact. Otherwise undefined.
 */
export function cachedBundle(entry: string): string | undefined {
  const dir = entryDir(entry);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
  } catch {
    return undefined; // none yet, or corrupt: rebuild
  }
  if (manifest.format !== FORMAT || manifest.node !== process.version || !Array.isArray(manifest.inputs)) return undefined;
  for (const [file, hash] of manifest.inputs) if (hashFile(file) !== hash) return undefined;
  const bundle = path.join(dir, path.basename(String(manifest.bundle)));
  return hashFile(bundle) === manifest.sha256 ? bundle : undefined;
}

/** Write a file so that readers see nothing or all of it. */
function writeAtomic(file: string, data: string | Uint8Array): void {
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(temp, data, { mode: 0o644 });
  fs.renameSync(temp, file);
}

/** esbuild's loader for a file, by its extension. */
function loaderOf(file: string): 'ts' | 'js' | 'json' {
  if (/\.[cm]?ts$/.test(file)) return 'ts';
  return file.endsWith('.json') ? 'json' : 'js';
}

/**
 * Bundle `entry` with esbuild into the cache, and return the bundle's path. Every file is read
 * once, by the plugin below, and hashed from those same bytes: an edit during the build makes
 * the next use rebuild, never run a bundle that mixes versions.
 */
export async function buildBundle(entry: string): Promise<string> {
  const { build, stop, version } = await import('esbuild');
  const resolve = createRequire(path.resolve(entry)).resolve;
  const inputs = new Map<string, string>();
  const hashing: Plugin = {
    name: 'calf-inputs',
    setup(b) {
      b.onResolve({ filter: new RegExp(`^(${EXTERNAL.join('|')})$`) }, (args) => ({ path: resolve(args.path), external: true }));
      b.onLoad({ filter: /.*/, namespace: 'file' }, (args) => {
        const contents = fs.readFileSync(args.path);
        inputs.set(args.path, sha256(contents));
        return { contents, loader: loaderOf(args.path) };
      });
    },
  };
  // esbuild's service process ends with the build: it would otherwise stay calf's child while the
  // container runs (beside the container's first process, in ps and in /proc/PID/task/*/children)
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'cjs', // Node loads CommonJS without the ESM loader's extra turns
    target: `node${process.versions.node}`,
    supported: { 'dynamic-import': false }, // import() of an external becomes require(): still no ESM loader
    define: { CALF_BUNDLE_FILE: '__filename' },
    banner: { js: '"use strict"; globalThis.CALF_BUNDLE_T0 = performance.now(); // lib/core/timing.ts: the directive first, or the bundle is not strict' },
    write: false,
    logLevel: 'silent',
    legalComments: 'none',
    plugins: [hashing],
  }).finally(stop);
  // Settings that change the output without being a file esbuild loads.
  for (const file of [resolve('esbuild/package.json'), findUp(path.dirname(path.resolve(entry)), 'tsconfig.json')]) {
    if (file) inputs.set(file, hashFile(file) ?? '');
  }
  const code = Buffer.from(sharedInterop(result.outputFiles[0]!.text));
  const hash = sha256(code);
  const dir = entryDir(entry);
  fs.mkdirSync(dir, { recursive: true });
  const bundle = path.join(dir, `${hash.slice(0, 16)}.cjs`);
  writeAtomic(bundle, code); // content-named: two builders write the same bytes under the same name
  const manifest: Manifest = { format: FORMAT, node: process.version, bundle: path.basename(bundle), sha256: hash, inputs: [...inputs], entry: path.resolve(entry) };
  writeAtomic(path.join(dir, 'manifest.json'), `${JSON.stringify({ ...manifest, esbuild: version }, null, 1)}\n`);
  removeOldBundles(dir, bundle);
  removeOrphanedBundles(dir);
  return bundle;
}

/**
 * esbuild's CommonJS output wraps every `import fs from 'node:fs'` of every module in a new
 * object with a getter per export (`__toESM`): calf's ~80 such imports cost ~10 ms and garbage
 * on each start. One wrapper per module serves them all (the getters read the module live, so
 * sharing changes nothing). A bundle whose helper reads differently is left as it is.
 */
function sharedInterop(code: string): string {
  const helper = 'var __toESM = (mod, isNodeMode, target) => (';
  if (!code.includes(helper)) return code;
  return code.replace(helper, [
    'var __toESMs = new WeakMap();',
    'var __toESM = (mod, isNodeMode) => {',
    '  if (!mod || typeof mod !== "object" && typeof mod !== "function") return __toESMOnce(mod, isNodeMode);',
    '  let both = __toESMs.get(mod);',
    '  if (!both) __toESMs.set(mod, both = []);',
    '  return both[isNodeMode ? 1 : 0] ??= __toESMOnce(mod, isNodeMode);',
    '};',
    'var __toESMOnce = (mod, isNodeMode, target) => (',
  ].join('\n'));
}

/** Bundles superseded more than an hour ago: a run that validated one just before has long started it. */
function removeOldBundles(dir: string, keep: string): void {
  for (const name of fs.readdirSync(dir)) {
    const file = path.join(dir, name);
    if (file === keep || name === 'manifest.json') continue;
    try {
      if (Date.now() - fs.statSync(file).mtimeMs > 3_600_000) fs.rmSync(file, { force: true });
    } catch {
      // another run removed it first
    }
  }
}

/**
 * The cache directories of level files that are gone (a deleted copy, a checkout cloned again),
 * untouched for an hour: nothing can run their bundles again. Looked for at each build, which
 * an edit makes, so the cache holds about one bundle per level file that exists.
 */
function removeOrphanedBundles(keep: string): void {
  const cache = path.dirname(keep);
  for (const name of fs.readdirSync(cache)) {
    const dir = path.join(cache, name);
    if (dir === keep) continue;
    try {
      const manifestFile = path.join(dir, 'manifest.json');
      const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as Partial<Manifest>;
      const entry = manifest.entry ?? manifest.inputs?.[0]?.[0];
      if (!entry || fs.existsSync(entry) || Date.now() - fs.statSync(manifestFile).mtimeMs < 3_600_000) continue;
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // not a bundle's directory (no manifest), or another build removed it first
    }
  }
}

function findUp(dir: string, name: string): string | undefined {
  for (let d = dir; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, name))) return path.join(d, name);
    if (d === path.dirname(d)) return undefined;
  }
}

/** The current bundle of `entry`: the cached one, or a new build. */
export async function ensureBundle(entry: string): Promise<string> {
  return cachedBundle(entry) ?? buildBundle(entry);
}

let prepared: string | undefined;

/**
 * Make sure the init stage's bundle is current before the level's `run()` needs it
 * (`main()` in lib/runtime/cli.ts calls this: esbuild's API is asynchronous, the level's spawn is not).
 */
export async function prepareInitEntry(): Promise<void> {
  prepared = runningBundle() ?? await ensureBundle(process.argv[1]!);
}

/**
 * The script the init stage runs: this level file, bundled, for plain `node` (no tsx, no
 * TypeScript to compile: the stage starts several times faster). When calf already runs from
 * its bundle, that same file.
 */
export function initEntry(): string {
  const entry = prepared ?? runningBundle() ?? cachedBundle(process.argv[1]!);
  if (!entry) throw new Error('initEntry(): no bundle of this level file yet (main() builds it before run())');
  return entry;
}

/**
 * The init stage's environment: calf's own, minus what only changes or slows Node's start
 * (`NODE_OPTIONS` could load tsx again, `NODE_EXTRA_CA_CERTS` makes every start parse a
 * certificate file). The command's environment is not this one: it travels in the config.
 */
export function initEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(NODE_|UV_|TSX_)/.test(key)));
}
