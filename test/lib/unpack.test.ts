import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import {
  existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, rmSync, statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import zlib, { gzipSync } from 'node:zlib';
import { pack as tarPack, type Header } from 'tar-stream';
import type { ResolvedImage } from '../../lib/image/store.js';
import { UnsafeLayerError, unpackImage, unpackLayer } from '../../lib/image/unpack.js';

type Entry = Partial<Header> & { name: string; content?: string };

const MTIME = new Date('2020-02-02T02:02:02Z');

let work: string;
let rootfs: string;
/** A directory beside the rootfs that no layer may write into. */
let outside: string;
let layers = 0;

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'calf-test-'));
  rootfs = join(work, 'rootfs');
  outside = join(work, 'outside');
  mkdirSync(rootfs);
  mkdirSync(outside);
});

afterEach(() => {
  rmSync(work, { recursive: true, force: true });
});

/** Write a layer tar made of `entries` (in that order) and return its path. */
async function layer(entries: Entry[], options: { gzip?: boolean } = {}): Promise<string> {
  const pack = tarPack();
  const tar = buffer(pack);
  for (const { content, ...header } of entries) {
    const full = { mtime: MTIME, uid: 0, gid: 0, ...header };
    await new Promise<void>((done, fail) => pack.entry(full, content ?? '', (error) => (error ? fail(error) : done())));
  }
  pack.finalize();
  const bytes = await tar;
  const path = join(work, `layer-${++layers}.tar${options.gzip ? '.gz' : ''}`);
  writeFileSync(path, options.gzip ? gzipSync(bytes) : bytes);
  return path;
}

const dir = (name: string, mode = 0o755): Entry => ({ name, type: 'directory', mode });
const file = (name: string, content: string, mode = 0o644): Entry => ({ name, type: 'file', mode, content });
const symlink = (name: string, linkname: string): Entry => ({ name, type: 'symlink', linkname });

async function expectUnsafe(entries: Entry[], entryName: string): Promise<void> {
  const path = await layer(entries);
  const attempt = unpackLayer(path, rootfs);
  await expect(attempt).rejects.toBeInstanceOf(UnsafeLayerError);
  await expect(attempt).rejects.toThrow(`entry "${entryName}"`);
  expect(readdirSync(outside)).toEqual([]);
}

