/**
 * Hostile layer tars: entries built from a small pool of names (so they collide: a file over a
 * directory and back), link targets that aim at the canary tree, headers with garbage fields,
 * PAX and GNU long names, whiteouts of odd names, then byte-level damage and gzip.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { Rng } from './rng.js';
import { gnuLong, pax, tar, type RawEntry } from './tar.js';
import type { Sandbox } from './sandbox.js';

/** How a layer case is applied. */
export type LayerMode = 'apply' | 'overlay' | 'archive';

export interface LayerCase {
  mode: LayerMode;
  /** a valid layer applied first (apply mode), with symlinks out of the root for the fuzzed one to follow */
  base?: Buffer;
  /** the fuzzed blob, as written to disk */
  blob: Buffer;
  /** the sha256 of the uncompressed tar, as an image config would list it (overlay mode) */
  diffId: string;
  /** one line per thing the generator did, for the report */
  notes: string[];
}

/** How big the big cases get: `full` for `npm run fuzz`, `short` inside `npm test`. */
export type Scale = 'short' | 'full';

const NAMES = [
  'a', 'a/b', 'a/b/c', 'a/b/c/d', 'd', 'd/e', 'l', 'l/x', 'l/x/y', 'm', 'm/n', 'up/x', 'etc/passwd', 'x', 'y',
  'a/', 'a//b', './a/./b', 'd/../a', './', '.', '', 'l/', 'dev/null', 'usr/lib', 'lib', 'lib/x.so',
];
const HOSTILE_NAMES = ['../x', '../../above.txt', 'a/../../x', '..', '../', '/x', '/etc/calf-fuzz-never', './../work/beside.txt', 'a/b/../../../x'];
const REL_TARGETS = ['a', 'a/b', 'x', 'l', 'l2', 'l3', 'm/n', '.', '', '..', '../..', '../../..', '../outside', '../../outside/secret', 'a/../..', 'etc/passwd', '/', '/a', '/etc/passwd', 'lib/x.so'];

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function layerCase(seed: number | string, index: number, box: Sandbox, scale: Scale): LayerCase {
  const rng = new Rng(seed, index);
  const notes: string[] = [];
  const mode = rng.weighted<LayerMode>([[5, 'apply'], [3, 'overlay'], [2, 'archive']]);
  // Half the cases are tame (names from the pool, valid headers, links that may point anywhere):
  // a hostile name early in a case ends it, and the code after it would seldom run.
  const tame = rng.chance(0.5);
  notes.push(`mode ${mode}${tame ? ', tame' : ''}`);

  const name = (): string => {
    const kind = tame ? 'pool' : rng.weighted([[14, 'pool'], [3, 'hostile'], [2, 'abs-outside'], [2, 'long'], [1, 'odd']] as const);
    switch (kind) {
      case 'pool': return rng.pick(NAMES);
      case 'hostile': return rng.pick(HOSTILE_NAMES);
      case 'abs-outside': return rng.pick([`${box.outside}/pwn`, `${box.outside}/secret`, `${box.dir}/above.txt`, `${box.dir}/work/pwn`]);
      case 'long': return rng.pick([
        `${'d'.repeat(60)}/${'f'.repeat(80)}`, 'n'.repeat(101), 'x'.repeat(256), `${'abc/'.repeat(1100)}f`, `${'a/'.repeat(300)}f`, `${'z'.repeat(155)}/${'y'.repeat(100)}`,
      ]);
      case 'odd': return rng.pick(['a\nb', 'tab\there', 'é/ü', ' ', '-rf', 'a/\u0001', '\\', 'a\rb', '%s%n', '${x}']);
    }
  };
  const target = (): string => {
    const kind = rng.weighted([[10, 'rel'], [3, 'outside'], [1, 'long']] as const);
    if (kind === 'rel') return rng.pick(REL_TARGETS);
    if (kind === 'outside') return rng.pick([box.outside, `${box.outside}/secret`, `${box.outside}/sub`, `${box.dir}/above.txt`, `${box.dir}/work`, `${box.dir}/outside-link`]);
    return rng.pick(['q'.repeat(101), `${'../'.repeat(50)}outside`, 'p'.repeat(5000)]);
  };
  const data = (): Buffer => (rng.chance(0.7) ? Buffer.from(`data ${rng.next()}\n`) : rng.bytes(rng.int(0, 2000)));
  const garbageField = (length: number): Buffer => rng.pick([
    rng.bytes(length), Buffer.from('9'.repeat(length)), Buffer.from('-1'), Buffer.from(' 7 7 '), Buffer.alloc(length, 0xff),
    Buffer.from([0x80, ...new Array<number>(length - 1).fill(0xff)]), Buffer.from([0xff, 0, 0, 0, 0, 0, 0, 1]),
  ]);

  const entries: RawEntry[] = [];
  const count = rng.int(1, 30);
  for (let i = 0; i < count; i++) {
    const kind = rng.weighted([
      [8, 'file'], [5, 'dir'], [6, 'symlink'], [4, 'hardlink'], [2, 'device'], [1, 'fifo'], [1, 'contiguous'],
      [4, 'whiteout'], [2, 'opaque'], [tame ? 0 : 1, 'unknown'], [3, 'pax'], [2, 'gnu'], [tame ? 0 : 2, 'garbage-field'], [tame ? 0 : 1, 'bad-checksum'],
      [1, 'format'], [tame ? 0 : 1, 'garbage-block'], [2, 'flip'], [1, 'long-link-name'],
    ] as const);
    notes.push(kind);
    switch (kind) {
      case 'file': entries.push({ name: name(), type: '0', data: data(), mode: rng.pick([0o644, 0o755, 0o4755, 0o000, 0o7777]) }); break;
      case 'contiguous': entries.push({ name: name(), type: '7', data: data() }); break;
      case 'dir': entries.push({ name: `${name()}${rng.chance(0.5) ? '/' : ''}`, type: '5', mode: rng.pick([0o755, 0o500, 0o000, 0o1777]) }); break;
      case 'symlink': entries.push({ name: name(), type: '2', linkname: target() }); break;
      case 'hardlink': entries.push({ name: name(), type: '1', linkname: rng.chance(0.7) ? rng.pick([...NAMES, ...REL_TARGETS]) : target() }); break;
      case 'device': entries.push({
        name: name(), type: rng.pick(['3', '4']), mode: 0o666,
        devmajor: rng.pick<number | Buffer>([0, 1, 7, 4095, 4096, 2 ** 31, ...(tame ? [] : [garbageField(8)])]),
        devminor: rng.pick<number | Buffer>([0, 3, 5, 255, 256, 2 ** 20, ...(tame ? [] : [garbageField(8)])]),
      }); break;
      case 'fifo': entries.push({ name: name(), type: '6' }); break;
      case 'whiteout': {
        const dir = rng.pick(['', 'a/', 'a/b/', 'l/', 'm/', 'd/', 'x/', 'etc/', 'nope/']);
        const hidden = rng.pick(tame ? ['a', 'b', 'c', 'x', 'd', 'e', 'passwd', 'secret', 'l', 'nope'] : ['a', 'b', 'x', 'passwd', '', '.', '..', '...', '.wh.', '.wh..opq', 'z'.repeat(260), 'a\nb', 'secret']);
        entries.push({ name: `${dir}.wh.${hidden}`, type: rng.pick(['0', '0', '5', '2']), linkname: 'x', data: Buffer.alloc(0) });
        break;
      }
      case 'opaque': entries.push({ name: `${rng.pick(['', 'a/', 'a/b/', 'l/', 'm/', 'd/', 'x/', 'up/'])}${rng.pick(['.wh..wh..opq', '.wh..wh.plnk', '.wh..wh.'])}`, type: '0' }); break;
      case 'unknown': entries.push({ name: name(), type: rng.pick(['S', 'V', 'M', 'N', 'X', 'A', '\u0080', '\u00ff', '9', 'D']), data: data() }); break;
      case 'pax': {
        const records: [string, string | Buffer][] = [];
        const n = rng.int(1, 4);
        for (let j = 0; j < n && !tame; j++) {
          records.push(rng.pick<[string, string | Buffer]>([
            ['path', name()], ['path', Buffer.from('a\u0000b')], ['path', `${'p'.repeat(200)}/q`], ['linkpath', target()], ['linkpath', Buffer.from('x\u0000y')],
            ['uid', rng.pick(['0', '1000', '-1', '-5', 'abc', '4294967295', '4294967296', '1e3', '99999999999999999999', ''])],
            ['gid', rng.pick(['0', '42', 'NaN', '-2', '1.5', '4294967296'])],
            ['size', rng.pick(['0', '5', '-1', 'abc', '99999999999', '1.5'])],
            ['mtime', rng.pick(['0', '1.5', '-1e20', 'abc', '1e300'])],
            ['SCHILY.xattr.user.x', 'y'], ['SCHILY.xattr.security.capability', Buffer.from([1, 0, 0, 2])], ['GNU.sparse.map', '0,1'], ['comment', 'z'.repeat(rng.int(0, 3000))],
          ]));
        }
        if (tame) records.push(['path', name()], ['uid', String(rng.int(0, 70000))], ['mtime', '1600000000.5']);
        entries.push(pax(records, !tame && rng.chance(0.15), !tame && rng.chance(0.1) ? 'wrong' : 'right'));
        entries.push({ name: rng.pick(['short', name()]), type: rng.pick(['0', '5', '2', '1']), linkname: target(), data: data() });
        break;
      }
      case 'gnu': entries.push(gnuLong('L', rng.chance(0.8) ? name() : `${'g'.repeat(300)}/h`), { name: 'ignored', type: rng.pick(['0', '5', '2']), linkname: target(), data: data(), format: 'gnu' }); break;
      case 'long-link-name': entries.push(gnuLong('K', target()), { name: name(), type: rng.pick(['1', '2']), linkname: 'short', format: 'gnu' }); break;
      case 'garbage-field': {
        const f = rng.pick(['mode', 'uid', 'gid', 'mtime', 'size', 'devmajor'] as const);
        const length = f === 'size' || f === 'mtime' ? 12 : 8;
        const value = rng.chance(0.5) ? garbageField(length) : rng.pick([-1, 2 ** 33, 2 ** 40, -(2 ** 40), 2 ** 53, 8 ** 11]);
        entries.push({ name: name(), type: rng.pick(['0', '5', '2', '3']), data: Buffer.from('g'), linkname: 'a', [f]: value });
        break;
      }
      case 'bad-checksum': entries.push({ name: name(), type: '0', data: data(), badChecksum: true }); break;
      case 'format': entries.push({ name: name(), type: rng.pick(['0', '5']), data: data(), format: rng.pick(['gnu', 'v7'] as const) }); break;
      case 'garbage-block': entries.push({ name: rng.bytes(100), type: String.fromCharCode(rng.int(0, 255)), data: rng.bytes(rng.int(0, 600)) }); break;
      case 'flip': {
        // a file over a directory and back, in one layer
        const n = rng.pick(['a', 'd', 'l', 'x']);
        entries.push({ name: `${n}/`, type: '5' }, { name: `${n}/inner`, type: '0', data: data() }, { name: n, type: '0', data: data() },
          { name: `${n}/`, type: '5' }, { name: `${n}/again`, type: '0', data: data() }, { name: n, type: '2', linkname: target() });
        break;
      }
    }
  }
  // One entry whose header claims more data than follows, usually at the end (elsewhere it eats what comes after).
  if (!tame && rng.chance(0.08)) {
    notes.push('lying size');
    entries.push({ name: name(), type: '0', data: data(), size: rng.pick([10_000, 2 ** 33, 1]), writeData: 0 });
  }

  let tarBytes = tar(entries, rng.chance(0.9));
  if (!tame) tarBytes = damage(tarBytes, rng, notes);
  const special = rng.chance(0.01) ? bigLayer(rng, scale, notes) : undefined;
  if (special) tarBytes = special;
  const diffId = sha256(tarBytes);
  const blob = tame ? (rng.chance(0.3) ? gzipSync(tarBytes) : tarBytes) : compress(tarBytes, rng, notes);
  const base = mode === 'apply' && rng.chance(0.7) ? baseLayer(box) : undefined;
  return { mode, ...(base ? { base } : {}), blob, diffId, notes };
}

