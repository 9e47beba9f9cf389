/**
 * lib's folders import one way (lib/README.md): linux → core → image → storage, network, cgroup →
 * runtime. A module may import from its own folder and from folders below it, never above: read
 * every import line of lib (static, dynamic, type-only, re-exports) and fail on one that runs back up.
 */
import { describe, it, expect } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { repo } from '../support/paths.js';

/** Each folder's rank: a module imports only from folders of a lower rank (or its own). */
const RANK: Record<string, number> = { linux: 0, core: 1, image: 2, storage: 3, network: 3, cgroup: 3, runtime: 4 };

function modules(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? modules(full) : e.name.endsWith('.ts') ? [full] : [];
  });
}

/** Every module specifier a file names: `import … from 'x'`, `export … from 'x'`, `import('x')`, `import 'x'`. */
export function specifiers(text: string): string[] {
  const found: string[] = [];
  for (const re of [/\b(?:import|export)\b[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g, /^\s*import\s+['"]([^'"]+)['"]/gm]) {
    for (const m of text.matchAll(re)) found.push(m[1]!);
  }
  return found;
}

/** The imports of lib that run up the layers: `lib/a/x.ts → lib/b/y.js` where b ranks above a. */
export function upwardImports(libDir: string): string[] {
  const bad: string[] = [];
  for (const file of modules(libDir)) {
    const from = path.relative(libDir, file).split(path.sep)[0]!;
    for (const spec of specifiers(fs.readFileSync(file, 'utf8'))) {
      if (!spec.startsWith('.')) continue;
      const target = path.relative(libDir, path.resolve(path.dirname(file), spec));
      const to = target.split(path.sep)[0]!;
      if (target.startsWith('..')) bad.push(`${path.relative(repo, file)} → ${spec} (outside lib)`);
      else if (!(to in RANK)) bad.push(`${path.relative(repo, file)} → ${spec} (lib/${to} has no rank: add it to lib/README.md and this test)`);
      else if (to !== from && RANK[to]! >= RANK[from]!) bad.push(`${path.relative(repo, file)} → ${spec} (lib/${from} may not import lib/${to})`);
    }
  }
  return bad;
}

describe("lib's layers", () => {
  it('every folder of lib has a rank', () => {
    const folders = fs.readdirSync(path.join(repo, 'lib'), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    expect(folders.filter((f) => !(f in RANK))).toEqual([]);
  });

  it('no import runs from a lower folder to a higher one', () => {
    expect(upwardImports(path.join(repo, 'lib'))).toEqual([]);
  });

  it('finds one that does, static, dynamic or type-only', () => {
    const dir = fs.mkdtempSync(path.join('/tmp', 'calf-layers-'));
    try {
      for (const f of ['core', 'runtime', 'image']) fs.mkdirSync(path.join(dir, f));
      fs.writeFileSync(path.join(dir, 'core/a.ts'), "import type { X } from '../runtime/x.js';\n");
      fs.writeFileSync(path.join(dir, 'image/b.ts'), "const m = await import('../runtime/cli.js');\nexport { y } from './c.js';\n");
      fs.writeFileSync(path.join(dir, 'runtime/c.ts'), "import { a } from '../core/a.js';\n");
      expect(upwardImports(dir).map((l) => l.replace(/^.*?(core|image|runtime)\//, '$1/'))).toEqual([
        'core/a.ts → ../runtime/x.js (lib/core may not import lib/runtime)',
        'image/b.ts → ../runtime/cli.js (lib/image may not import lib/runtime)',
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
