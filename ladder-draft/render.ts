/**
 * Until the generator carries a second file per level (issue 16 §4), this writes level 13's
 * draft as it would: `ladder-draft/pull.ts` (tagged like ladder/calf.ts, only s13, 13 and
 * todo13) → `solution/13-pull/pull.ts` and `skeleton/13-pull/pull.ts` (the TODOs), each
 * beside a `calf.ts` that is solution 12 plus level 13's wiring (the edits listed below, which
 * are what ladder/calf.ts gets with `//@s13` tags). Both directories are test targets:
 *
 *   npx tsx ladder-draft/render.ts
 *   CALF_TARGET=ladder-draft/solution/13-pull jest test/levels/13-pull.test.ts
 *   CALF_TARGET=ladder-draft/skeleton/13-pull jest …   (every check must fail)
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');

/** Render the tagged source for the solution (`skeleton` false) or the skeleton. */
function render(source: string, skeleton: boolean): string {
  const out: string[] = [];
  let block: '13' | 'todo13' | undefined;
  for (const line of source.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '//@' || trimmed.startsWith('//@ ')) continue;
    const open = /^\/\/@(13|todo13) \{$/.exec(trimmed);
    if (open) { block = open[1] as '13' | 'todo13'; continue; }
    if (trimmed === '//@}') { block = undefined; continue; }
    if (block === '13' && skeleton) continue;
    if (block === 'todo13' && !skeleton) continue;
    const stub = /^(\s*)\/\/@todo13: (.*)$/.exec(line);
    if (stub) { out.push(`${stub[1]}${stub[2]}`); continue; }
    const tagged = /^(.*?)\s*\/\/@(s?13)$/.exec(line);
    if (tagged) {
      if (tagged[2] === '13' && skeleton) continue;
      out.push(tagged[1]!);
      continue;
    }
    out.push(line);
  }
  return out.join('\n').replaceAll("'../lib/", "'../../../lib/");
}

/** Level 13's wiring in calf.ts: what ladder/calf.ts gets, tagged //@s13. */
const CALF_EDITS: [string, string][] = [
  [
    "import { resolveImage, unpackImage, type ResolvedImage } from '../../lib/image/index.js';",
    "import { unpackImage, type ResolvedImage } from '../../lib/image/index.js';\n"
    + "import { pullCommand, tagCommand, parsePullPolicy } from '../../lib/image/commands.js';\n"
    + "import { pull, imageFor } from './pull.js';",
  ],
  [
    "const flags = {\n",
    "const flags = {\n  pull: flag('--pull <policy>', 'pull the image first: missing (the default), always or never', parsePullPolicy),\n",
  ],
  [
    "const { image, container, overlay } = await prepareRootfs(options.image, options.flags.storageDriver);",
    "const { image, container, overlay } = await prepareRootfs(options.image, options.flags.storageDriver, options.flags.pull);",
  ],
  [
    "async function prepareRootfs(ref: string, driverName: string | undefined):",
    "async function prepareRootfs(ref: string, driverName: string | undefined, policy: 'missing' | 'always' | 'never' | undefined):",
  ],
  [
    "  const image = resolveImage(ref);\n",
    "  const image = await imageFor(ref, policy); // level 13: pulled first when the store does not have it\n",
  ],
  [
    "main({ run, init, flags, commands: [networkCommand] });",
    "main({ run, init, flags, commands: [networkCommand, pullCommand(pull), tagCommand] });",
  ],
];

function calfTs(): string {
  let text = fs.readFileSync(path.join(repo, 'solutions/12-security/calf.ts'), 'utf8');
  text = text.replace(/^\/\*\*\n \* calf, level 12 \(security\): the reference solution\.[\s\S]*? \*\/\n/, `/**
 * calf, level 13 (pull), DRAFT: solution 12 plus level 13's wiring (ladder-draft/render.ts).
 * Goal: pull images from a registry; calf run pulls a missing one (--pull missing|always|never).
 */
`);
  for (const [from, to] of CALF_EDITS) {
    if (!text.includes(from)) throw new Error(`render: solution 12 no longer has ${JSON.stringify(from)}`);
    text = text.replace(from, to);
  }
  return text.replaceAll("'../../lib/", "'../../../lib/"); // one directory deeper than solutions/NN-name
}

const source = fs.readFileSync(path.join(here, 'pull.ts'), 'utf8');
const calf = calfTs();
for (const [dir, skeleton] of [[path.join(here, 'solution', '13-pull'), false], [path.join(here, 'skeleton', '13-pull'), true]] as const) {
  fs.mkdirSync(dir, { recursive: true });
  const banner = `// Generated from ladder-draft/pull.ts by ladder-draft/render.ts (${skeleton ? 'skeleton' : 'solution'} 13): edit that, not this.\n`;
  fs.writeFileSync(path.join(dir, 'pull.ts'), banner + render(source, skeleton));
  fs.writeFileSync(path.join(dir, 'calf.ts'), calf);
  console.log(`wrote ${path.relative(repo, dir)}/{calf,pull}.ts`);
}
