/**
 * Build calf's test images as OCI image layouts in `build/images/<name>/`, from the host's
 * statically linked busybox and the C helpers in `test/helpers/`. No registry needed.
 *
 *   tsx scripts/build-images.ts          build (skipping layouts already up to date)
 *   tsx scripts/build-images.ts --load   build, then load them into the store at calfRoot()
 *   tsx scripts/build-images.ts --check  build nothing: exit 1, saying so, when build/images is out of date
 *
 * The build is deterministic (fixed mtimes, sorted entries, uid/gid 0, gzip without a timestamp),
 * so the digests only change when busybox, a helper or this file does.
 * @module
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { basename, join, posix, resolve } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { pack as tarPack, type Header } from 'tar-stream';
import { loadImages } from '../lib/image/load.js';
import { sha256Digest } from '../lib/image/digest.js';
import { calfRoot } from '../lib/core/root.js';
import {
  MediaType, ociArchitecture, REF_NAME, type Descriptor, type ImageConfigFile, type ImageIndex,
  type ImageManifest,
} from '../lib/image/store.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
/** Every file in every image carries this mtime, so rebuilding gives the same bytes. */
const EPOCH = new Date('2024-01-01T00:00:00Z');
const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const BUSYBOX = '/bin/busybox';

/** One file, directory or symlink of a layer. */
interface LayerEntry {
  path: string;
  type: 'file' | 'directory' | 'symlink';
  mode?: number;
  uid?: number;
  gid?: number;
  content?: Buffer | string;
  linkname?: string;
}

/** A layer, built: the gzipped blob and the digest of the tar inside (its diff_id). */
interface Layer {
  blob: Buffer;
  digest: string;
  diffId: string;
}

/** What {@link buildImages} did for one image. */
export interface BuiltImage {
  /** `busybox:latest` */
  name: string;
  /** the layout directory */
  path: string;
  /** manifest digest */
  digest: string;
  /** false when the layout on disk already had this digest */
  built: boolean;
}

/**
 * Build the `busybox`, `layered` and `calf-test` layouts into `outDir`, compiling the helpers
 * into `helpersDir` first (only those whose source changed). `calf-test` is busybox, the helpers
 * in /usr/local/bin, and level 14's symlink traps in /trap.
 */
export async function buildImages(
  outDir = join(REPO, 'build', 'images'),
  helpersDir = join(REPO, 'build', 'helpers'),
): Promise<BuiltImage[]> {
  const busybox = await layer(busyboxEntries());
  const helpers = await layer(helperEntries(compileHelpers(helpersDir)));
  compileHostHelpers(join(helpersDir, 'host'));
  const layered2 = await layer([
    dir('data'),
    file('data/gone.txt', 'this file is deleted by layer 3\n'),
    file('data/keep.txt', 'this file survives every layer\n'),
    dir('data/opaque'),
    file('data/opaque/old.txt', 'hidden by the opaque marker in layer 3\n'),
    dir('etc'),
    file('etc/motd', 'layered image, layer 2\n'),
  ]);
  const layered3 = await layer([
    dir('data'),
    file('data/.wh.gone.txt', '', 0o600),
    dir('data/opaque'),
    file('data/opaque/.wh..wh..opq', '', 0o600),
    file('data/opaque/new.txt', 'added by layer 3 beside the opaque marker\n'),
    dir('etc'),
    file('etc/motd', 'layered image, layer 3\n'),
  ]);
  const images = [
    writeLayout(outDir, 'busybox', [busybox], { Cmd: ['sh'], Env: [PATH] }),
    writeLayout(outDir, 'layered', [busybox, layered2, layered3], {
      Cmd: ['cat', '/etc/motd'], Env: [PATH, 'LAYERED=3'], WorkingDir: '/data',
    }),
    writeLayout(outDir, 'calf-test', [busybox, helpers, await layer(trapEntries())], { Cmd: ['sh'], Env: [PATH] }),
  ];
  writeAtomic(join(outDir, SOURCES_STAMP), `${sourcesDigest()}\n`);
  return images;
}

/** The file in build/images naming what the layouts were built from: {@link sourcesDigest} then. */
export const SOURCES_STAMP = 'sources.sha256';

