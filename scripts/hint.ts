/**
 * `npm run hint N [K]`: the next hint for TODO(NN.K) of level N, from its README, one at a time:
 * a nudge, then the call, then the answer. The README keeps them in `<details>` blocks, which
 * collapse in a browser but not in `cat`, `less` or an editor, where all three, the answer
 * included, are on screen at once. Here each one is a deliberate step: the hints shown so far are
 * remembered (in `$CALF_CACHE/hints.json`, else `~/.cache/calf/hints.json`).
 *
 *   npm run hint 9          the next hint of the first TODO of level 09 not fully shown
 *   npm run hint 9 2        the next hint of TODO(09.2)
 *   npm run hint 9 -- --list      the level's TODOs, and how many of their hints were shown
 *   npm run hint 9 2 -- --reset   forget what was shown of TODO(09.2) (of every TODO of 09 without K)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** One hint of a TODO: `Hint 2: the call` and what the README's `<details>` holds. */
export interface Hint {
  title: string;
  text: string;
}

/** A TODO of a level and its hints, in the README's order. */
export interface Todo {
  /** `09.1` */
  id: string;
  /** the README's line introducing it, without the markup */
  line: string;
  hints: Hint[];
}

/** The TODOs of a README and their hints (`**TODO(NN.K)**`, then `<details><summary>Hint i: …</summary>` blocks). */
export function readHints(readme: string): Todo[] {
  const lines = fs.readFileSync(readme, 'utf8').split('\n');
  const todos: Todo[] = [];
  for (let i = 0; i < lines.length; i++) {
    const todo = /^\*\*TODO\((\d\d\.\d+)\)\*\*/.exec(lines[i]!);
    if (todo) {
      todos.push({ id: todo[1]!, line: lines[i]!.replace(/\*\*/g, ''), hints: [] });
      continue;
    }
    const summary = /^<details><summary>(Hint \d+[^<]*)<\/summary>/.exec(lines[i]!);
    if (!summary || !todos.length) continue;
    const body: string[] = [];
    for (i++; i < lines.length && !/^<\/details>/.test(lines[i]!); i++) body.push(lines[i]!);
    todos.at(-1)!.hints.push({ title: summary[1]!.trim(), text: body.join('\n').trim() });
  }
  return todos;
}

/** Where the hints shown so far are remembered: `{ "09.1": 2 }`. */
function stateFile(): string {
  const cache = process.env.CALF_CACHE ?? path.join(os.homedir(), '.cache', 'calf');
  return path.join(cache, 'hints.json');
}

function readState(): Record<string, number> {
  try {
    return JSON.parse(fs.readFileSync(stateFile(), 'utf8')) as Record<string, number>;
  } catch {
    return {};
  }
}

function writeState(state: Record<string, number>): void {
  fs.mkdirSync(path.dirname(stateFile()), { recursive: true });
  fs.writeFileSync(`${stateFile()}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  fs.renameSync(`${stateFile()}.tmp`, stateFile());
}

function usage(message: string): never {
  console.error(`${message}\nusage: npm run hint N [K] [-- --list | --reset]   (the next hint for TODO(NN.K) of level N)`);
  process.exit(2);
}

function main(): void {
  process.stdout.on('error', () => undefined); // a reader that went away (`| head`): nothing more to say
  const args = process.argv.slice(2);
  const flags = new Set(args.filter((a) => a.startsWith('--')));
  // `npm run hint 9 --list` (without `--`) reaches us as npm_config_list=true
  if (process.env.npm_config_list === 'true') flags.add('--list');
  if (process.env.npm_config_reset === 'true') flags.add('--reset');
  for (const f of flags) if (f !== '--list' && f !== '--reset') usage(`unknown option ${f}`);
  const [n, k, ...rest] = args.filter((a) => !a.startsWith('--'));
  if (n === undefined || !/^\d{1,2}$/.test(n) || (k !== undefined && !/^\d+$/.test(k)) || rest.length) usage('which level (and which of its TODOs)?');
  const level = n.padStart(2, '0');
  const dir = fs.readdirSync(path.join(repo, 'levels')).find((d) => d.startsWith(`${level}-`)) ?? usage(`no level ${n}`);
  const readme = path.join('levels', dir, 'README.md');
  const todos = readHints(path.join(repo, readme));
  if (!todos.length) usage(`${readme} has no TODO with hints`);
  const state = readState();

  if (flags.has('--list')) {
    for (const t of todos) console.log(`TODO(${t.id}): ${Math.min(state[t.id] ?? 0, t.hints.length)} of ${t.hints.length} hints shown   ${t.line.replace(/^TODO\(\S+\)\s*[:,]?\s*/, '')}`);
    return;
  }
  const chosen = k === undefined ? todos.filter((t) => (state[t.id] ?? 0) < t.hints.length) : todos.filter((t) => t.id === `${level}.${k}`);
  if (k !== undefined && !chosen.length) usage(`${readme} has no TODO(${level}.${k}): it has ${todos.map((t) => t.id).join(', ')}`);
  if (flags.has('--reset')) {
    for (const t of k === undefined ? todos : chosen) delete state[t.id];
    writeState(state);
    console.log(`forgot the hints shown for ${(k === undefined ? todos : chosen).map((t) => `TODO(${t.id})`).join(', ')}`);
    return;
  }
  const todo = chosen[0];
  if (!todo) {
    console.log(`every hint of level ${level} has been shown (${todos.map((t) => `TODO(${t.id})`).join(', ')}): \`npm run hint ${n} K\` shows TODO(${level}.K)'s answer again, \`-- --reset\` starts over`);
    return;
  }
  const shown = state[todo.id] ?? 0;
  const index = Math.min(shown, todo.hints.length - 1); // all shown: the answer again
  const hint = todo.hints[index]!;
  // remembered before it is printed: `npm run hint 9 | head` still counts as seen
  state[todo.id] = Math.max(shown, index + 1);
  writeState(state);
  console.log(`TODO(${todo.id}), ${hint.title.replace(/^Hint (\d+)/, `hint $1 of ${todo.hints.length}`)}   (${readme})\n`);
  console.log(hint.text);
  console.log('');
  if (index + 1 < todo.hints.length) {
    const next = todo.hints[index + 1]!.title.replace(/^Hint \d+:?\s*/, '');
    console.log(`Next: \`npm run hint ${n} ${todo.id.split('.')[1]}\` shows ${next ? `hint ${index + 2}, ${next}` : `hint ${index + 2}`}.`);
  } else if (shown >= todo.hints.length) {
    console.log(`(every hint of TODO(${todo.id}) has been shown: this is the last one again; \`-- --reset\` starts over)`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
