/**
 * The fuzzer inside `npm test` (the long run is `npm run fuzz`, test/fuzz/main.ts): a short seeded
 * run over all three targets, and every case an earlier run found, replayed by its seed and number.
 * Each replayed case failed before the fix named beside it; its fingerprint proves the generator
 * still makes the same input (a generator change that moves it makes this test say so).
 */
import { describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fuzz, type FuzzReport } from '../fuzz/run.js';
import type { Target } from '../fuzz/cases.js';
import { tar } from '../fuzz/tar.js';
import { unpackLayer } from '../../lib/image/unpack.js';
import { addBlobFromFile } from '../../lib/image/store.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TARGETS: Target[] = ['layer', 'image', 'store'];

/** What a report's findings say, with the command that replays each. */
function findings(report: FuzzReport): string[] {
  return [
    ...report.findings.map((f) => `case ${f.index} (${f.target}): ${f.findings.join(' · ')} | input: ${f.input} | replay: npm run fuzz -- --seed ${report.seed} --only ${f.index}`),
    ...report.errors,
  ];
}

describe('npm run fuzz, short', () => {
  it('ends every case of a short seeded run in success or one clean line, canary unchanged, store whole', async () => {
    const report = await fuzz({ seed: 'npm-test', cases: 240, targets: TARGETS, scale: 'short', timeout: 20_000, cliEvery: 20, repo });
    expect(findings(report)).toEqual([]);
    expect(report.results).toHaveLength(240);
    // Every target had cases that calf accepted and cases it refused: the run reached both sides.
    for (const target of TARGETS) {
      expect(report.results.filter((r) => r.target === target && r.outcome === 'ok').length).toBeGreaterThan(0);
      expect(report.results.filter((r) => r.target === target && r.outcome === 'refused').length).toBeGreaterThan(0);
    }
  }, 180_000);
});

/**
 * Cases `npm run fuzz` found, `[seed, case, fingerprint (16 hex), what calf did before the fix]`.
 * Found with `npm run fuzz -- --seed 1|2 --cases 600 --scale short` on the code before the fixes.
 */
const FOUND: [seed: string, index: number, fingerprint: string, before: string][] = [
  // the tar unpacker (lib/image/unpack.ts)
  ['2', 0, '624769ede66a7507', 'a NUL byte in a PAX path: TypeError ERR_INVALID_ARG_VALUE from fs'],
  ['2', 48, 'bb6bf74cb469f45e', 'a gid field of garbage (NaN): RangeError ERR_OUT_OF_RANGE from lchown'],
  ['2', 552, '9b277bdd78b2f035', 'a PAX gid of 1.5: RangeError ERR_OUT_OF_RANGE from lchown'],
  ['1', 132, 'bc02a98d2aea8cab', 'a device number of garbage: RangeError, NaN cannot be converted to a BigInt'],
  ['1', 585, 'fabbd9ee62f26b4c', 'a newline in an entry name: a message of two lines'],
  ['1', 51, '1936927218d549ba', 'a DEL in an entry name: a control character in the message'],
  ['1', 390, '5dd5850b036bf969', 'ENAMETOOLONG quoting the whole path: a message of 5108 characters'],
  // calf load (lib/image/load.ts)
  ['1', 10, 'b25386de9c972439', 'a nested index that is null: TypeError, cannot read properties of null'],
  ['1', 145, 'f2ef053175fa711d', 'a layer that is a character device (1:5, endless zeros): calf load never ends'],
  ['1', 178, '6d820d28f24c9ff0', 'an archive whose index.json is a character device: extracted by mknod, then read forever'],
  ['1', 271, 'fcbf642d796ebcf8', 'an index.json that is a FIFO: calf load blocks forever in open()'],
  ['1', 97, '56b0180b433ce5e7', 'an index entry that is not an object: invalid digest "undefined"'],
  ['1', 40, '6149f7e11c400a0d', 'a docker archive entry without Config: "undefined" is missing'],
  ['1', 154, '961e8fddd9d7cfc0', 'a nested index that is a string: TypeError, cannot read properties of undefined (reading \'filter\')'],
  ['1', 490, 'a75a8cbb3e402246', 'an index whose manifests is not a list: TypeError, manifests.filter is not a function'],
  ['1', 31, '86a5cb589a4a5815', 'a config that is not JSON: a bare SyntaxError that names no file'],
  ['1', 280, '81979baf168a0600', 'a RepoTags entry that is not a string: TypeError, ref.trim is not a function'],
  ['1', 139, 'd8bc8511011242a3', 'a Config path of 10,000 repeats: a message of 700,066 characters'],
  ['1', 337, '1cf3a31cd85f52ae', 'a layer descriptor without a size: loaded, then "its manifest says undefined" at run'],
  ['2', 22, '8d1e7469dda59f67', 'a manifest without layers: TypeError, manifest.layers is not iterable'],
  ['2', 508, '48021d592c35f9bb', 'a descriptor size that is an object: "… where its descriptor says [object Object]"'],
  ['2', 451, 'd90c232ee70aa8a6', 'a diff_id that is not a digest: addBlob threw with the layer stream open; its ENOENT came later, uncaught'],
  // reading a damaged store (lib/image/store.ts)
  ['1', 149, 'b237ce020cd49b6f', 'an index.json in the store that is null: TypeError, cannot read properties of null'],
  ['1', 137, 'e27542cdc577101f', 'a manifest in the store without config: TypeError, cannot read properties of undefined (reading \'digest\')'],
  ['1', 239, '971242f9cce11213', 'a truncated index.json in the store: a bare SyntaxError that names no file'],
  ['1', 206, 'ac8e2bc1ede16e11', 'a manifest in the store with a config without digest: invalid digest "undefined"'],
  ['1', 17, 'e7950d041fa62494', 'a manifest in the store whose layers is not a list: TypeError, manifest.layers.map is not a function'],
  ['2', 302, 'bf992344faefffd2', 'an index.json in the store whose manifests is not a list: TypeError, entries.find is not a function'],
  ['1', 578, '852aaf66a3dc966e', 'a damaged config in the store, a diff_id ending in a newline: a message of two lines'],
];

