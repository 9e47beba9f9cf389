/**
 * Hostile images: a small valid image (OCI layout or docker archive), then its JSON mutated where
 * calf reads it (index.json, a nested index, the manifest, the config, a docker archive's
 * manifest.json): wrong types, missing fields, huge arrays, unknown media types, bad digests and
 * sizes, bytes that are not JSON; and its files: missing, a directory, a FIFO, a device, a symlink
 * out of the layout. The parents' digests are fixed up after a mutation most of the time, so the
 * mutation gets past the hash checks to the code that reads it.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { Rng } from './rng.js';
import { tar, type RawEntry } from './tar.js';
import type { Sandbox } from './sandbox.js';
import type { Scale } from './layer-cases.js';
import { ociArchitecture } from '../../lib/image/store.js';

export type Form = 'oci-dir' | 'oci-tar' | 'oci-tgz' | 'docker-dir' | 'docker-tar';

/** A file of the input, as the case writes it. */
export interface InputFile {
  path: string;
  kind: 'file' | 'dir' | 'symlink' | 'fifo' | 'chardev';
  data?: Buffer;
  target?: string;
}

export interface ImageCase {
  form: Form;
  files: InputFile[];
  notes: string[];
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type DocName = 'layer' | 'config' | 'manifest' | 'nested' | 'index' | 'docker';

function sha(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

const MEDIA = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
};
const ODD_MEDIA = [
  'application/vnd.oci.image.layer.v1.tar+zstd', 'application/vnd.docker.image.rootfs.diff.tar.gzip', 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws', 'application/vnd.cncf.helm.config.v1+json', 'application/vnd.in-toto+json', 'application/octet-stream',
  'text/plain', '', 'APPLICATION/VND.OCI.IMAGE.MANIFEST.V1+JSON', MEDIA.index, MEDIA.manifest, MEDIA.config, MEDIA.layer,
];

export function imageCase(seed: number | string, index: number, box: Sandbox, scale: Scale): ImageCase {
  const rng = new Rng(seed, index);
  const notes: string[] = [];
  const form = rng.weighted<Form>([[4, 'oci-dir'], [2, 'oci-tar'], [1, 'oci-tgz'], [2, 'docker-dir'], [2, 'docker-tar']]);
  const docker = form.startsWith('docker');
  notes.push(`form ${form}`);

  // ── the valid image ──
  const layerTars = [tar([{ name: 'bin/', type: '5' }, { name: 'bin/hello', type: '0', data: Buffer.from(`hello ${rng.next()}\n`), mode: 0o755 }])];
  if (rng.chance(0.3)) layerTars.push(tar([{ name: 'etc/', type: '5' }, { name: 'etc/motd', type: '0', data: Buffer.from('second layer\n') }]));
  const gzipped = !docker && rng.chance(0.5);
  const layers = layerTars.map((t) => (gzipped ? gzipSync(t) : t));
  const tag = `fuzz-${index}:v${rng.int(1, 3)}`;
  const docs: Partial<Record<DocName, Json>> = {
    config: {
      architecture: ociArchitecture(), os: 'linux', created: '2024-01-01T00:00:00Z',
      config: { Cmd: ['/bin/hello'], Env: ['PATH=/bin'], WorkingDir: '/', User: '' },
      rootfs: { type: 'layers', diff_ids: layerTars.map((t) => `sha256:${sha(t)}`) },
      history: [{ created: '2024-01-01T00:00:00Z', created_by: 'fuzz' }],
    },
  };
  const nested = !docker && rng.chance(0.25);
  if (docker) {
    docs.docker = [{ Config: '@@file:config', RepoTags: [tag], Layers: layers.map((_, i) => `@@file:layer${i}`) }];
  } else {
    docs.manifest = {
      schemaVersion: 2, mediaType: MEDIA.manifest,
      config: { mediaType: MEDIA.config, digest: '@@digest:config', size: '@@size:config' },
      layers: layers.map((_, i) => ({ mediaType: gzipped ? MEDIA.layerGzip : MEDIA.layer, digest: `@@digest:layer${i}`, size: `@@size:layer${i}` })),
    };
    const top = nested ? 'nested' : 'manifest';
    if (nested) {
      docs.nested = {
        schemaVersion: 2, mediaType: MEDIA.index,
        manifests: [
          { mediaType: MEDIA.manifest, digest: `sha256:${'e'.repeat(64)}`, size: 7, platform: { architecture: ociArchitecture() === 'amd64' ? 'arm64' : 'amd64', os: 'linux' } },
          { mediaType: MEDIA.manifest, digest: '@@digest:manifest', size: '@@size:manifest', platform: { architecture: ociArchitecture(), os: 'linux' } },
        ],
      };
    }
    docs.index = {
      schemaVersion: 2, mediaType: MEDIA.index,
      manifests: [{ mediaType: nested ? MEDIA.index : MEDIA.manifest, digest: `@@digest:${top}`, size: `@@size:${top}`, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    };
  }

  // ── structural mutations ──
  const targets = (Object.keys(docs) as DocName[]);
  const mutations = rng.weighted([[1, 0], [6, 1], [3, 2], [1, 4]] as const);
  bigDone = false;
  for (let i = 0; i < mutations; i++) {
    const doc = rng.pick(targets);
    const [value, note] = mutateAt(docs[doc]!, rng, box, scale);
    docs[doc] = value;
    notes.push(`${doc}: ${note}`);
  }

  // ── serialise, bottom up, fixing up digests (mostly) ──
  const blobs = new Map<string, Buffer>(); // ref name → bytes
  layers.forEach((bytes, i) => blobs.set(`layer${i}`, bytes));
  const byteDamage = rng.chance(0.12) ? rng.pick(['config', 'manifest', 'nested', 'index', 'docker'].filter((d) => d in docs)) : undefined;
  const stale = rng.chance(0.1);
  if (stale) notes.push('parents keep the digests of the unmutated documents');
  const original = new Map<string, Buffer>();
  const serialise = (name: DocName): Buffer => {
    const text = JSON.stringify(docs[name], (_key, v: unknown) => resolveRef(v, blobs, original, stale));
    let bytes: Buffer = Buffer.from(text ?? 'null');
    original.set(name, bytes);
    if (byteDamage === name) {
      const [damaged, note] = damageBytes(bytes, rng);
      bytes = damaged;
      notes.push(`${name} bytes: ${note}`);
    }
    blobs.set(name, bytes);
    return bytes;
  };
  serialise('config');
  const files: InputFile[] = [];
  if (docker) {
    const configName = `${sha(blobs.get('config')!)}.json`;
    files.push({ path: configName, kind: 'file', data: blobs.get('config')! });
    layers.forEach((bytes, i) => files.push({ path: `${sha(bytes)}/layer.tar`, kind: 'file', data: bytes }));
    blobs.set('@file:config', Buffer.from(configName));
    layers.forEach((bytes, i) => blobs.set(`@file:layer${i}`, Buffer.from(`${sha(bytes)}/layer.tar`)));
    files.push({ path: 'manifest.json', kind: 'file', data: serialise('docker') });
    if (rng.chance(0.3)) files.push({ path: 'repositories', kind: 'file', data: Buffer.from('{"fuzz":{"v1":"x"}}') });
  } else {
    serialise('manifest');
    if (nested) serialise('nested');
    for (const [name, bytes] of blobs) if (name !== 'index' && !name.startsWith('@')) files.push({ path: `blobs/sha256/${sha(bytes)}`, kind: 'file', data: bytes });
    files.push({ path: 'index.json', kind: 'file', data: serialise('index') });
    files.push({ path: 'oci-layout', kind: 'file', data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') });
  }

  // ── file-level mutations ──
  if (rng.chance(0.2)) {
    const file = rng.pick(files);
    const kind = rng.pick(['missing', 'dir', 'fifo', 'chardev', 'symlink-out', 'symlink-loop', 'empty', 'huge-sparse'] as const);
    notes.push(`file ${file.path}: ${kind}`);
    switch (kind) {
      case 'missing': files.splice(files.indexOf(file), 1); break;
      case 'dir': file.kind = 'dir'; delete file.data; break;
      case 'fifo': file.kind = 'fifo'; delete file.data; break;
      case 'chardev': file.kind = 'chardev'; delete file.data; break; // 1:5, /dev/zero: endless zeros
      case 'symlink-out': file.kind = 'symlink'; file.target = rng.pick([`${box.outside}/secret`, '../outside/secret', '../../../outside/passwd', '/dev/zero', box.outside]); delete file.data; break;
      case 'symlink-loop': file.kind = 'symlink'; file.target = file.path.split('/').pop()!; delete file.data; break;
      case 'empty': file.data = Buffer.alloc(0); break;
      case 'huge-sparse': file.data = Buffer.concat([file.data ?? Buffer.alloc(0), Buffer.alloc(rng.int(1, 3) << 20, 0x20)]); break;
    }
  }
  if (!docker && rng.chance(0.05)) {
    const layout = files.find((f) => f.path === 'oci-layout');
    if (layout) layout.data = Buffer.from(rng.pick(['{"imageLayoutVersion":"2.0.0"}', 'garbage', '[]', '']));
    notes.push('oci-layout damaged');
  }
  // A symlinked blob whose target has exactly the content its digest names: a read of a host file.
  if (!docker && rng.chance(0.04)) {
    const secret = readFileSync(`${box.outside}/secret`);
    const hex = sha(secret);
    const indexFile = files.find((f) => f.path === 'index.json');
    if (indexFile) {
      files.push({ path: `blobs/sha256/${hex}`, kind: 'symlink', target: rng.pick([`${box.outside}/secret`, '../../../../outside/secret']) });
      indexFile.data = Buffer.from(JSON.stringify({
        schemaVersion: 2, manifests: [{ mediaType: MEDIA.manifest, digest: `sha256:${hex}`, size: secret.length, annotations: { 'org.opencontainers.image.ref.name': tag } }],
      }));
      notes.push('index.json points at a blob that is a symlink to a canary file, with its digest');
    }
  }
  return { form, files, notes };
}

function resolveRef(v: unknown, blobs: Map<string, Buffer>, original: Map<string, Buffer>, stale: boolean): unknown {
  if (typeof v !== 'string' || !v.startsWith('@@')) return v;
  const [what, ref] = v.slice(2).split(':') as [string, string];
  if (what === 'file') return blobs.get(`@file:${ref}`)?.toString() ?? v;
  const bytes = (stale ? original.get(ref) : undefined) ?? blobs.get(ref);
  if (!bytes) return v;
  return what === 'digest' ? `sha256:${sha(bytes)}` : bytes.length;
}

/** Mutate the JSON value `doc` somewhere inside it. */
export function mutateAt(doc: Json, rng: Rng, box: Sandbox, scale: Scale, newCase = false): [Json, string] {
  if (newCase) bigDone = false;
  const path: (string | number)[] = [];
  const descend = (v: Json): Json => {
    if (rng.chance(0.25)) return mutate(v, rng, path, box, scale);
    if (Array.isArray(v) && v.length > 0) {
      const i = rng.int(0, v.length - 1);
      path.push(i);
      const copy = [...v];
      copy[i] = descend(v[i]!);
      return copy;
    }
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const keys = Object.keys(v);
      if (keys.length === 0) return mutate(v, rng, path, box, scale);
      const key = rng.pick(keys);
      path.push(key);
      return { ...v, [key]: descend(v[key]!) };
    }
    return mutate(v, rng, path, box, scale);
  };
  const value = descend(doc);
  return [value, lastNote];
}

let lastNote = '';
/** One big mutation (huge, deep, doubled) per case: two of them multiply into documents no one could write out. */
let bigDone = false;

function mutate(v: Json, rng: Rng, path: (string | number)[], box: Sandbox, scale: Scale): Json {
  const tenth = scale === 'full' ? 1 : 10; // the short run's big is a tenth
  const at = path.length ? path.join('.') : '(top)';
  const big = bigDone ? 0 : 1;
  const op = rng.weighted([
    [3, 'delete'], [4, 'type'], [2 * big, 'huge-array'], [2, 'media-type'], [3, 'digest'], [2, 'size'], [2, 'name'], [big, 'deep'], [big, 'huge-string'], [1, 'empty'], [1, 'add-key'], [big, 'duplicate'],
  ] as const);
  if (['huge-array', 'deep', 'huge-string', 'duplicate'].includes(op)) bigDone = true;
  lastNote = `${op} at ${at}`;
  switch (op) {
    case 'delete': return undefined as unknown as Json; // JSON.stringify drops an undefined member; in an array it becomes null
    case 'type': return rng.pick<Json>([null, true, false, 0, -1, 1.5, 1e308, '', 'x', [], {}, [1, 2], { a: 1 }, '0', 'null']);
    case 'huge-array': {
      const n = rng.pick([1000, 100_000]) / tenth;
      const element = Array.isArray(v) && v.length ? v[0]! : v;
      lastNote += ` (${n})`;
      return new Array<Json>(n).fill(element);
    }
    case 'media-type': return rng.pick(ODD_MEDIA);
    case 'digest': return rng.pick<Json>([
      `sha512:${'a'.repeat(128)}`, `sha256:${'A'.repeat(64)}`, `sha256:${'a'.repeat(63)}`, `sha256:${'a'.repeat(65)}`, 'sha256:', `${'a'.repeat(64)}`,
      `sha256:${'0'.repeat(64)}`, `sha256:../../${'a'.repeat(58)}`, `sha256:${'a'.repeat(64)}\n`, `md5:${'a'.repeat(32)}`, 'sha256:@@', `sha256:${'a'.repeat(64)}/../..`,
      '@@digest:config', '@@digest:layer0', '@@digest:manifest', '@@digest:index', '@@digest:nested',
    ]);
    case 'size': return rng.pick<Json>([-1, 0, 1, 1.5, 2 ** 53, 1e300, '12', null, '@@size:layer0', '@@size:config']);
    case 'name': return rng.pick<Json>([
      '', ' ', ':', '@', 'UPPER:Case', 'a:b:c', '../../x', 'a\nb', 'x'.repeat(10_000), `busybox@sha256:${'a'.repeat(64)}`, 'localhost:5000/x', 'sha256:abc',
      '/etc/passwd', `${box.outside}/secret`, '../../outside/secret', 'missing/layer.tar', '.', '..', 'blobs', 'manifest.json', '@@file:layer0', '@@file:config',
    ]);
    case 'deep': { let d: Json = 1; for (let i = 0; i < rng.pick([100, 10_000]); i++) d = [d]; return d; }
    case 'huge-string': return 'h'.repeat(rng.pick([100_000, 10_000_000]) / tenth);
    case 'empty': return Array.isArray(v) ? [] : v && typeof v === 'object' ? {} : '';
    case 'add-key': return v && typeof v === 'object' && !Array.isArray(v) ? { ...v, [rng.pick(['__proto__', 'constructor', 'extra', 'Config', 'layers'])]: rng.pick<Json>([1, 'x', null, {}]) } : v;
    case 'duplicate': return Array.isArray(v) && v.length ? [...v, ...v] : v;
  }
}

function damageBytes(bytes: Buffer, rng: Rng): [Buffer, string] {
  const kind = rng.pick(['truncate', 'bom', 'utf16', 'nul', 'trailing', 'not-json', 'empty'] as const);
  switch (kind) {
    case 'truncate': return [bytes.subarray(0, rng.int(0, bytes.length - 1)), kind];
    case 'bom': return [Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes]), kind];
    case 'utf16': return [Buffer.from(bytes.toString('utf8'), 'utf16le'), kind];
    case 'nul': return [Buffer.concat([bytes, Buffer.alloc(3)]), kind];
    case 'trailing': return [Buffer.concat([bytes, Buffer.from(' {"x":1}')]), kind];
    case 'not-json': return [rng.bytes(rng.int(0, 300)), kind];
    case 'empty': return [Buffer.alloc(0), kind];
  }
}

/** The case's input as a tar (for the archive forms): entries for FIFOs, devices and symlinks too. */
export function archiveOf(files: InputFile[]): Buffer {
  const entries: RawEntry[] = [];
  const dirs = new Set<string>();
  for (const f of files) {
    const parts = f.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = `${parts.slice(0, i).join('/')}/`;
      if (!dirs.has(dir)) {
        dirs.add(dir);
        entries.push({ name: dir, type: '5', mode: 0o755 });
      }
    }
    switch (f.kind) {
      case 'file': entries.push({ name: f.path, type: '0', data: f.data ?? Buffer.alloc(0) }); break;
      case 'dir': entries.push({ name: `${f.path}/`, type: '5' }); break;
      case 'symlink': entries.push({ name: f.path, type: '2', linkname: f.target ?? '' }); break;
      case 'fifo': entries.push({ name: f.path, type: '6' }); break;
      case 'chardev': entries.push({ name: f.path, type: '3', devmajor: 1, devminor: 5, mode: 0o666 }); break;
    }
  }
  return tar(entries);
}

export function describeImageCase(c: ImageCase): string {
  return c.notes.join(', ');
}
