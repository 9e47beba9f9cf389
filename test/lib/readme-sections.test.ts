/**
 * The board points every failing check at the README section that teaches it (the check's
 * `describe` title, as a GitHub anchor): each of those headings must exist.
 */
import { describe, it, expect } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { LEVELS, levelDir } from '../../ladder/ladder.js';
import { slug, testFile } from '../support/checks.js';
import { repo } from '../support/paths.js';

describe('level READMEs', () => {
  for (const level of LEVELS) {
    it(`has a heading in ${levelDir(level, 'levels')}/README.md for every section its tests name`, () => {
      const readme = fs.readFileSync(path.join(repo, levelDir(level, 'levels'), 'README.md'), 'utf8');
      const anchors = readme.split('\n').filter((l) => /^#{1,4} /.test(l)).map((l) => slug(l.replace(/^#+ /, '')));
      // nested describe titles: describe('NN name', () => { describe('Section', …) })
      const sections = [...fs.readFileSync(testFile(level), 'utf8').matchAll(/^ {2}describe\('([^']+)'/gm)].map((m) => m[1]!);
      expect(sections.length).toBeGreaterThan(0);
      expect(sections.filter((s) => !anchors.includes(slug(s)))).toEqual([]);
    });
  }
});