describe('npm run fuzz, the cases it found', () => {
  for (const seed of [...new Set(FOUND.map(([s]) => s))]) {
    const cases = FOUND.filter(([s]) => s === seed);
    it(`replays seed ${seed}: ${cases.map(([, i]) => i).join(', ')}`, async () => {
      // Case 451's stray error surfaced while the next case ran: replay the one after it too.
      const only = [...new Set(cases.flatMap(([, i]) => (i === 451 ? [451, 452] : [i])))];
      const report = await fuzz({ seed, cases: 0, only, targets: TARGETS, scale: 'short', timeout: 20_000, cliEvery: 0, repo });
      expect(findings(report)).toEqual([]);
      const printed = Object.fromEntries(report.results.map((r) => [r.index, r.fingerprint.slice(0, 16)]));
      expect(cases.map(([, i, print]) => [i, printed[i] === print ? 'same input' : `the generator now makes another input (${printed[i]})`]))
        .toEqual(cases.map(([, i]) => [i, 'same input']));
    }, 120_000);
  }
});

describe('what the fuzzer found, by hand', () => {
  it('refuses an entry whose base-256 size tar-stream cannot decode, instead of stalling until Node exits', async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-test-'));
    try {
      const size = Buffer.from([0x81, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]); // 0x81: neither 0x80 (positive) nor 0xff
      fs.writeFileSync(path.join(work, 'layer.tar'), tar([{ name: 'big', type: '0', size, data: Buffer.from('x') }]));
      // Before the fix the promise never settled and nothing kept Node alive: calf exited 0, having done nothing.
      let timer: NodeJS.Timeout | undefined;
      const settled = await Promise.race([
        unpackLayer(path.join(work, 'layer.tar'), path.join(work, 'rootfs')).then(() => 'unpacked', (e: Error) => e.message),
        new Promise((resolve) => {
          timer = setTimeout(resolve, 10_000, 'still waiting after 10 s');
        }),
      ]);
      clearTimeout(timer);
      expect(settled).toMatch(/entry "big" has an invalid size \(null\)$/);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });

  it('closes the blob it was about to copy when the store cannot take it, so no error comes after', async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-test-'));
    const stray: unknown[] = [];
    const listen = (error: unknown): void => {
      stray.push(error);
    };
    process.on('uncaughtException', listen);
    try {
      fs.writeFileSync(path.join(work, 'layer.tar'), 'x');
      fs.writeFileSync(path.join(work, 'root'), 'a file where the calf root should be: the store cannot be made');
      await expect(addBlobFromFile(path.join(work, 'layer.tar'), {}, path.join(work, 'root'))).rejects.toThrow(/ENOTDIR|EEXIST/);
      fs.rmSync(path.join(work, 'layer.tar')); // as calf load removes its temp directory
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(stray).toEqual([]);
    } finally {
      process.off('uncaughtException', listen);
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
});
