/**
 * One fuzz case, run in this process: make the input, hand it to calf's code, and judge what
 * happened: success or one clean line (oracle.ts), the canary tree unchanged (sandbox.ts), the
 * store whole (lib/image/check.ts), nothing left in the temp directory.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { ensureLayers } from '../../lib/image/layers.js';
import { loadImages } from '../../lib/image/load.js';
import { ImageNotFoundError, listImages, resolveImage, type ResolvedImage } from '../../lib/image/store.js';
import { extractArchive, unpackLayer } from '../../lib/image/unpack.js';
import { checkStore } from '../../lib/image/check.js';
import { mknod, makedev, S_IFCHR } from '../../lib/linux/stat.js';
import { messageOf } from '../../lib/core/errors.js';
import { describeLayerCase, layerCase, type LayerCase, type Scale } from './layer-cases.js';
import { archiveOf, describeImageCase, imageCase, type ImageCase, type InputFile } from './image-cases.js';
import { goodLayout, storeCase, type StoreCase } from './store-cases.js';
import { pruneStore, removeImage } from '../../lib/image/remove.js';
import { unclean } from './oracle.js';
import { canaryDiff, canaryPrint, emptyDir, type Sandbox } from './sandbox.js';
import { gzipSync } from 'node:zlib';

export type Target = 'layer' | 'image' | 'store';

/** How one case ended. */
export interface CaseResult {
  index: number;
  target: Target;
  /** ok: success; refused: one clean error line; finding: something the fuzzer exists to find */
  outcome: 'ok' | 'refused' | 'finding';
  /** the error line calf would print, when it refused */
  line?: string;
  /** what was found: `kind: detail` each */
  findings: string[];
  /** what the generator made */
  input: string;
  /** sha256 of the input bytes: a replayed case must make the same */
  fingerprint: string;
  ms: number;
}

export interface CaseContext {
  box: Sandbox;
  seed: number | string;
  scale: Scale;
  baseline: Map<string, string>;
  /** run `calf load` too, and check what it prints, for every Nth image case calf refuses (0: never) */
  cliEvery?: number;
  /** the repo, for bin/calf.cjs */
  repo: string;
}

/** The target of case `index` when both are fuzzed: they alternate. */
export function targetOf(index: number, targets: readonly Target[]): Target {
  return targets[index % targets.length]!;
}

/** A case made from its seed and number, not yet run. */
export type MadeCase = { index: number; input: string; fingerprint: string } & (
  { target: 'layer'; layer: LayerCase } | { target: 'image'; image: ImageCase } | { target: 'store'; store: StoreCase }
);

/** Make case `index`; `input` says in a line what it is (said before it runs: a case that hangs says nothing after). */
export function makeCase(index: number, target: Target, ctx: Pick<CaseContext, 'seed' | 'box' | 'scale'>): MadeCase {
  // The sandbox's name is random and the inputs name it (links at the canary): leave it out.
  const print = (...parts: (Buffer | string)[]): string => {
    const hash = createHash('sha256');
    for (const part of parts) {
      const bytes = (Buffer.isBuffer(part) ? part : Buffer.from(part)).toString('latin1');
      hash.update(bytes.split(ctx.box.dir).join('<sandbox>'), 'latin1');
    }
    return hash.digest('hex');
  };
  if (target === 'layer') {
    const layer = layerCase(ctx.seed, index, ctx.box, ctx.scale);
    // Its bytes hold the sandbox's paths inside checksummed headers and gzip: print the same case made for a fixed one.
    const fixed = layerCase(ctx.seed, index, { ...ctx.box, dir: '/calf-fuzz-sandbox', outside: '/calf-fuzz-sandbox/outside' }, ctx.scale);
    return { index, target, layer, input: describeLayerCase(layer), fingerprint: print(fixed.mode, fixed.base ?? '', fixed.blob) };
  }
  if (target === 'store') {
    const store = storeCase(ctx.seed, index, ctx.box, ctx.scale);
    return { index, target, store, input: store.notes.join(', '), fingerprint: print(store.notes.join(), ...[...store.layout].flat()) };
  }
  const image = imageCase(ctx.seed, index, ctx.box, ctx.scale);
  return {
    index, target, image, input: describeImageCase(image),
    fingerprint: print(image.form, ...image.files.flatMap((f) => [f.path, f.kind, f.target ?? '', f.data ?? ''])),
  };
}

