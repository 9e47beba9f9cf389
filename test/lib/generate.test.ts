/**
 * The generator (scripts/generate.ts) renders each stage of the ladder and refuses a broken source.
 */
import { describe, it, expect } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { render, generated, typeCheck, lessonDiff, LadderError } from '../../scripts/generate.js';
import { LEVELS } from '../../ladder/ladder.js';
import { repo } from '../support/paths.js';

const source = fs.readFileSync(path.join(repo, 'ladder/calf.ts'), 'utf8');

describe('rendering a stage', () => {
  const text = [
    'a',
    'b //@01',
    'c //@..01',
    '//@s01 {',
    'd',
    '//@todo01 {',
    '// TODO(01.1)',
    '//@}',
    '//@todo01: stub();',
    '//@}',
    '  //@..s01: old();',
    '//@ a note',
  ].join('\n');
  const at = (stage: number) => render(text, stage).split('\n');

  it('keeps each line in its range, with replaced code uncommented only where it lives', () => {
    expect(at(0)).toEqual(['a', 'c', '  old();']); // skeleton 00
    expect(at(1)).toEqual(['a', 'c', '  old();']); // solution 00
    expect(at(2)).toEqual(['a', 'c', 'd', '// TODO(01.1)', 'stub();']); // skeleton 01
    expect(at(3)).toEqual(['a', 'b', 'd']); // solution 01
  });

  it('makes the imports relative to levels/NN-name/', () => {
    expect(render("import x from '../lib/linux/index.js';", 1)).toBe("import x from '../../lib/linux/index.js';");
  });
});

describe('refusing a broken ladder', () => {
  it('refuses a tag that names a level not in the ladder', () => {
    expect(() => render('x //@99', 1)).toThrow(new LadderError('ladder/calf.ts:1: level 99 is not in the ladder (ladder/ladder.ts)'));
    expect(() => render('//@todo42 {\n//@}', 1)).toThrow(/level 42 is not in the ladder/);
  });

  it('refuses a block that is never closed, and a //@} that closes none', () => {
    expect(() => render('a\n//@01 {\nb', 1)).toThrow(new LadderError('ladder/calf.ts:2: block never closed'));
    expect(() => render('a\n//@}', 1)).toThrow(new LadderError('ladder/calf.ts:2: //@} closes no block'));
  });

  it('refuses a malformed tag', () => {
    expect(() => render('x //@01..02..03', 1)).toThrow(/bad tag/);
    expect(() => render('x //@1', 1)).toThrow(/bad stage '1'/);
    expect(() => render('x //@01 y', 1)).toThrow(/neither a line tag, a block nor a note/);
  });

  it('finds a stage that renders to a file that does not type-check, and names it', () => {
    // at the very end: the last main() call may sit in a block of the last levels' (//@s16 { … //@})
    const broken = `${source.trimEnd()}\nexport const oops: number = "level 02 only"; //@02..03\n`;
    const errors = typeCheck(generated((file) => (file === 'calf.ts' ? broken : fs.readFileSync(path.join(repo, 'ladder', file), 'utf8'))));
    expect(errors.length).toBe(2); // skeleton 03 and solution 02
    expect(errors.join('\n')).toMatch(/^solutions\/02-mount-namespace\/calf\.ts:\d+:\d+: Type 'string' is not assignable to type 'number'/m);
  });

  it('type-checks every stage of the real ladder', () => {
    expect(typeCheck(generated())).toEqual([]);
  });
});

describe('the lesson of a level', () => {
  it('is the diff from the previous solution, and shows level 03 replacing chroot with pivot_root', () => {
    const diff = lessonDiff(LEVELS[3]!);
    expect(diff).toMatch(/^--- solutions\/02-mount-namespace\/calf\.ts\n\+\+\+ solutions\/03-pivot-root\/calf\.ts/);
    expect(diff).toContain('-  linux.chroot(rootfs);');
    expect(diff).toContain('+  linux.pivot_root(rootfs, `${rootfs}/.oldroot`);');
    expect(diff).not.toContain('TODO'); // solutions carry no TODOs
  });
});