/** Byte-level damage to a whole tar, now and then. */
function damage(bytes: Buffer, rng: Rng, notes: string[]): Buffer {
  if (!rng.chance(0.2)) return bytes;
  const kind = rng.pick(['truncate', 'flip', 'garbage', 'zero-block', 'repeat-block', 'trailing'] as const);
  notes.push(`damage: ${kind}`);
  const out = Buffer.from(bytes);
  switch (kind) {
    case 'truncate': return out.subarray(0, rng.int(0, out.length));
    case 'flip': for (let i = rng.int(1, 10); i > 0; i--) out[rng.int(0, out.length - 1)] ^= 1 << rng.int(0, 7); return out;
    case 'garbage': { const at = rng.int(0, out.length); return Buffer.concat([out.subarray(0, at), rng.bytes(rng.int(1, 1500)), out.subarray(at)]); }
    case 'zero-block': { const at = rng.int(0, Math.max(0, out.length / 512 - 1)) * 512; out.fill(0, at, at + 512); return out; }
    case 'repeat-block': { const at = rng.int(0, Math.max(0, out.length / 512 - 1)) * 512; return Buffer.concat([out.subarray(0, at + 512), out.subarray(at)]); }
    case 'trailing': return Buffer.concat([out, rng.bytes(rng.int(1, 3000))]);
  }
}