export async function runCase(made: MadeCase, ctx: CaseContext): Promise<CaseResult> {
  const { index, target, input } = made;
  const started = performance.now();
  const { box } = ctx;
  emptyDir(box.target);
  emptyDir(box.input);
  emptyDir(box.tmp);
  // The store is kept between image cases (a bad load must not spoil it for the next), and emptied now and then.
  if (target !== 'image' || index % 20 === 0) emptyDir(box.root);
  const findings: string[] = [];
  let line: string | undefined;
  const { fingerprint } = made;
  const judge = (error: unknown, prefix: string, exitCodes?: number[]): void => {
    const why = unclean(error, prefix, exitCodes);
    if (why) findings.push(`unclean: ${why}`);
    line ??= `calf: ${messageOf(error)}`;
  };

  if (made.target === 'layer') {
    const c = made.layer;
    const blob = path.join(box.input, c.diffId.slice(7));
    fs.writeFileSync(blob, c.blob);
    try {
      if (c.base) {
        const base = path.join(box.input, 'base.tar');
        fs.writeFileSync(base, c.base);
        await unpackLayer(base, box.target);
      }
      if (c.mode === 'apply') await unpackLayer(blob, box.target);
      else if (c.mode === 'archive') await extractArchive(blob, box.target);
      else {
        const image: ResolvedImage = {
          name: 'fuzz:latest', id: c.diffId, config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [c.diffId] } },
          layers: [{ digest: c.diffId, mediaType: '', size: c.blob.length, path: blob }],
        };
        await ensureLayers(image, {}, box.root);
      }
    } catch (error) {
      judge(error, c.mode === 'archive' ? 'archive ' : 'layer ');
    }
    for (const problem of checkStore(box.root)) findings.push(`store: ${problem}`);
  } else if (made.target === 'store') {
    findings.push(...await storeRun(made.store, box, judge));
  } else {
    const c = made.image;
    const where = writeInput(c.form, c.files, box.input);
    const inputBefore = treePrint(box.input);
    let loaded = false;
    try {
      const names = await loadImages(where, box.root);
      loaded = true;
      // What `calf run` and `calf images` do with what was loaded.
      for (const name of names) await ensureLayers(resolveImage(name, box.root), {}, box.root);
      listImages(box.root);
    } catch (error) {
      judge(error, loaded ? '' : 'cannot load "');
      if (!loaded && ctx.cliEvery && index % ctx.cliEvery < 2 && !findings.length) findings.push(...cliCheck(where, box, ctx.repo));
    }
    if (treePrint(box.input) !== inputBefore) findings.push('input: calf changed the image it was loading');
    for (const problem of checkStore(box.root)) findings.push(`store: ${problem}`);
    const leak = storeLeak(box);
    if (leak) findings.push(`leak: ${leak}`);
  }

  const diff = canaryDiff(ctx.baseline, canaryPrint(box));
  if (diff.length) findings.push(`canary: ${diff.slice(0, 5).join('; ')}`);
  const tmpLeft = fs.readdirSync(box.tmp);
  if (tmpLeft.length) findings.push(`leftover: ${tmpLeft.slice(0, 3).join(', ')} in the temp directory`);

  return {
    index, target, outcome: findings.length ? 'finding' : line ? 'refused' : 'ok', ...(line ? { line } : {}), findings, input, fingerprint,
    ms: Math.round(performance.now() - started),
  };
}

/** Write the case's files as its form says; returns what to give `calf load`. */
function writeInput(form: string, files: InputFile[], dir: string): string {
  if (form.endsWith('-dir')) {
    const top = path.join(dir, 'image');
    fs.mkdirSync(top);
    for (const f of files) {
      const p = path.join(top, f.path);
      fs.mkdirSync(path.dirname(p), { recursive: true });
      if (fs.existsSync(p)) continue;
      switch (f.kind) {
        case 'file': fs.writeFileSync(p, f.data ?? Buffer.alloc(0)); break;
        case 'dir': fs.mkdirSync(p); break;
        case 'symlink': fs.symlinkSync(f.target ?? '', p); break;
        case 'fifo': mknod(p, 0o010000 | 0o644); break;
        case 'chardev': mknod(p, S_IFCHR | 0o644, makedev(1, 5)); break;
      }
    }
    return top;
  }
  const tar = archiveOf(files);
  const file = path.join(dir, form === 'oci-tgz' ? 'image.tar.gz' : 'image.tar');
  fs.writeFileSync(file, form === 'oci-tgz' ? gzipSync(tar) : tar);
  return file;
}