describe('unpackLayer', () => {
  it('unpacks a file with its content, mode, owner and mtime', async () => {
    await unpackLayer(await layer([
      dir('etc/'),
      { ...file('etc/shadow', 'secret\n', 0o640), uid: 1000, gid: 42 },
      file('etc/setuid', '', 0o4755),
    ]), rootfs);
    const stats = statSync(join(rootfs, 'etc/shadow'));
    expect(readFileSync(join(rootfs, 'etc/shadow'), 'utf8')).toBe('secret\n');
    expect(stats.mode & 0o7777).toBe(0o640);
    expect([stats.uid, stats.gid]).toEqual([1000, 42]);
    expect(stats.mtime).toEqual(MTIME);
    expect(statSync(join(rootfs, 'etc/setuid')).mode & 0o7777).toBe(0o4755);
  });

  it('gives a directory its mode and mtime after its contents are written', async () => {
    await unpackLayer(await layer([dir('tmp/', 0o1777), file('tmp/a', 'a'), dir('locked/', 0o500), file('locked/b', 'b')]), rootfs);
    const tmp = statSync(join(rootfs, 'tmp'));
    expect(tmp.mode & 0o7777).toBe(0o1777);
    expect(tmp.mtime).toEqual(MTIME);
    expect(statSync(join(rootfs, 'locked')).mode & 0o7777).toBe(0o500);
    expect(readFileSync(join(rootfs, 'locked/b'), 'utf8')).toBe('b');
  });

  it('creates the parent directories an entry needs but the layer does not list', async () => {
    await unpackLayer(await layer([file('a/b/c.txt', 'deep')]), rootfs);
    expect(readFileSync(join(rootfs, 'a/b/c.txt'), 'utf8')).toBe('deep');
  });

  it('creates symlinks as they are and hard links to files in the layer', async () => {
    await unpackLayer(await layer([
      file('bin/busybox', 'elf', 0o755),
      symlink('bin/sh', 'busybox'),
      symlink('etc-link', '/etc'),
      { name: 'bin/ash', type: 'link', linkname: 'bin/busybox' },
    ]), rootfs);
    expect(readlinkSync(join(rootfs, 'bin/sh'))).toBe('busybox');
    expect(readlinkSync(join(rootfs, 'etc-link'))).toBe('/etc');
    expect(statSync(join(rootfs, 'bin/ash')).ino).toBe(statSync(join(rootfs, 'bin/busybox')).ino);
  });

  it('creates character devices, block devices and fifos', async () => {
    await unpackLayer(await layer([
      { name: 'dev/null', type: 'character-device', mode: 0o666, devmajor: 1, devminor: 3 },
      { name: 'dev/loop0', type: 'block-device', mode: 0o660, devmajor: 7, devminor: 0 },
      { name: 'run/fifo', type: 'fifo', mode: 0o600 },
    ]), rootfs);
    const nul = statSync(join(rootfs, 'dev/null'));
    expect(nul.isCharacterDevice()).toBe(true);
    expect(nul.rdev).toBe(statSync('/dev/null').rdev);
    expect(nul.mode & 0o7777).toBe(0o666);
    expect(statSync(join(rootfs, 'dev/loop0')).isBlockDevice()).toBe(true);
    expect(lstatSync(join(rootfs, 'run/fifo')).isFIFO()).toBe(true);
  });

  it('reads names longer than 100 bytes from pax headers', async () => {
    const long = `${'d'.repeat(60)}/${'f'.repeat(80)}.txt`;
    await unpackLayer(await layer([file(long, 'long')]), rootfs);
    expect(readFileSync(join(rootfs, long), 'utf8')).toBe('long');
  });

  it('gunzips a layer that starts with the gzip magic', async () => {
    await unpackLayer(await layer([file('hello', 'gz')], { gzip: true }), rootfs);
    expect(readFileSync(join(rootfs, 'hello'), 'utf8')).toBe('gz');
  });

  // Node 22.15+ has zstd in zlib; older Nodes refuse such a layer in one line, naming what they lack.
  const zstdCompress = (zlib as unknown as { zstdCompressSync?: (b: Buffer) => Buffer }).zstdCompressSync;
  if (zstdCompress) {
    it('unzstds a layer that starts with the zstd magic (this Node has zstd)', async () => {
      const path = join(work, 'layer.zst');
      writeFileSync(path, zstdCompress(readFileSync(await layer([file('hello', 'zstd')]))));
      await unpackLayer(path, rootfs);
      expect(readFileSync(join(rootfs, 'hello'), 'utf8')).toBe('zstd');
    });
  } else {
    it('refuses a zstd-compressed layer, saying which Node it needs (this one has no zstd)', async () => {
      const path = join(work, 'layer.zst');
      writeFileSync(path, Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]));
      await expect(unpackLayer(path, rootfs)).rejects.toThrow(/zstd-compressed layers need Node 22\.15 or later/);
    });
  }

  it('replaces a file left by an earlier layer, and a directory by a file', async () => {
    await unpackLayer(await layer([file('etc/motd', 'old'), dir('thing/'), file('thing/inside', 'x')]), rootfs);
    await unpackLayer(await layer([file('etc/motd', 'new'), file('thing', 'now a file')]), rootfs);
    expect(readFileSync(join(rootfs, 'etc/motd'), 'utf8')).toBe('new');
    expect(readFileSync(join(rootfs, 'thing'), 'utf8')).toBe('now a file');
  });

  it('deletes what an earlier layer put there for a .wh. whiteout, and writes no whiteout file', async () => {
    await unpackLayer(await layer([file('data/gone.txt', 'x'), dir('data/gone-dir/'), file('data/gone-dir/f', 'f'), file('data/keep.txt', 'k')]), rootfs);
    await unpackLayer(await layer([file('data/.wh.gone.txt', ''), file('data/.wh.gone-dir', '')]), rootfs);
    expect(readdirSync(join(rootfs, 'data'))).toEqual(['keep.txt']);
  });

  it.each([
    ['before', true],
    ['after', false],
  ])('empties an opaque directory of earlier layers but keeps what this layer adds, marker %s its files', async (_, markerFirst) => {
    await unpackLayer(await layer([dir('d/'), file('d/old.txt', 'old'), dir('d/sub/'), file('d/sub/old.txt', 'old'), file('other.txt', 'o')]), rootfs);
    const marker = file('d/.wh..wh..opq', '');
    const added = [file('d/new.txt', 'new'), dir('d/sub/'), file('d/sub/new.txt', 'new')];
    await unpackLayer(await layer(markerFirst ? [dir('d/'), marker, ...added] : [dir('d/'), ...added, marker]), rootfs);
    expect(readdirSync(join(rootfs, 'd')).sort()).toEqual(['new.txt', 'sub']);
    expect(readdirSync(join(rootfs, 'd/sub'))).toEqual(['new.txt']);
    expect(existsSync(join(rootfs, 'other.txt'))).toBe(true);
  });

  it('writes through a relative merged-/usr symlink that stays inside the root', async () => {
    await unpackLayer(await layer([dir('usr/'), dir('usr/lib/'), symlink('lib', 'usr/lib')]), rootfs);
    await unpackLayer(await layer([file('lib/libc.so.6', 'libc')]), rootfs);
    expect(lstatSync(join(rootfs, 'lib')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(rootfs, 'usr/lib/libc.so.6'), 'utf8')).toBe('libc');
  });

  it('replaces a symlink at an entry\'s own path instead of writing through it', async () => {
    const target = join(outside, 'passwd');
    await unpackLayer(await layer([symlink('etc/passwd', target), symlink('etc/dir', outside)]), rootfs);
    await unpackLayer(await layer([file('etc/passwd', 'root:x:0:0::/root:/bin/sh\n'), dir('etc/dir/')]), rootfs);
    expect(existsSync(target)).toBe(false);
    expect(lstatSync(join(rootfs, 'etc/passwd')).isFile()).toBe(true);
    expect(lstatSync(join(rootfs, 'etc/dir')).isDirectory()).toBe(true);
    expect(readdirSync(outside)).toEqual([]);
  });

  it('replaces an earlier layer\'s symlink by a directory entry of the same name, then writes inside it', async () => {
    await unpackLayer(await layer([symlink('evil', outside)]), rootfs);
    await unpackLayer(await layer([dir('evil/'), file('evil/file', 'fine')]), rootfs);
    expect(readFileSync(join(rootfs, 'evil/file'), 'utf8')).toBe('fine');
    expect(readdirSync(outside)).toEqual([]);
  });

  describe('rejects an entry that would land outside the root', () => {
    it('rejects an entry that climbs out with ..', async () => {
      await expectUnsafe([file('../x', 'x')], '../x');
      await expectUnsafe([file('a/../../outside/x', 'x')], 'a/../../outside/x');
    });

    it('rejects an absolute name', async () => {
      await expectUnsafe([file('/etc/x', 'x')], '/etc/x');
    });

    it('rejects a write through a symlink to an absolute path outside', async () => {
      await expectUnsafe([symlink('evil', outside), file('evil/file', 'pwned')], 'evil/file');
    });

    it('rejects a write through a symlink left by an earlier layer', async () => {
      await unpackLayer(await layer([symlink('evil', outside)]), rootfs);
      await expectUnsafe([file('evil/file', 'pwned')], 'evil/file');
    });


    it('rejects a write through an absolute symlink, which the host follows from its own /', async () => {
      await expectUnsafe([dir('usr/'), dir('usr/lib/'), symlink('lib', '/usr/lib'), file('lib/calf-unpack-test.so', 'x')], 'lib/calf-unpack-test.so');
      expect(existsSync('/usr/lib/calf-unpack-test.so')).toBe(false);
    });

    it('rejects a write through a relative symlink that climbs out', async () => {
      await expectUnsafe([symlink('up', '../outside'), file('up/file', 'pwned')], 'up/file');
    });

    it('rejects a write through a chain of symlinks that ends outside', async () => {
      await expectUnsafe([symlink('a', 'b'), symlink('b', 'c/../../outside'), dir('c/'), file('a/file', 'x')], 'a/file');
    });

    it('rejects a directory whose symlinked parent does not exist yet outside', async () => {
      await expectUnsafe([symlink('evil', join(outside, 'new')), dir('evil/made/')], 'evil/made/');
      expect(existsSync(join(outside, 'new'))).toBe(false);
    });

    it('rejects a hard link to ../../etc/passwd', async () => {
      await expectUnsafe([{ name: 'passwd', type: 'link', linkname: '../../etc/passwd' }], 'passwd');
    });

    it('rejects a hard link through a symlink that leads outside', async () => {
      writeFileSync(join(outside, 'secret'), 'host secret');
      const path = await layer([symlink('evil', outside), { name: 'stolen', type: 'link', linkname: 'evil/secret' }]);
      await expect(unpackLayer(path, rootfs)).rejects.toBeInstanceOf(UnsafeLayerError);
      expect(existsSync(join(rootfs, 'stolen'))).toBe(false);
    });

    it('names the layer and the entry in the message', async () => {
      const hex = 'ab12'.repeat(16);
      const path = join(work, hex);
      writeFileSync(path, readFileSync(await layer([file('../../etc/passwd', 'x')])));
      await expect(unpackLayer(path, rootfs)).rejects.toThrow('layer sha256:ab12ab12ab12…: entry "../../etc/passwd" would land outside the root');
    });
  });
});

describe('unpackImage', () => {
  it('applies the layers bottom first into one directory', async () => {
    const bottom = await layer([file('etc/motd', 'one'), file('etc/gone', 'x')], { gzip: true });
    const top = await layer([file('etc/motd', 'two'), file('etc/.wh.gone', '')]);
    const image: ResolvedImage = {
      name: 'test:latest',
      id: `sha256:${'0'.repeat(64)}`,
      config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } },
      layers: [bottom, top].map((path) => ({ digest: '', mediaType: '', size: 0, path })),
    };
    await unpackImage(image, join(work, 'fresh'));
    expect(readdirSync(join(work, 'fresh/etc'))).toEqual(['motd']);
    expect(readFileSync(join(work, 'fresh/etc/motd'), 'utf8')).toBe('two');
  });
});