/** Plain most of the time; gzip, sometimes broken. */
function compress(bytes: Buffer, rng: Rng, notes: string[]): Buffer {
  const kind = rng.weighted([[14, 'none'], [5, 'gzip'], [1, 'gzip-truncated'], [1, 'gzip-garbage'], [1, 'gzip-twice'], [1, 'gzip-members'], [1, 'other-magic']] as const);
  if (kind !== 'none') notes.push(`compression: ${kind}`);
  switch (kind) {
    case 'none': return bytes;
    case 'gzip': return gzipSync(bytes);
    case 'gzip-truncated': { const gz = gzipSync(bytes); return gz.subarray(0, rng.int(2, Math.max(2, gz.length - 1))); }
    case 'gzip-garbage': return Buffer.concat([Buffer.from([0x1f, 0x8b]), rng.bytes(rng.int(0, 2000))]);
    case 'gzip-twice': return gzipSync(gzipSync(bytes));
    case 'gzip-members': { const at = rng.int(0, bytes.length); return Buffer.concat([gzipSync(bytes.subarray(0, at)), gzipSync(bytes.subarray(at))]); }
    case 'other-magic': return Buffer.concat([rng.pick([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.from('BZh'), Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0])]), bytes]);
  }
}

/** A valid base layer with symlinks that point out of the root, for the fuzzed layer to write through. */
function baseLayer(box: Sandbox): Buffer {
  return tar([
    { name: 'a/', type: '5' }, { name: 'a/b/', type: '5' }, { name: 'a/b/c', type: '0', data: Buffer.from('c\n') },
    { name: 'd/', type: '5' }, { name: 'd/e', type: '0', data: Buffer.from('e\n') },
    { name: 'etc/', type: '5' }, { name: 'etc/passwd', type: '0', data: Buffer.from('root:x:0:0::/root:/bin/sh\n') },
    { name: 'l', type: '2', linkname: box.outside }, { name: 'm', type: '2', linkname: '../../outside' },
    { name: 'up', type: '2', linkname: '..' }, { name: 'x', type: '0', data: Buffer.from('x\n') },
    { name: 'l2', type: '2', linkname: 'l3' }, { name: 'l3', type: '2', linkname: `${box.outside}/secret` },
    { name: 'usr/', type: '5' }, { name: 'usr/lib/', type: '5' }, { name: 'lib', type: '2', linkname: '/usr/lib' },
  ]);
}

