/**
 * Writes every level's skeleton and solution from the annotated sources in ladder/: `calf.ts`
 * (the run/init story, in every level) and the files a later level adds (`pull.ts`, …: a level
 * lists its own in ladder/ladder.ts; such a file exists from that level's skeleton on).
 *
 *   npm run generate               write levels/NN-name/FILE and solutions/NN-name/FILE
 *   npm run generate -- --check    write nothing; exit 1 if any committed file differs
 *   npm run generate -- --diff N   print the diff from solution N-1 to solution N, every file: level N's lesson
 *
 * Tags (the full story is at the top of ladder/calf.ts). The stages come in the order
 * s00 < 00 < s01 < 01 < …: `sNN` is level NN's skeleton, `NN` its solution. A tag is a range of
 * stages, its start included and its end excluded, each end spelled as a stage:
 *   01        solution 01 and every stage after it
 *   s01       skeleton 01 and every stage after it
 *   s01..04   skeleton 01 up to, not including, solution 04: so skeleton 04 still has it (its
 *             stub calls it, say), solution 04 no longer
 *   s01..s04  skeleton 01 up to, not including, skeleton 04: gone where level 04's TODO begins
 *   ..s04     every stage before skeleton 04
 *   todo01    only skeleton 01 (a TODO and its stub)
 *
 * It refuses a tag that names a level not in the ladder, a block that is never closed or a `//@}`
 * that closes none, and sources whose rendered files do not type-check, or whose solutions have
 * a name they never use (`noUnusedLocals`: an import a level does not need is tagged to start
 * where it is needed, so `--diff N` shows where each new name comes from). A skeleton may import
 * what its TODOs will need.
 * @module
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { LEVELS, levelDir, findLevel, type Level } from '../ladder/ladder.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE = 'ladder/calf.ts';

/** Every source file, with the stage it first appears in: calf.ts from the start, the others from their level's skeleton. */
function sources(): { file: string; from: Stage }[] {
  return [
    { file: 'calf.ts', from: 0 },
    ...LEVELS.flatMap((level) => (level.files ?? []).map((file) => ({ file, from: Number(level.id) * 2 }))),
  ];
}

/** A position in the order s00 < 00 < s01 < 01 …: skeleton NN is 2·NN, solution NN is 2·NN+1. */
type Stage = number;

/** A mistake in the ladder source, with its place. */
export class LadderError extends Error {}

function stage(text: string, where: string): Stage {
  const m = /^(s?)(\d\d)$/.exec(text);
  if (!m) throw new LadderError(`${where}: bad stage '${text}' (expected NN or sNN)`);
  if (!LEVELS.some((l) => l.id === m[2])) throw new LadderError(`${where}: level ${m[2]} is not in the ladder (ladder/ladder.ts)`);
  return Number(m[2]) * 2 + (m[1] ? 0 : 1);
}

/** The stages a tag covers, as [from, until). */
function range(tag: string, where: string): [Stage, Stage] {
  const todo = /^todo(\d\d)$/.exec(tag);
  if (todo) {
    const at = stage(todo[1]!, where) - 1;
    return [at, at + 1];
  }
  const [from, until, ...rest] = tag.split('..');
  if (rest.length || (from === '' && until === undefined)) throw new LadderError(`${where}: bad tag '${tag}'`);
  return [from ? stage(from, where) : 0, until === undefined || until === '' ? Infinity : stage(until, where)];
}

const BLOCK_OPEN = /^\s*\/\/@(\S+) \{\s*$/;
const BLOCK_CLOSE = /^\s*\/\/@\}\s*$/;
const REPLACED = /^(\s*)\/\/@([^\s:]+): (.*)$/;
const LINE_TAG = /\s*\/\/@(\S+)\s*$/;
const NOTE = /^\s*\/\/@( |$)/;
const STRAY = /\/\/@/;

/**
 * The file for one stage: the source's lines whose tags (and enclosing blocks') cover it, with
 * imports made relative to levels/NN-name/ (the source imports from ladder/).
 */