/**
 * One digest of everything the images are made from: this file, the helpers' C sources and the
 * host's busybox. The board compares it with {@link SOURCES_STAMP} before a run: layouts built
 * before a change here (level 14's /trap layer, say) would fail checks for reasons no kernel or
 * calf has, and the guest of `npm run test:vm` sees the checkout's build/ as it is.
 */
export function sourcesDigest(): string {
  const hash = createHash('sha256');
  const helpers = join(REPO, 'test', 'helpers');
  const sources = [
    fileURLToPath(import.meta.url),
    ...[helpers, join(helpers, 'host')].flatMap((dir) => readdirSync(dir).filter((n) => n.endsWith('.c')).sort().map((n) => join(dir, n))),
  ];
  for (const path of sources) hash.update(`${posix.relative(REPO, path)}\0`).update(readFileSync(path));
  hash.update(`${BUSYBOX}\0`);
  try {
    hash.update(readFileSync(BUSYBOX));
  } catch {
    // not installed: busyboxEntries says so when building; a check finds the stamp differs
  }
  return `sha256:${hash.digest('hex')}`;
}

/** Why the layouts in `outDir` may not be what this checkout builds, in one line; undefined when they are. */
export function staleImages(outDir = join(REPO, 'build', 'images')): string | undefined {
  let stamp = '';
  try {
    stamp = readFileSync(join(outDir, SOURCES_STAMP), 'utf8').trim();
  } catch {
    // built before the stamp existed, or never
  }
  if (stamp === sourcesDigest()) return undefined;
  const shown = outDir.startsWith(REPO) ? outDir.slice(REPO.length) : outDir;
  return `the test images in ${shown} are out of date (built from another scripts/build-images.ts, test/helpers or ${BUSYBOX}, or not built here): run npm run images`;
}

/** Write `path` whole or not at all: a board reading it while a build runs sees the old or the new. */
function writeAtomic(path: string, content: string): void {
  const temp = `${path}.tmp-${randomBytes(4).toString('hex')}`;
  writeFileSync(temp, content);
  renameSync(temp, path);
}

