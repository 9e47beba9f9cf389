/**
 * Writes every level's skeleton and solution from the one annotated source, ladder/calf.ts.
 * The tag syntax is explained at the top of that file.
 *
 *   npm run generate              write levels/NN-name/calf.ts and solutions/NN-name/calf.ts
 *   npm run generate -- --check   write nothing; exit 1 if any committed file differs
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LEVELS, levelDir, type Level } from '../ladder/ladder.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE = 'ladder/calf.ts';

/** A position in the order s00 < 00 < s01 < 01 …: skeleton NN is 2·NN, solution NN is 2·NN+1. */
type Stage = number;

function stage(text: string, where: string): Stage {
  const m = /^(s?)(\d\d)$/.exec(text);
  if (!m) throw new Error(`${where}: bad stage '${text}' (expected NN or sNN)`);
  return Number(m[2]) * 2 + (m[1] ? 0 : 1);
}

/** The stages a tag covers, as [from, until). */
function range(tag: string, where: string): [Stage, Stage] {
  const todo = /^todo(\d\d)$/.exec(tag);
  if (todo) return [Number(todo[1]) * 2, Number(todo[1]) * 2 + 1];
  const [from, until, ...rest] = tag.split('..');
  if (rest.length) throw new Error(`${where}: bad tag '${tag}'`);
  return [from ? stage(from, where) : 0, until === undefined || until === '' ? Infinity : stage(until, where)];
}

const BLOCK_OPEN = /^\s*\/\/@(\S+) \{\s*$/;
const BLOCK_CLOSE = /^\s*\/\/@\}\s*$/;
const LINE_TAG = /\s*\/\/@(\S+)\s*$/;
const NOTE = /^\s*\/\/@( |$)/;

/** The file for one stage: the source's lines whose tags (and enclosing blocks') cover it. */
export function render(source: string, at: Stage): string {
  const out: string[] = [];
  const open: [Stage, Stage][] = [];
  source.split('\n').forEach((line, i) => {
    const where = `${SOURCE}:${i + 1}`;
    const block = BLOCK_OPEN.exec(line);
    if (block) return void open.push(range(block[1]!, where));
    if (BLOCK_CLOSE.test(line)) {
      if (!open.pop()) throw new Error(`${where}: //@} without an open block`);
      return;
    }
    if (NOTE.test(line)) return;
    const tag = LINE_TAG.exec(line);
    const ranges = tag ? [...open, range(tag[1]!, where)] : open;
    if (ranges.every(([from, until]) => from <= at && at < until)) out.push(tag ? line.slice(0, tag.index) : line);
  });
  if (open.length) throw new Error(`${SOURCE}: ${open.length} block(s) never closed`);
  return out.join('\n').replace(/\n{3,}/g, '\n\n');
}

function header(level: Level, kind: 'levels' | 'solutions'): string {
  const dir = levelDir(level, kind);
  const what = kind === 'levels'
    ? (level.id === '00' ? 'your starting point: do the TODOs' : `your starting point: level ${prev(level)}'s solution plus TODOs`)
    : 'the reference solution';
  return [
    '/**',
    ` * calf, level ${level.id} (${level.name}): ${what}.`,
    ` * Goal: ${level.goal}.`,
    ` * Lesson: ${levelDir(level, 'levels')}/README.md · check: npm run level ${Number(level.id)}${kind === 'solutions' ? ' -- --solution' : ''}`,
    ` * Run it as root: tsx ${dir}/calf.ts run busybox sh`,
    ' *',
    ` * Generated from ${SOURCE} by \`npm run generate\`${kind === 'levels' ? ' (instructors: edit that file, not this one)' : ''}.`,
    ' */',
  ].join('\n');
}

function prev(level: Level): string {
  return String(Number(level.id) - 1).padStart(2, '0');
}

/** Every generated file: path relative to the repo → contents. */
export function generated(): Map<string, string> {
  const source = fs.readFileSync(path.join(repo, SOURCE), 'utf8');
  const files = new Map<string, string>();
  for (const level of LEVELS) {
    const n = Number(level.id);
    for (const [kind, at] of [['levels', 2 * n], ['solutions', 2 * n + 1]] as const) {
      files.set(`${levelDir(level, kind)}/calf.ts`, `${header(level, kind)}\n${render(source, at)}`);
    }
    files.set(`${levelDir(level, 'solutions')}/README.md`,
      `# Level ${level.id} (${level.name}): solution\n\nThe reference solution of level ${level.id}: ${level.goal}.\n` +
      `The lesson is in [../../${levelDir(level, 'levels')}/README.md](../../${levelDir(level, 'levels')}/README.md).\n` +
      `Generated from \`${SOURCE}\` by \`npm run generate\`.\n`);
  }
  return files;
}

function mainCli(): void {
  const check = process.argv.includes('--check');
  const stale: string[] = [];
  for (const [file, text] of generated()) {
    const full = path.join(repo, file);
    const current = fs.existsSync(full) ? fs.readFileSync(full, 'utf8') : undefined;
    if (current === text) continue;
    if (check) {
      stale.push(file);
    } else {
      fs.mkdirSync(path.dirname(full), { recursive: true });
      fs.writeFileSync(full, text);
      console.log(`wrote ${file}`);
    }
  }
  if (stale.length) {
    console.error(`generated files are stale (edit ${SOURCE}, then run npm run generate):\n  ${stale.join('\n  ')}`);
    process.exit(1);
  }
  if (check) console.log(`generated files match ${SOURCE}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) mainCli();