export function render(source: string, at: Stage, file = SOURCE): string {
  const out: string[] = [];
  const open: { range: [Stage, Stage]; line: number }[] = [];
  const covers = (ranges: [Stage, Stage][]) => ranges.every(([from, until]) => from <= at && at < until);
  source.split('\n').forEach((line, i) => {
    const where = `${file}:${i + 1}`;
    const enclosing = open.map((o) => o.range);
    const block = BLOCK_OPEN.exec(line);
    if (block) return void open.push({ range: range(block[1]!, where), line: i + 1 });
    if (BLOCK_CLOSE.test(line)) {
      if (!open.pop()) throw new LadderError(`${where}: //@} closes no block`);
      return;
    }
    if (NOTE.test(line)) return;
    const replaced = REPLACED.exec(line);
    if (replaced) {
      if (covers([...enclosing, range(replaced[2]!, where)])) out.push(`${replaced[1]}${replaced[3]}`);
      return;
    }
    const tag = LINE_TAG.exec(line);
    const code = tag ? line.slice(0, tag.index) : line;
    if (STRAY.test(code)) throw new LadderError(`${where}: a //@ tag that is neither a line tag, a block nor a note`);
    if (covers(tag ? [...enclosing, range(tag[1]!, where)] : enclosing)) out.push(code);
  });
  if (open.length) throw new LadderError(`${file}:${open.at(-1)!.line}: block never closed`);
  return out.join('\n').replace(/\n{3,}/g, '\n\n').replace(/(from\s+')\.\.\/lib\//g, "$1../../lib/");
}

function header(level: Level, kind: 'levels' | 'solutions', file = 'calf.ts'): string {
  const dir = levelDir(level, kind);
  const starts = level.id === '00' || (level.files ?? []).includes(file);
  const what = kind === 'levels'
    ? (starts ? 'your starting point: do the TODOs' : `your starting point: level ${prev(level)}'s solution plus TODOs`)
    : 'the reference solution';
  return [
    '/**',
    ` * calf, level ${level.id} (${level.name})${file === 'calf.ts' ? '' : `, ${file}`}: ${what}.`,
    ` * Goal: ${level.goal}.`,
    ` * Lesson: ${levelDir(level, 'levels')}/README.md · check: npm run level ${Number(level.id)}${kind === 'solutions' ? ' -- --solution' : ''}`,
    ` * Run it as root: tsx ${dir}/calf.ts run busybox sh`,
    ' *',
    ` * Generated from ladder/${file} by \`npm run generate\`${kind === 'levels' ? ' (instructors: edit that file, not this one)' : ''}.`,
    ' */',
  ].join('\n');
}

function prev(level: Level): string {
  return String(Number(level.id) - 1).padStart(2, '0');
}

/** Every generated file, from `source`: path relative to the repo → contents. */
export function generated(read = (file: string) => fs.readFileSync(path.join(repo, 'ladder', file), 'utf8')): Map<string, string> {
  const files = new Map<string, string>();
  const texts = new Map(sources().map(({ file }) => [file, read(file)]));
  for (const level of LEVELS) {
    const n = Number(level.id);
    for (const [kind, at] of [['levels', 2 * n], ['solutions', 2 * n + 1]] as const) {
      for (const { file, from } of sources().filter((f) => f.from <= at)) {
        files.set(`${levelDir(level, kind)}/${file}`, `${header(level, kind, file)}\n${render(texts.get(file)!, at, `ladder/${file}`)}`);
      }
    }
    files.set(`${levelDir(level, 'solutions')}/README.md`,
      `# Level ${level.id} (${level.name}): solution\n\nThe reference solution of level ${level.id}: ${level.goal}.\n` +
      `The lesson is in [../../${levelDir(level, 'levels')}/README.md](../../${levelDir(level, 'levels')}/README.md).\n` +
      `Generated from \`${SOURCE}\` by \`npm run generate\`.\n`);
  }
  return files;
}

/**
 * Type-check the generated TypeScript files as if they were on disk, with the project's
 * compiler options; lib/ is read from disk.
 * @returns tsc's diagnostics, one per line, empty when they type-check
 */
export function typeCheck(files: ReadonlyMap<string, string>): string[] {
  const solutions = new Map([...files].filter(([f]) => f.startsWith('solutions/')));
  const skeletons = new Map([...files].filter(([f]) => !f.startsWith('solutions/')));
  return [...check(solutions, { noUnusedLocals: true }), ...check(skeletons, {})];
}

function check(files: ReadonlyMap<string, string>, extra: ts.CompilerOptions): string[] {
  const config = ts.getParsedCommandLineOfConfigFile(path.join(repo, 'tsconfig.json'), extra, {
    ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => { throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n')); },
  })!;
  const virtual = new Map([...files].filter(([f]) => f.endsWith('.ts')).map(([f, text]) => [path.join(repo, f), text]));
  const host = ts.createCompilerHost(config.options);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => virtual.get(path.resolve(name)) ?? readFile(name);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => virtual.has(path.resolve(name)) || fileExists(name);
  // a level directory the generator has not written yet exists for the compiler too
  const directoryExists = host.directoryExists?.bind(host);
  host.directoryExists = (dir) => [...virtual.keys()].some((f) => f.startsWith(`${path.resolve(dir)}/`)) || (directoryExists?.(dir) ?? true);
  const program = ts.createProgram([...virtual.keys()], config.options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (!d.file || d.start === undefined) return text;
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
    return `${path.relative(repo, d.file.fileName)}:${line + 1}:${character + 1}: ${text}`;
  });
}

/** The unified diff from solution N-1 (or skeleton 00, for level 0) to solution N, file by file. */
export function lessonDiff(level: Level, files = generated()): string {
  const i = LEVELS.indexOf(level);
  const fromDir = i === 0 ? levelDir(level, 'levels') : levelDir(LEVELS[i - 1]!, 'solutions');
  const toDir = levelDir(level, 'solutions');
  const names = [...files.keys()].filter((f) => f.startsWith(`${toDir}/`) && f.endsWith('.ts')).map((f) => f.slice(toDir.length + 1));
  names.sort((a, b) => (a === 'calf.ts' ? -1 : b === 'calf.ts' ? 1 : a.localeCompare(b)));
  return names.map((name) => diff(files, `${fromDir}/${name}`, `${toDir}/${name}`)).join('');
}

function diff(files: ReadonlyMap<string, string>, from: string, to: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-diff-'));
  try {
    // the header names the level: leave it out, the diff is the code
    const body = (f: string) => files.get(f)?.replace(/^\/\*\*[\s\S]*?\*\/\n/, '') ?? '';
    fs.writeFileSync(path.join(dir, 'a'), body(from));
    fs.writeFileSync(path.join(dir, 'b'), body(to));
    try {
      execFileSync('diff', ['-u', '--label', files.has(from) ? from : '/dev/null', '--label', to, 'a', 'b'], { cwd: dir, encoding: 'utf8' });
      return '';
    } catch (err) {
      const { status, stdout } = err as { status: number; stdout: string };
      if (status === 1) return stdout;
      throw err;
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function mainCli(): void {
  const args = process.argv.slice(2);
  const check = args.includes('--check');
  const diffAt = args.indexOf('--diff');
  let files: Map<string, string>;
  try {
    files = generated();
  } catch (err) {
    if (!(err instanceof LadderError)) throw err;
    console.error(`generate: ${err.message}`);
    process.exit(1);
  }
  if (diffAt !== -1) {
    const ref = args[diffAt + 1];
    const level = ref === undefined ? undefined : findLevel(ref);
    if (!level) {
      console.error(`generate: --diff needs a level, 0…${LEVELS.length - 1}`);
      process.exit(2);
    }
    process.stdout.write(lessonDiff(level, files));
    return;
  }
  const errors = typeCheck(files);
  if (errors.length) {
    console.error(`generate: the files ladder/ renders do not type-check (or name what they never use); nothing written:\n  ${errors.join('\n  ')}`);
    process.exit(1);
  }
  const stale: string[] = [];
  for (const [file, text] of files) {
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
    console.error(`generated files are stale (edit ladder/, then run npm run generate):\n  ${stale.join('\n  ')}`);
    process.exit(1);
  }
  if (check) console.log('generated files match ladder/, and type-check');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) mainCli();
