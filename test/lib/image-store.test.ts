import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execa, execaSync } from 'execa';
import {
  cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadImages } from '../../lib/image/load.js';
import {
  ImageNotFoundError, listImages, normalizeName, ociArchitecture, resolveImage, type ImageIndex,
} from '../../lib/image/store.js';
import { unpackImage } from '../../lib/image/unpack.js';
import { buildImages, type BuiltImage } from '../../scripts/build-images.js';

jest.setTimeout(120_000);

/** Whether a tool is on this machine; the setup script installs both, so CI has them. */
function installed(tool: string): boolean {
  const found = execaSync(tool, ['--version'], { reject: false }).exitCode === 0;
  if (!found) console.warn(`skipping the ${tool} tests: ${tool} is not installed (npm run setup installs it)`);
  return found;
}
const withSkopeo = installed('skopeo') ? it : it.skip;
const withUmoci = installed('umoci') ? it : it.skip;

/** Everything this file makes lives under one temp directory, removed at the end. */
let work: string;
let built: Record<string, BuiltImage>;
let busyboxLayout: string;
let tempDirs = 0;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'calf-test-'));
  built = Object.fromEntries((await buildImages(join(work, 'images'))).map((image) => [image.name, image]));
  busyboxLayout = built['busybox:latest']!.path;
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A fresh directory under the work directory. */
function scratch(name: string): string {
  const dir = join(work, `${++tempDirs}-${name}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Run `test` with its own empty CALF_ROOT, removed afterwards. */
async function withRoot(test: (root: string) => Promise<void>): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'calf-test-'));
  try {
    await test(root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** Resolve `name` in `root` and unpack it; the rootfs must have a runnable busybox. */
async function expectUnpacks(name: string, root: string): Promise<string> {
  const image = resolveImage(name, root);
  const rootfs = join(root, 'rootfs');
  await unpackImage(image, rootfs);
  expect(lstatSync(join(rootfs, 'bin/busybox')).isFile()).toBe(true);
  return rootfs;
}

/** A copy of a layout (busybox's unless said) whose index.json entry is rewritten by `edit`. */
function editedLayout(name: string, edit: (index: ImageIndex, dir: string) => void, source = busyboxLayout): string {
  const dir = join(scratch(name), name);
  cpSync(source, dir, { recursive: true });
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as ImageIndex;
  edit(index, dir);
  writeFileSync(join(dir, 'index.json'), JSON.stringify(index));
  return dir;
}

function leftoverLoadDirs(): string[] {
  return readdirSync(tmpdir()).filter((name) => name.startsWith('calf-load-'));
}

describe('normalizeName', () => {
  it.each([
    ['busybox', 'busybox:latest'],
    ['busybox:1.36', 'busybox:1.36'],
    ['docker.io/library/busybox', 'busybox:latest'],
    ['docker.io/library/busybox:musl', 'busybox:musl'],
    ['docker.io/calf/tools:v1', 'calf/tools:v1'],
    ['localhost/myimage', 'myimage:latest'],
    ['localhost:5000/myimage', 'localhost:5000/myimage:latest'],
    [`busybox@sha256:${'a'.repeat(64)}`, `busybox@sha256:${'a'.repeat(64)}`],
  ])('normalises %s to %s', (ref, expected) => {
    expect(normalizeName(ref)).toBe(expected);
  });
});

describe('buildImages', () => {
  it('builds the same digests again and leaves up-to-date layouts alone', async () => {
    const again = await buildImages(join(work, 'images'));
    expect(again.map((i) => [i.name, i.digest, i.built])).toEqual(
      Object.values(built).map((i) => [i.name, i.digest, false]),
    );
  });

  it('puts the busybox layer, unchanged, at the bottom of the layered and calf-test images', async () => {
    await withRoot(async (root) => {
      for (const image of Object.values(built)) await loadImages(image.path, root);
      const bottom = (name: string) => resolveImage(name, root).layers[0]!.digest;
      expect(bottom('layered')).toBe(bottom('busybox'));
      expect(bottom('calf-test')).toBe(bottom('busybox'));
      expect(resolveImage('layered', root).layers).toHaveLength(3);
    });
  });
});

describe('loadImages', () => {
  it('loads an OCI layout directory, and the image resolves by name, id and id prefix', async () => {
    await withRoot(async (root) => {
      expect(await loadImages(busyboxLayout, root)).toEqual(['busybox:latest']);
      const image = resolveImage('busybox', root);
      expect(image.name).toBe('busybox:latest');
      expect(image.id).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(image.config.config?.Cmd).toEqual(['sh']);
      expect(image.config.architecture).toBe(ociArchitecture());
      expect(resolveImage('docker.io/library/busybox:latest', root).id).toBe(image.id);
      expect(resolveImage(image.id, root).name).toBe('busybox:latest');
      expect(resolveImage(image.id.slice('sha256:'.length), root).id).toBe(image.id);
      expect(resolveImage(image.id.slice('sha256:'.length, 'sha256:'.length + 12), root).id).toBe(image.id);
      const rootfs = await expectUnpacks('busybox', root);
      expect(lstatSync(join(rootfs, 'bin/sh')).isSymbolicLink()).toBe(true);
      expect(readFileSync(join(rootfs, 'etc/passwd'), 'utf8')).toContain('calf:x:1000:1000:');
    });
  });

  it('unpacks the layered image with layer 3\'s whiteouts and opaque directory applied', async () => {
    await withRoot(async (root) => {
      await loadImages(built['layered:latest']!.path, root);
      const image = resolveImage('layered', root);
      expect(image.config.config).toMatchObject({ Cmd: ['cat', '/etc/motd'], WorkingDir: '/data' });
      expect(image.config.config?.Env).toContain('LAYERED=3');
      const rootfs = await expectUnpacks('layered', root);
      expect(readFileSync(join(rootfs, 'etc/motd'), 'utf8')).toBe('layered image, layer 3\n');
      expect(readdirSync(join(rootfs, 'data')).sort()).toEqual(['keep.txt', 'opaque']);
      expect(readdirSync(join(rootfs, 'data/opaque'))).toEqual(['new.txt']);
    });
  });

  it('ships every compiled helper in the calf-test image', async () => {
    await withRoot(async (root) => {
      await loadImages(built['calf-test:latest']!.path, root);
      const rootfs = await expectUnpacks('calf-test', root);
      const helpers = readdirSync(fileURLToPath(new URL('../helpers', import.meta.url))).filter((n) => n.endsWith('.c'));
      for (const helper of helpers) {
        expect(lstatSync(join(rootfs, 'usr/local/bin', helper.slice(0, -2))).mode & 0o111).toBeTruthy();
      }
    });
  });

  it.each([
    ['plain', ['-cf']],
    ['gzip-compressed', ['-czf']],
  ])('loads a %s oci-archive tar', async (_, flags) => {
    await withRoot(async (root) => {
      const archive = join(scratch('oci-archive'), 'busybox.oci');
      await execa('tar', ['-C', busyboxLayout, ...flags, archive, '.']);
      const before = leftoverLoadDirs();
      expect(await loadImages(archive, root)).toEqual(['busybox:latest']);
      expect(leftoverLoadDirs()).toEqual(before);
      await expectUnpacks('busybox:latest', root);
    });
  });

  it('names a tag-only layout after its directory or archive', async () => {
    await withRoot(async (root) => {
      const layout = editedLayout('my-tools', (index) => {
        index.manifests[0]!.annotations = { 'org.opencontainers.image.ref.name': 'v1' };
      });
      expect(await loadImages(layout, root)).toEqual(['my-tools:v1']);
      const archive = join(scratch('tagged'), 'other.tar.gz');
      await execa('tar', ['-C', layout, '-czf', archive, '.']);
      expect(await loadImages(archive, root)).toEqual(['other:v1']);
      await expectUnpacks('my-tools:v1', root);
      expect(resolveImage('other:v1', root).id).toBe(resolveImage('my-tools:v1', root).id);
    });
  });

  it('prefers the io.containerd.image.name annotation that docker save writes', async () => {
    await withRoot(async (root) => {
      const layout = editedLayout('docker-save', (index) => {
        index.manifests[0]!.annotations = {
          'org.opencontainers.image.ref.name': 'latest',
          'io.containerd.image.name': 'docker.io/library/tools:1.0',
        };
      });
      expect(await loadImages(layout, root)).toEqual(['tools:1.0']);
    });
  });

  it('stores an image without any name under its id', async () => {
    await withRoot(async (root) => {
      const layout = editedLayout('anonymous', (index) => {
        delete index.manifests[0]!.annotations;
      });
      const [id] = await loadImages(layout, root);
      expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(resolveImage(id!, root).id).toBe(id);
      expect(listImages(root)).toEqual([expect.objectContaining({ name: '<none>', id })]);
    });
  });

  it('picks this machine\'s platform out of a multi-platform index', async () => {
    await withRoot(async (root) => {
      const other = ociArchitecture() === 'amd64' ? 'arm64' : 'amd64';
      const layout = editedLayout('multi', (index, dir) => {
        const manifest = index.manifests[0]!;
        const multi: ImageIndex = {
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: [
            // The other platform's blobs are not in the layout, as with `skopeo copy` of one platform.
            { mediaType: manifest.mediaType, digest: `sha256:${'e'.repeat(64)}`, size: 1, platform: { architecture: other, os: 'linux' } },
            { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size, platform: { architecture: ociArchitecture(), os: 'linux' } },
          ],
        };
        const bytes = Buffer.from(JSON.stringify(multi));
        const digest = createHash('sha256').update(bytes).digest('hex');
        writeFileSync(join(dir, 'blobs/sha256', digest), bytes);
        index.manifests = [{
          mediaType: multi.mediaType!, digest: `sha256:${digest}`, size: bytes.length,
          annotations: { 'org.opencontainers.image.ref.name': 'multi:latest' },
        }];
      });
      expect(await loadImages(layout, root)).toEqual(['multi:latest']);
      const image = resolveImage('multi', root);
      expect(image.config.architecture).toBe(ociArchitecture());
      await expectUnpacks('multi', root);
    });
  });

  withSkopeo('loads a docker-archive tar written by skopeo, plain, gzipped and extracted', async () => {
    await withRoot(async (root) => {
      const dir = scratch('docker-archive');
      const archive = join(dir, 'saved.tar');
      await execa('skopeo', ['copy', '--quiet', `oci:${busyboxLayout}`, `docker-archive:${archive}:busybox:latest`]);
      expect(await loadImages(archive, root)).toEqual(['busybox:latest']);
      const id = resolveImage('busybox', root).id;
      await expectUnpacks('busybox', root);

      await execa('gzip', ['-k', archive]);
      const extracted = join(dir, 'extracted');
      mkdirSync(extracted);
      await execa('tar', ['-C', extracted, '-xf', archive]);
      await withRoot(async (again) => {
        expect(await loadImages(`${archive}.gz`, again)).toEqual(['busybox:latest']);
        expect(await loadImages(extracted, again)).toEqual(['busybox:latest']);
        // The config goes in byte for byte, so the id is the one the OCI layout had.
        expect(resolveImage('busybox', again).id).toBe(id);
        await expectUnpacks('busybox', again);
      });
    });
  });

  withSkopeo('loads a layout written by skopeo copy to oci:DIR:tag', async () => {
    await withRoot(async (root) => {
      const layout = join(scratch('skopeo'), 'copied');
      await execa('skopeo', ['copy', '--quiet', `oci:${busyboxLayout}`, `oci:${layout}:stable`]);
      expect(await loadImages(layout, root)).toEqual(['copied:stable']);
      await expectUnpacks('copied:stable', root);
    });
  });

  withUmoci('loads a layout built with umoci', async () => {
    await withRoot(async (root) => {
      const dir = scratch('umoci');
      const layout = join(dir, 'umoci-image');
      await execa('umoci', ['init', '--layout', layout]);
      await execa('umoci', ['new', '--image', `${layout}:latest`]);
      // `umoci insert` (0.4.7) writes a truncated layer tar, so make the layer with unpack + repack.
      const bundle = join(dir, 'bundle');
      await execa('umoci', ['unpack', '--image', `${layout}:latest`, bundle]);
      mkdirSync(join(bundle, 'rootfs/bin'));
      cpSync('/bin/busybox', join(bundle, 'rootfs/bin/busybox'));
      await execa('umoci', ['repack', '--image', `${layout}:latest`, bundle]);
      expect(await loadImages(layout, root)).toEqual(['umoci-image:latest']);
      await expectUnpacks('umoci-image', root);
    });
  });

  it('refuses a layout whose layer does not match its digest, naming the blob, and stores no name', async () => {
    await withRoot(async (root) => {
      const layout = editedLayout('corrupt', () => {});
      const layer = resolveLayerDigest(layout);
      const path = join(layout, 'blobs/sha256', layer);
      const bytes = readFileSync(path);
      bytes[bytes.length - 1] ^= 0xff;
      writeFileSync(path, bytes);
      const archive = join(scratch('corrupt-archive'), 'corrupt.tar');
      await execa('tar', ['-C', layout, '-cf', archive, '.']);
      const before = leftoverLoadDirs();
      await expect(loadImages(archive, root)).rejects.toThrow(`layer blob sha256:${layer.slice(0, 12)}… is corrupt`);
      expect(leftoverLoadDirs()).toEqual(before);
      expect(listImages(root)).toEqual([]);
      expect(readdirSync(join(root, 'images/blobs/sha256')).filter((n) => n.startsWith('.tmp'))).toEqual([]);
    });
  });

  it('says what is wrong with input that is not an image', async () => {
    await withRoot(async (root) => {
      const dir = scratch('not-images');
      writeFileSync(join(dir, 'notes.txt'), 'not a tar at all, just some text that is long enough '.repeat(20));
      mkdirSync(join(dir, 'empty'));
      await expect(loadImages(join(dir, 'missing.tar'), root)).rejects.toThrow(/^cannot load ".*missing.tar": no such file or directory$/);
      await expect(loadImages(join(dir, 'notes.txt'), root)).rejects.toThrow(/^cannot load ".*notes.txt": not an image archive/);
      await expect(loadImages(join(dir, 'empty'), root)).rejects.toThrow(
        /^cannot load ".*empty": neither an OCI image layout \(no oci-layout file\) nor a docker archive \(no manifest.json\)$/,
      );
    });
  });
  it('refuses a docker archive whose manifest.json points outside it', async () => {
    await withRoot(async (root) => {
      const dir = scratch('escaping-archive');
      writeFileSync(join(dir, 'manifest.json'), JSON.stringify([{ Config: '../../../../etc/hostname', RepoTags: ['x:1'], Layers: [] }]));
      await expect(loadImages(dir, root)).rejects.toThrow('"../../../../etc/hostname" leads outside the image');
      expect(listImages(root)).toEqual([]);
    });
  });

  it('refuses an archive with an entry that climbs out of it', async () => {
    await withRoot(async (root) => {
      const dir = scratch('evil-archive');
      writeFileSync(join(dir, 'oci-layout'), '{}');
      const archive = join(dir, 'evil.tar');
      await execa('tar', ['-C', dir, '-cf', archive, '--transform', 's,^,../,', 'oci-layout']);
      await expect(loadImages(archive, root)).rejects.toThrow('entry "../oci-layout" would land outside the root');
    });
  });
});

describe('resolveImage', () => {
  it('throws ImageNotFoundError for an image that is not stored', async () => {
    await withRoot(async (root) => {
      const attempt = () => resolveImage('nope', root);
      expect(attempt).toThrow(ImageNotFoundError);
      expect(attempt).toThrow("unable to find image 'nope:latest' locally (calf images lists the stored images)");
    });
  });

  it('names a layer blob that has gone missing from the store', async () => {
    await withRoot(async (root) => {
      await loadImages(busyboxLayout, root);
      const [layer] = resolveImage('busybox', root).layers;
      rmSync(layer!.path);
      expect(() => resolveImage('busybox', root)).toThrow(`layer blob ${layer!.digest.slice(0, 'sha256:'.length + 12)}… is missing`);
    });
  });

  it('moves a name to the image loaded last under it', async () => {
    await withRoot(async (root) => {
      await loadImages(busyboxLayout, root);
      const retagged = editedLayout('retag', (index) => {
        index.manifests[0]!.annotations = { 'org.opencontainers.image.ref.name': 'busybox:latest' };
      }, built['layered:latest']!.path);
      await loadImages(retagged, root);
      expect(resolveImage('busybox', root).layers).toHaveLength(3);
      expect(listImages(root).map((i) => i.name)).toEqual(['busybox:latest']);
    });
  });
});

describe('listImages', () => {
  it('lists every stored image with its id, creation time and size, sorted by name', async () => {
    await withRoot(async (root) => {
      expect(listImages(root)).toEqual([]);
      for (const image of Object.values(built)) await loadImages(image.path, root);
      const images = listImages(root);
      expect(images.map((i) => i.name)).toEqual(['busybox:latest', 'calf-test:latest', 'layered:latest']);
      for (const image of images) {
        expect(image.id).toBe(resolveImage(image.name, root).id);
        expect(image.created).toBe('2024-01-01T00:00:00.000Z');
        expect(image.size).toBeGreaterThan(500_000);
      }
      expect(existsSync(join(root, 'images/oci-layout'))).toBe(true);
    });
  });
});

/** The digest (hex) of the only layer of the busybox layout at `layout`. */
function resolveLayerDigest(layout: string): string {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as ImageIndex;
  const manifest = JSON.parse(readFileSync(join(layout, 'blobs/sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as {
    layers: { digest: string }[];
  };
  return manifest.layers[0]!.digest.slice(7);
}