function busyboxEntries(): LayerEntry[] {
  let binary: Buffer;
  try {
    binary = readFileSync(BUSYBOX);
  } catch {
    throw new Error('busybox-static is not installed: run npm run setup');
  }
  if (!isStaticElf(binary)) {
    throw new Error(`${BUSYBOX} is dynamically linked (Debian's busybox, not busybox-static): run npm run setup`);
  }
  const applets = execFileSync(BUSYBOX, ['--list-full'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  const entries: LayerEntry[] = [
    { path: 'bin/busybox', type: 'file', mode: 0o755, content: binary },
    file('etc/passwd', [
      'root:x:0:0:root:/root:/bin/sh',
      'calf:x:1000:1000:calf:/home/calf:/bin/sh',
      'nobody:x:65534:65534:nobody:/nonexistent:/bin/false',
      '',
    ].join('\n')),
    file('etc/group', ['root:x:0:', 'calf:x:1000:', 'nogroup:x:65534:', ''].join('\n')),
    ...['dev', 'etc', 'home', 'proc', 'sys', 'var'].map((path) => dir(path)),
    { path: 'home/calf', type: 'directory', mode: 0o755, uid: 1000, gid: 1000 },
    { path: 'root', type: 'directory', mode: 0o700 },
    { path: 'tmp', type: 'directory', mode: 0o1777 },
  ];
  for (const applet of applets) {
    if (`/${applet}` === BUSYBOX) continue;
    // Relative links work from the host too (`ls -l rootfs/bin/sh`), not just inside the rootfs.
    entries.push({ path: applet, type: 'symlink', linkname: posix.relative(posix.dirname(`/${applet}`), BUSYBOX) });
  }
  return withParents(entries);
}

function helperEntries(binaries: string[]): LayerEntry[] {
  return withParents(binaries.map((path) => ({
    path: `usr/local/bin/${basename(path)}`, type: 'file', mode: 0o755, content: readFileSync(path),
  })));
}

/**
 * Level 14's traps: symlinks that lead out of the image's root when a runtime follows them on
 * the host, as a malicious image's would. Resolved inside the rootfs, as the container sees them,
 * `/trap/etc` is the image's `/etc` and `/trap/up` its `/`.
 */
function trapEntries(): LayerEntry[] {
  return withParents([
    { path: 'trap/etc', type: 'symlink', linkname: '/etc' }, // runc's CVE-2021-30465 image: a mount path that is a symlink out
    { path: 'trap/up', type: 'symlink', linkname: '../'.repeat(16).slice(0, -1) }, // relative, and climbing past any host path's depth
  ]);
}

/** Compile each `test/helpers/*.c` whose binary is missing or older than its source. */
function compileHelpers(helpersDir: string): string[] {
  const sources = join(REPO, 'test', 'helpers');
  mkdirSync(helpersDir, { recursive: true });
  return readdirSync(sources).filter((name) => name.endsWith('.c')).sort().map((name) => {
    const source = join(sources, name);
    const binary = join(helpersDir, name.slice(0, -2));
    if (existsSync(binary) && statSync(binary).mtimeMs >= statSync(source).mtimeMs) return binary;
    // Compile beside the binary and rename, so a parallel build never sees half a file.
    const temp = `${binary}.tmp-${randomBytes(4).toString('hex')}`;
    try {
      execFileSync('gcc', ['-static', '-O2', '-Wall', '-o', temp, source], { stdio: ['ignore', 'inherit', 'inherit'] });
      renameSync(temp, binary);
    } catch (error) {
      rmSync(temp, { force: true });
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('gcc is not installed: run npm run setup');
      throw new Error(`gcc -static could not compile test/helpers/${name} (see above; static libc comes with libc6-dev)`);
    }
    return binary;
  });
}

/**
 * Compile each `test/helpers/host/*.c` into a shared object `build/helpers/host/NAME.so`: helpers
 * the tests load into processes on the host (LD_PRELOAD), not into the image.
 */
function compileHostHelpers(dir: string): void {
  const sources = join(REPO, 'test', 'helpers', 'host');
  mkdirSync(dir, { recursive: true });
  for (const name of readdirSync(sources).filter((n) => n.endsWith('.c')).sort()) {
    const source = join(sources, name);
    const library = join(dir, `${name.slice(0, -2)}.so`);
    if (existsSync(library) && statSync(library).mtimeMs >= statSync(source).mtimeMs) continue;
    const temp = `${library}.tmp-${randomBytes(4).toString('hex')}`;
    try {
      execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-Wall', '-o', temp, source, '-ldl'], { stdio: ['ignore', 'inherit', 'inherit'] });
      renameSync(temp, library);
    } catch (error) {
      rmSync(temp, { force: true });
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('gcc is not installed: run npm run setup');
      throw new Error(`gcc could not compile test/helpers/host/${name} (see above)`);
    }
  }
}

/**
 * Whether an ELF binary is statically linked: it has no `PT_INTERP` program header naming a
 * dynamic loader. Reads 64-bit little-endian ELF, which is what amd64 and arm64 use.
 */
function isStaticElf(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46) return false;
  const PT_INTERP = 3;
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    if (elf.readUInt32LE(phoff + i * phentsize) === PT_INTERP) return false;
  }
  return true;
}

/** Add an entry for every parent directory the entries need but do not list. */
function withParents(entries: LayerEntry[]): LayerEntry[] {
  const listed = new Set(entries.map((e) => e.path));
  const parents: LayerEntry[] = [];
  for (const entry of entries) {
    for (let parent = posix.dirname(entry.path); parent !== '.'; parent = posix.dirname(parent)) {
      if (!listed.has(parent)) {
        listed.add(parent);
        parents.push(dir(parent));
      }
    }
  }
  return [...entries, ...parents];
}