/** The big ones: many entries, deep nesting, many hard links. */
function bigLayer(rng: Rng, scale: Scale, notes: string[]): Buffer {
  const kind = rng.pick(['many-files', 'many-links', 'deep', 'many-dirs'] as const);
  const n = scale === 'full' ? 100_000 : 3_000;
  notes.push(`big: ${kind}`);
  const entries: RawEntry[] = [];
  switch (kind) {
    case 'many-files': for (let i = 0; i < n; i++) entries.push({ name: `f/${i % 100}/${i}`, type: '0' }); break;
    case 'many-links': entries.push({ name: 'target', type: '0', data: Buffer.from('t') }); for (let i = 0; i < n; i++) entries.push({ name: `h${i}`, type: '1', linkname: 'target' }); break;
    case 'many-dirs': for (let i = 0; i < n; i++) entries.push({ name: `d${i % 50}/${i}/`, type: '5' }); break;
    case 'deep': {
      let p = '';
      for (let i = 0; i < 2100; i++) {
        p += 'd/';
        entries.push({ name: p, type: '5' });
      }
      entries.push({ name: `${p}f`, type: '0', data: Buffer.from('deep') });
      break;
    }
  }
  return tar(entries);
}

/** The case as a JSON-able summary. */
export function describeLayerCase(c: LayerCase): string {
  return `${c.notes.join(', ')}; ${c.blob.length} bytes${c.base ? ', over a base layer' : ''}`;
}