/** Names, types and contents under `dir`: calf must not change what it loads from. */
function treePrint(dir: string): string {
  const hash = createHash('sha256');
  const walk = (d: string): void => {
    for (const name of fs.readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = fs.lstatSync(p);
      hash.update(`${p} ${st.mode} ${st.size} ${st.mtimeMs}\n`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return hash.digest('hex');
}

/** A canary file's content in the store means calf read a host file through a link. */
function storeLeak(box: Sandbox): string | undefined {
  const blobs = path.join(box.root, 'images/blobs/sha256');
  let names: string[] = [];
  try {
    names = fs.readdirSync(blobs);
  } catch {
    return undefined;
  }
  for (const name of names) {
    const p = path.join(blobs, name);
    if (fs.lstatSync(p).isFile() && fs.readFileSync(p).includes(box.token)) return `${p} holds a canary file's content`;
  }
  return undefined;
}

/** `calf load` as a user runs it: exit 125, one line on stderr, nothing on stdout. */
function cliCheck(input: string, box: Sandbox, repo: string): string[] {
  const result = spawnSync(process.execPath, [path.join(repo, 'bin/calf.cjs'), 'load', '-i', input], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', CALF_ROOT: box.root, TMPDIR: box.tmp, HOME: process.env.HOME ?? '/root' },
    encoding: 'utf8', timeout: 60_000,
  });
  const out: string[] = [];
  const lines = result.stderr.split('\n').filter(Boolean);
  if (result.status !== 125) out.push(`cli: calf load exited ${result.status ?? result.signal}, not 125`);
  if (lines.length !== 1 || !lines[0]!.startsWith('calf: cannot load "')) out.push(`cli: calf load printed ${lines.length} lines: ${lines.slice(0, 3).join(' | ').slice(0, 300)}`);
  if (result.stdout) out.push(`cli: calf load wrote on stdout: ${result.stdout.slice(0, 100)}`);
  return out;
}

/** A store damaged after a good load: what reads it must end cleanly, and the store check must see what breaks them. */
async function storeRun(c: StoreCase, box: Sandbox, judge: (error: unknown, prefix: string, exitCodes?: number[]) => void): Promise<string[]> {
  const findings: string[] = [];
  const layout = path.join(box.input, 'layout');
  for (const [rel, bytes] of c.layout) {
    fs.mkdirSync(path.dirname(path.join(layout, rel)), { recursive: true });
    fs.writeFileSync(path.join(layout, rel), bytes);
  }
  await loadImages(layout, box.root);
  c.damage(box.root);
  let problems: string[] = [];
  try {
    problems = checkStore(box.root);
  } catch (error) {
    findings.push(`store check threw: ${(error as Error).message}`);
  }
  const failed: string[] = [];
  const attempt = async (what: string, action: () => unknown, exitCodes?: number[]): Promise<void> => {
    try {
      await action();
    } catch (error) {
      // A name taken off (index.json mutated) leaves a store that is whole, only without that image.
      if (!(error instanceof ImageNotFoundError)) failed.push(what);
      judge(error, '', exitCodes);
    }
  };
  await attempt('run', async () => ensureLayers(resolveImage(c.tag, box.root), {}, box.root));
  await attempt('images', () => listImages(box.root));
  const other = path.join(box.input, 'other');
  for (const [rel, bytes] of goodLayout('fuzz-other:v1', 'other\n')) {
    fs.mkdirSync(path.dirname(path.join(other, rel)), { recursive: true });
    fs.writeFileSync(path.join(other, rel), bytes);
  }
  await attempt('load', () => loadImages(other, box.root));
  if (failed.length && !problems.length) findings.push(`store check: passed a store that calf ${failed.join(', ')} failed on`);
  await attempt('rmi', () => removeImage(c.tag, () => undefined, box.root), [1]);
  await attempt('image prune', () => pruneStore(box.root));
  try {
    checkStore(box.root);
  } catch (error) {
    findings.push(`store check threw after rmi and prune: ${(error as Error).message}`);
  }
  return findings;
}