/** A layer tar: entries sorted (parents first), owned by root unless said, all at {@link EPOCH}. */
async function layer(entries: LayerEntry[]): Promise<Layer> {
  const pack = tarPack();
  const tar = buffer(pack);
  for (const entry of [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    const header: Partial<Header> & { name: string } = {
      name: entry.type === 'directory' ? `${entry.path}/` : entry.path,
      type: entry.type,
      mode: entry.mode ?? (entry.type === 'directory' ? 0o755 : entry.type === 'symlink' ? 0o777 : 0o644),
      uid: entry.uid ?? 0,
      gid: entry.gid ?? 0,
      uname: '',
      gname: '',
      mtime: EPOCH,
      ...(entry.linkname ? { linkname: entry.linkname } : {}),
    };
    await new Promise<void>((done, fail) => {
      pack.entry(header, entry.content ?? '', (error) => (error ? fail(error) : done()));
    });
  }
  pack.finalize();
  const bytes = await tar;
  // Node's gzip header has no timestamp or file name, so equal input gives equal bytes.
  const blob = gzipSync(bytes, { level: 9 });
  return { blob, digest: sha256Digest(blob), diffId: sha256Digest(bytes) };
}

/**
 * Write (or keep) the layout `outDir/<name>`: an OCI layout whose index names the image
 * `<name>:latest`. A layout whose index already points at the same manifest is left alone.
 */
function writeLayout(outDir: string, name: string, layers: Layer[], runConfig: ImageConfigFile['config']): BuiltImage {
  const config: ImageConfigFile = {
    created: EPOCH.toISOString(),
    architecture: ociArchitecture(),
    os: 'linux',
    config: runConfig,
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map(() => ({ created: EPOCH.toISOString(), created_by: `calf scripts/build-images.ts (${name})` })),
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.manifest,
    config: { mediaType: MediaType.config, digest: sha256Digest(configBytes), size: configBytes.length },
    layers: layers.map((l) => ({ mediaType: MediaType.layerGzip, digest: l.digest, size: l.blob.length })),
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const descriptor: Descriptor = {
    mediaType: MediaType.manifest,
    digest: sha256Digest(manifestBytes),
    size: manifestBytes.length,
    annotations: { [REF_NAME]: `${name}:latest` },
  };
  const path = join(outDir, name);
  const image = { name: `${name}:latest`, path, digest: descriptor.digest };
  if (upToDate(path, descriptor.digest)) return { ...image, built: false };

  // Build beside the old layout and swap, so a reader never sees a half-written one.
  mkdirSync(outDir, { recursive: true });
  const temp = join(outDir, `.${name}.tmp-${randomBytes(4).toString('hex')}`);
  try {
    mkdirSync(join(temp, 'blobs', 'sha256'), { recursive: true });
    writeFileSync(join(temp, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.index, manifests: [descriptor] };
    writeFileSync(join(temp, 'index.json'), JSON.stringify(index));
    for (const [digest, bytes] of [
      [descriptor.digest, manifestBytes], [manifest.config.digest, configBytes], ...layers.map((l) => [l.digest, l.blob] as const),
    ] as const) {
      writeFileSync(join(temp, 'blobs', 'sha256', digest.slice('sha256:'.length)), bytes);
    }
    rmSync(path, { recursive: true, force: true });
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { recursive: true, force: true });
    throw error;
  }
  return { ...image, built: true };
}

function upToDate(path: string, digest: string): boolean {
  try {
    const index = JSON.parse(readFileSync(join(path, 'index.json'), 'utf8')) as ImageIndex;
    const manifestPath = join(path, 'blobs', 'sha256', digest.slice('sha256:'.length));
    if (index.manifests[0]?.digest !== digest || !existsSync(manifestPath)) return false;
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as ImageManifest;
    return [manifest.config, ...manifest.layers].every((d) => existsSync(join(path, 'blobs', 'sha256', d.digest.slice('sha256:'.length))));
  } catch {
    // No layout yet, or a broken one: build it.
    return false;
  }
}

function dir(path: string): LayerEntry {
  return { path, type: 'directory' };
}

function file(path: string, content: string, mode = 0o644): LayerEntry {
  return { path, type: 'file', mode, content };
}


async function main(): Promise<void> {
  const { values } = parseArgs({ options: { load: { type: 'boolean', default: false }, check: { type: 'boolean', default: false } } });
  if (values.check) {
    const stale = staleImages();
    if (stale) throw new Error(stale);
    return;
  }
  const images = await buildImages();
  for (const image of images) {
    console.log(`${image.built ? 'built' : 'up to date'}  ${image.name.padEnd(18)} ${image.digest}  ${image.path}`);
  }
  if (values.load) {
    const root = calfRoot();
    for (const image of images) {
      const names = await loadImages(image.path, root);
      console.log(`loaded ${names.join(', ')} into ${root}`);
    }
  }
}

if (process.argv[1] && realpathSync(resolve(process.argv[1])) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(`build-images: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  });
}
