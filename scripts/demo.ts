/**
 * `npm run demo N`: replays the "Check it by hand" transcript of levels/NN-name/README.md, live,
 * against solutions/NN-name (or `--level-dir DIR`, an attendee's code). Each `# ` line of a
 * ```console block is a command: it is typed, run for real in one bash session (so the `calf()`
 * function and variables like `pid` carry over), and its real output is shown. The README's
 * prose after a block, the explanation, is shown too, with a pause.
 *
 * Modes: `--step` (default on a terminal) waits for Enter before each command and after each
 * explanation; `--pace MS` types MS ms per character and goes on by itself; `--check` (default
 * without a terminal, what `npm test` runs) prints only the verdicts.
 *
 * The replay fails (exit 1) when a command's output no longer matches the README, naming the
 * README, the command and the first differing line: the transcripts can't drift. Matching rules,
 * all applied to both the README's lines and the real output:
 *   - `…` stands for any text within a line; a line of only `…` for any number of lines;
 *   - runs of spaces count as one space (column widths follow the values);
 *   - tokens that differ on every run are wildcards: 12- and 64-hex-digit ids, `/proc/PID/`,
 *     `name(PID)` and `calf pid N` pids, namespace inodes `mnt:[N]`, `ls -l` times (`Nov 29
 *     09:46`), sizes like `1.06MB`, times in seconds since the epoch (10 digits), the mount id,
 *     parent id and major:minor that start a mountinfo line, the filesystem type, source and
 *     options of a `/` that is the host's disk, sysfs's rw/ro, MAC addresses, IPv6 link-local
 *     addresses, and the names calf gives bridges (`calf-<id>`) and veths (`veth<id>`);
 *   - `/var/lib/calf` in a command or its output is the demo's own throwaway store, and so is any
 *     path the transcript exports as `CALF_ROOT`;
 *   - a few outputs depend on the host or on the terminal, not on calf; `HOST_DEPENDENT` below
 *     lists them, each with its reason (a number of host mounts, a listing in readdir order, `ls`
 *     printing columns only on a terminal).
 * A step that looks at the whole machine (`MACHINE_WIDE`) is not compared, with a ⚠ and the
 * reason, when another calf was at work on the machine before it ran.
 * Blocks the README introduces with "while `COMMAND` runs in another terminal" run with COMMAND
 * started in the background first (its container's process waited for) and stopped afterwards,
 * as `docker stop` does; a step `calf run … &` waits for its container the same way.
 * A block in a column of a table headed `cgroup v1` | `cgroup v2`, or after a
 * `<!-- demo: cgroup v2 only -->` comment, is replayed only on a machine of that cgroup version;
 * on the other it is skipped with a ⚠ saying so (the VM board replays it: CALF_VM_DEMOS).
 *
 * The session runs in PID and network namespaces of its own (`unshare --pid --mount-proc
 * --net`): `pgrep` in a transcript finds the demo's container, never another process of the
 * machine's, and the bridges, veths and addresses a transcript makes exist only in the session's
 * network namespace, never on the machine's network.
 *
 * Runs as root, with a throwaway calf root holding the test images (build/images), removed at the
 * end along with every process the demo started, even when it fails or is interrupted. Before
 * that, the level's `calf cleanup` looks at the store: anything it finds, the transcript left
 * behind, and the replay fails.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { loadImages } from '../lib/image/load.js';
import { unmountUnder } from '../lib/core/mountinfo.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const imagesDir = path.join(repo, 'build/images');
const TEST_IMAGES = ['busybox', 'layered', 'calf-test'];
const DEFAULT_ROOT = '/var/lib/calf';
/** How many times slower than a workstation this machine runs calf (CALF_TEST_SLOW, as the tests: an emulated VM sets 4). */
const slow = Number(process.env.CALF_TEST_SLOW) || 1;

// ─── Reading the transcript ──────────────────────────────────────────────────────────────────

/** One command of a transcript and the lines the README shows after it. */
export interface Step {
  command: string;
  expected: string[];
  /** line number of the command in the README */
  line: number;
}

/** A ```console block, the prose before it, and whether it needs a command running in the background. */
export interface Block {
  steps: Step[];
  /** the README's text before the block (since the previous block) */
  before: string;
  /** "while `X` runs in another terminal": X */
  background?: string;
  /**
   * The cgroup version the block shows, when it shows only one: the column of a table headed
   * `cgroup v1` | `cgroup v2`, or a block after `<!-- demo: cgroup v2 only -->`. The demo replays
   * the blocks of this machine's version and says which it skipped.
   */
  only?: 'v1' | 'v2';
}

/**
 * The ```console blocks of the README's "## Check it by hand" section, and the prose after the last
 * one. Side by side versions are an HTML table whose header cells name them (`<th>cgroup v1</th>
 * <th>cgroup v2</th>`): a block in a column belongs to that version, and the table's blocks share
 * the "while … runs" of the prose before the table.
 */
export function readTranscript(readme: string): { blocks: Block[]; after: string } {
  const lines = fs.readFileSync(readme, 'utf8').split('\n');
  const start = lines.findIndex((l) => /^## Check it by hand\s*$/.test(l));
  if (start === -1) throw new Error(`${path.relative(repo, readme)} has no "## Check it by hand" section`);
  const end = lines.findIndex((l, i) => i > start && /^## /.test(l));
  const blocks: Block[] = [];
  let prose: string[] = [];
  let table: { columns: ('v1' | 'v2' | undefined)[]; cell: number; background?: string } | undefined;
  for (let i = start + 1; i < (end === -1 ? lines.length : end); i++) {
    const line = lines[i]!;
    if (!/^```console\s*$/.test(line)) {
      if (/<table>/.test(line)) {
        const headers = [...line.matchAll(/<th>([^<]*)<\/th>/g)].map((m) => /cgroup (v[12])/.exec(m[1]!)?.[1] as 'v1' | 'v2' | undefined);
        const before = /while `([^`]+)` runs/i.exec(prose.join(' ').replace(/\s+/g, ' '))?.[1];
        table = { columns: headers, cell: -1, ...(before ? { background: before } : {}) };
      }
      if (table) table.cell += (line.match(/<td>/g) ?? []).length;
      if (/<\/table>/.test(line)) table = undefined;
      prose.push(line);
      continue;
    }
    const steps: Step[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) {
      const l = lines[i]!;
      if (l.startsWith('# ')) steps.push({ command: l.slice(2), expected: [], line: i + 1 });
      else if (steps.length) steps.at(-1)!.expected.push(l);
      else throw new Error(`${path.relative(repo, readme)}:${i + 1}: output before the first command of a block`);
    }
    const before = prose.join('\n').trim();
    const background = table?.background ?? /while `([^`]+)` runs/i.exec(before.replace(/\s+/g, ' '))?.[1];
    const marked = /<!-- demo: cgroup (v[12]) only -->/.exec(before)?.[1] as 'v1' | 'v2' | undefined;
    const only = (table ? table.columns[table.cell] : undefined) ?? marked;
    blocks.push({ steps, before, ...(background ? { background } : {}), ...(only ? { only } : {}) });
    prose = [];
  }
  return { blocks, after: prose.join('\n').trim() };
}

// ─── Matching ────────────────────────────────────────────────────────────────────────────────

/** Outputs that depend on the host rather than on calf, by level and command. */
const HOST_DEPENDENT: { level: string; command: RegExp; why: string; kind: 'numbers' | 'listing' | 'unordered' | 'words' | 'subset' | 'forking' | 'lines'; lines?: RegExp }[] = [
  {
    level: '05', command: /^cat \/proc\/sysvipc\/msg$/, kind: 'subset',
    why: 'the host\'s table lists every queue on the machine, and its ids count all of them: the README\'s lines must be there, with any id',
  },
  {
    level: '06', command: /sleep 60 & (sleep 0\.1; )?ps -o pid,ppid,comm/, kind: 'forking',
    why: 'pids after 1 follow the init stage\'s threads (and the transcript\'s `sleep 0.1` lets the background sleep exec first: before it, ps shows it as sh, or exe)',
  },
  {
    level: '*', command: /^ls (?![^|;]*-[a-zA-Z]*[l1])/, kind: 'words',
    why: 'ls prints columns on a terminal and one name per line into a pipe: the names are compared, in order',
  },
  {
    level: '09|10', command: /^cat \$d\/cgroup\.procs$/, kind: 'numbers',
    why: 'the container\'s pids, as the host numbers them',
  },
  {
    level: '07', command: /^calf run --network host /, kind: 'lines', lines: /^(net:\[|lo$)/,
    why: 'the host\'s interfaces are the machine\'s (a VM\'s eth0 or enp0s3; the demo\'s own network namespace has only lo): lo and the namespace are compared',
  },
  {
    level: '04', command: /^before=\$\(stat /, kind: 'numbers',
    why: 'an inode number and a change time: the next step compares them with themselves, after a second container',
  },
  {
    level: '02', command: /^nsenter --mount --target \$pid wc -l/, kind: 'numbers',
    why: 'the whole namespace holds the host\'s mounts too: their number depends on the machine (the README says so)',
  },
  {
    level: '01', command: /breakout \| head -4$/, kind: 'listing',
    why: 'the escaped process lists the host\'s own /: its first entries depend on the host (readdir order)',
  },
  {
    level: '03', command: /^calf run calf-test breakout$/, kind: 'unordered',
    why: 'the listing of the image\'s / comes in readdir order, which depends on the host\'s filesystem',
  },
];

/**
 * Steps whose command looks at the whole machine's mounts (the demo's PID namespace hides other
 * processes, not mounts): they show what the README shows only when no other calf is at work on it (on a shared development machine, another test run's store or
 * container). Before the block, `unless` must print nothing; when it prints something, the step
 * still runs but is not compared (⚠, with the reason) instead of failing for someone else's calf.
 */
const MACHINE_WIDE: { level: string; command: RegExp; unless: string; why: string }[] = [
  {
    level: '02', command: /^grep -c calf \/proc\/self\/mountinfo$/, unless: 'grep calf /proc/self/mountinfo',
    why: 'the host\'s mount table already had calf mounts before the demo (another calf store on this machine)',
  },
];

const MONTH = '(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';

/** One line, with the wildcard tokens replaced by placeholders and spaces squeezed. */
export function normalize(line: string): string {
  let l = line.replace(/\s+/g, ' ').trimEnd();
  const mountinfo = /^\d+ \d+ \d+:\d+ (\S+) (\S+) (\S+)(?: \S+:\S+)* - (\S+) /.exec(l);
  if (mountinfo) {
    l = l.replace(/^\d+ \d+ \d+:\d+ /, '<mnt> <parent> <dev> ');
    // A / that is not an overlay is the host's disk seen through a bind mount (vfs, levels 01–03):
    // its type, source and options are the host's.
    if (mountinfo[2] === '/' && mountinfo[4] !== 'overlay') {
      l = l.replace(/^(<mnt> <parent> <dev> \S+ \/) \S+(.*) - \S+ \S+ \S+$/, '$1 <options>$2 - <fstype> <source> <options>');
    }
  }
  return l
    .replace(/\b[0-9a-f]{64}\b/g, '<id>')
    .replace(/\b[0-9a-f]{12}\b/g, '<id>')
    // network devices (level 08): random MACs, the IPv6 link-local addresses made from them, and
    // the names calf gives bridges and veths
    .replace(/\b(?:[0-9a-f]{2}:){5}[0-9a-f]{2}\b/g, '<mac>')
    .replace(/\bfe80::[0-9a-f:]+\/64\b/g, '<link-local>')
    .replace(/\bcalf-[0-9a-f]{10}\b/g, 'calf-<id>')
    .replace(/\bveth[0-9a-f]{8}\b/g, 'veth<id>')
    .replace(/\bcalf pid \d+/g, 'calf pid <pid>')
    // sysfs shares its superblock (and so its rw/ro) with the host's /sys only in the host's
    // network namespace: the demo's session has one of its own, as every container from level 07 on
    .replace(/ - sysfs sysfs r[ow]$/, ' - sysfs sysfs <rw|ro>')
    .replace(/\/proc\/\d+\//g, '/proc/<pid>/')
    .replace(/\((\d+)\)/g, '(<pid>)')
    .replace(/:\[\d+\]/g, ':[<inode>]')
    .replace(new RegExp(`\\b${MONTH} ?\\d{1,2} \\d\\d:\\d\\d\\b`, 'g'), '<time>')
    .replace(/\b\d+(?:\.\d+)?(?:B|kB|KB|MB|GB)\b/g, '<size>')
    .replace(/\b1\d{9}\b/g, '<epoch>');
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Does the real line match the README's line (both normalized; `…` is any text)? */
function lineMatches(expected: string, actual: string): boolean {
  if (!expected.includes('…')) return expected === actual;
  return new RegExp(`^${expected.split('…').map(escapeRe).join('.*')}$`).test(actual);
}

/** Lines match, `…` alone on a line standing for any number of lines. */
function linesMatch(expected: readonly string[], actual: readonly string[]): boolean {
  if (expected.length === 0) return actual.length === 0;
  const [head, ...rest] = expected;
  if (head!.trim() === '…') {
    for (let skip = 0; skip <= actual.length; skip++) if (linesMatch(rest, actual.slice(skip))) return true;
    return false;
  }
  return actual.length > 0 && lineMatches(head!, actual[0]!) && linesMatch(rest, actual.slice(1));
}

/** Where they first differ, for the message. */
function firstDifference(expected: readonly string[], actual: readonly string[]): string {
  for (let i = 0; i < Math.max(expected.length, actual.length); i++) {
    const e = expected[i];
    const a = actual[i];
    if (e?.trim() === '…') return `from line ${i + 1} on (after a "…" line)`;
    if (e === undefined) return `line ${i + 1}: expected no more output, got: ${a}`;
    if (a === undefined) return `line ${i + 1}: expected: ${e}\n  got no more output`;
    if (!lineMatches(e, a)) return `line ${i + 1}: expected: ${e}\n  got:      ${a}`;
  }
  return 'the outputs differ';
}

/** Compare a step's real output with the README; undefined when they match, else why not. */
export function compare(level: string, step: Step, output: string[], root: string, aliases: readonly string[] = []): string | undefined {
  // the demo's store, and every path the README gives the store (`export CALF_ROOT=/tmp/calf-demo`), read as /var/lib/calf
  const unroot = (l: string) => [root, ...aliases].reduce((text, r) => text.replaceAll(r, DEFAULT_ROOT), l);
  const norm = (lines: readonly string[]) => lines.map((l) => normalize(unroot(l)));
  let expected = norm(step.expected);
  let actual = norm(output);
  const rule = HOST_DEPENDENT.find((r) => (r.level.split('|').includes(level) || r.level === '*') && r.command.test(step.command));
  if (rule?.kind === 'subset') {
    const id = (l: string) => l.replace(/^( ?\d+) \d+ /, '$1 <id> ');
    const have = new Set(actual.map(id));
    const missing = expected.map(id).filter((l) => !have.has(l));
    return missing.length ? `missing (${rule.why}): ${missing.join(' | ')}` : undefined;
  }
  if (rule?.kind === 'forking') {
    // and the pids after 1 depend on how many threads the init stage had (they take pids too)
    const forking = (l: string) => l.replace(/^( \d+ [1-9]\d*) (sh|sleep|exe)$/, '$1 sh|sleep').replace(/^ (?!1 )\d+ /, ' <pid> ');
    expected = expected.map(forking);
    actual = actual.map(forking);
  }
  if (rule?.kind === 'lines') {
    // only the lines the rule names are compared, on both sides
    expected = expected.filter((l) => rule.lines!.test(l));
    actual = actual.filter((l) => rule.lines!.test(l));
  }
  if (rule?.kind === 'words') {
    expected = [expected.join(' ').split(' ').filter(Boolean).join(' ')];
    actual = [actual.join(' ').split(' ').filter(Boolean).join(' ')];
  } else if (rule?.kind === 'numbers') {
    expected = expected.map((l) => l.replace(/\d+/g, '<n>'));
    actual = actual.map((l) => l.replace(/\d+/g, '<n>'));
  } else if (rule?.kind === 'listing') {
    expected = expected.map((l) => l.replace(/^ \/\S+$/, ' /<entry>'));
    actual = actual.map((l) => l.replace(/^ \/\S+$/, ' /<entry>'));
  } else if (rule?.kind === 'unordered') {
    // First line as is; then every listed entry must be there, in any order ("…": others may be too).
    const [eHead, ...eRest] = expected;
    const [aHead, ...aRest] = actual;
    if (eHead !== undefined && (aHead === undefined || !lineMatches(eHead, aHead))) return firstDifference([eHead], [aHead ?? '']);
    const open = eRest.some((l) => l.trim() === '…');
    const wanted = eRest.filter((l) => l.trim() !== '…');
    const missing = wanted.filter((l) => !aRest.includes(l));
    const extra = open ? [] : aRest.filter((l) => !wanted.includes(l));
    if (missing.length || extra.length) {
      return `the listing differs (order ignored: ${rule.why}):${missing.length ? ` missing ${missing.join(', ')}` : ''}${extra.length ? ` unexpected ${extra.join(', ')}` : ''}`;
    }
    return undefined;
  }
  if (linesMatch(expected, actual)) return undefined;
  return firstDifference(expected, actual);
}

// ─── Running ─────────────────────────────────────────────────────────────────────────────────

/**
 * A bash session: commands go in on fd 3 (NUL-terminated), stdin is /dev/null, stderr joins stdout.
 * It runs in a PID namespace (and the mount namespace its /proc needs) of its own, as PID 1: the
 * transcripts find the container with `pgrep -n sleep` and `pgrep -f 'calf.ts run'`, which must
 * see the demo's processes only, as in an attendee's VM, not whatever else runs on the machine.
 * And in a network namespace of its own, with only lo (brought up first): the bridges, veths and
 * addresses a transcript makes (levels 07, 08) exist only there, never on the machine's network,
 * and go with it. When the demo ends, the kernel kills everything left in those namespaces.
 */
class Shell {
  private readonly bash: ChildProcess;
  private buffer = '';
  private waiting?: (text: string) => void;
  private readonly marker = `__demo_${process.pid}_${Date.now()}__`;

  constructor(cwd: string, env: NodeJS.ProcessEnv, private readonly echo: (chunk: string) => void) {
    const loop = `exec 2>&1; while IFS= read -r -d '' __cmd <&3; do eval "$__cmd"; printf '\\n${this.marker} %s\\n' "$?"; done`;
    this.bash = spawn('unshare', ['--pid', '--mount-proc', '--net', '--kill-child', 'bash', '--noprofile', '--norc', '-c', loop],
      { cwd, env, stdio: ['ignore', 'pipe', 'inherit', 'pipe'], detached: true });
    this.bash.stdout!.setEncoding('utf8');
    this.bash.stdout!.on('data', (chunk: string) => this.onData(chunk));
  }

  /** The `unshare` process, on the host: every process of the session descends from it. */
  get pid(): number {
    return this.bash.pid!;
  }

  private shown = 0;

  private onData(chunk: string): void {
    this.buffer += chunk;
    const at = this.buffer.indexOf(`\n${this.marker} `);
    // Show output as it comes, but never the marker (hold back what could be its beginning).
    const visible = at === -1 ? Math.max(this.shown, this.buffer.length - this.marker.length - 2) : at;
    if (visible > this.shown) {
      if (!this.muted) this.echo(this.buffer.slice(this.shown, visible));
      this.shown = visible;
    }
    if (at !== -1 && this.buffer.indexOf('\n', at + 1) !== -1 && this.waiting) {
      const text = this.buffer.slice(0, at);
      this.buffer = this.buffer.slice(this.buffer.indexOf('\n', at + 1) + 1);
      this.shown = 0;
      const done = this.waiting;
      this.waiting = undefined;
      done(text);
    }
  }

  private muted = false;

  /** Run one command; its output, as lines. `quiet`: the demo's own bookkeeping, not shown. */
  run(command: string, options: { quiet?: boolean; timeoutMs?: number } = {}): Promise<string[]> {
    const timeoutMs = (options.timeoutMs ?? 60_000) * slow;
    this.muted = options.quiet === true;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs / 1000} s: ${command}`)), timeoutMs);
      this.waiting = (text) => {
        clearTimeout(timer);
        const lines = text.split('\n');
        if (lines.at(-1) === '') lines.pop();
        resolve(lines);
      };
      (this.bash.stdio[3] as Writable).write(`${command}\0`);
    });
  }

  /** Stop the shell and everything it started (one process group: bash has no job control here), and so its PID namespace. */
  stop(): void {
    // SIGKILL: bash is PID 1 of its namespace, which ignores signals it has no handler for, and
    // unshare ignores SIGTERM while it waits. Its death takes the namespace's processes with it.
    (this.bash.stdio[3] as Writable).destroy();
    this.bash.stdout!.destroy();
    try {
      process.kill(-this.bash.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
    this.bash.unref();
  }
}

/** Pids of every descendant of `pid`, from /proc. */
function descendants(pid: number): { pid: number; comm: string }[] {
  const parent = new Map<number, number>();
  const comm = new Map<number, string>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      comm.set(Number(entry), stat.slice(stat.indexOf('(') + 1, close));
      parent.set(Number(entry), Number(stat.slice(close + 2).split(' ')[1]));
    } catch {
      // it exited meanwhile
    }
  }
  const found: { pid: number; comm: string }[] = [];
  const walk = (p: number) => {
    for (const [child, ppid] of parent) if (ppid === p) {
      found.push({ pid: child, comm: comm.get(child)! });
      walk(child);
    }
  };
  walk(pid);
  return found;
}

/** Is the process there, and not a zombie? */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** node itself, by the path its processes' /proc/PID/exe shows. */
const nodeExe = fs.realpathSync(process.execPath);

/** The namespace or root of a process, as /proc shows it (undefined once it is gone). */
function nsOf(pid: number, what: 'ns/mnt' | 'root'): string | undefined {
  try {
    return fs.readlinkSync(`/proc/${pid}/${what}`);
  } catch {
    return undefined;
  }
}

/** The program process `pid`'s parent runs, or undefined when either is gone. */
function parentExe(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return fs.readlinkSync(`/proc/${stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]}/exe`);
  } catch {
    return undefined;
  }
}

/**
 * A container's process: it exec'd something other than node (so it is not calf, tsx or the init
 * stage), and from level 01 on it lives in another root or mount namespace than `session` (a process
 * of the demo's session: so it is not an `ip` or `nsenter` that calf runs on the host's side).
 */
function isContainer(pid: number, level: string, session: number): boolean {
  try {
    if (fs.readlinkSync(`/proc/${pid}/exe`) === nodeExe) return false;
  } catch {
    return false;
  }
  // Level 00 has no namespace to tell the container by: it is what calf's node process (its init
  // stage) became, a child of node. Not the shell that started calf, which is no node either.
  if (level === '00') return parentExe(pid) === nodeExe;
  return nsOf(pid, 'ns/mnt') !== nsOf(session, 'ns/mnt') || nsOf(pid, 'root') !== nsOf(session, 'root');
}

/**
 * Wait until the calf run started in the background as host pid `pid` has a container: a process
 * below it that exec'd its command. Undefined when it has, else why not.
 */
async function untilContainer(pid: number | undefined, level: string, seconds = 30 * slow): Promise<string | undefined> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    if (pid !== undefined && descendants(pid).some((p) => isContainer(p.pid, level, pid))) {
      await sleep(1000); // and a moment for its command to get going (a server to listen), as at a keyboard
      return undefined;
    }
    if (pid === undefined || !alive(pid)) return 'it ended before its container started';
    if (Date.now() > deadline) return `no container process after ${seconds} s`;
    await sleep(100);
  }
}

/**
 * Stop a background calf as `docker stop` does: SIGTERM to it (tsx passes it on to calf, calf to the
 * container), and after 5 s a SIGKILL to the container's processes, which PID 1 can't ignore. calf
 * itself is never killed: it still cleans up after its container.
 */
async function stopBackground(pid: number, level: string): Promise<void> {
  // who is who, before anything ends: tsx may exit at once and leave calf to the session's init
  const tree = [pid, ...descendants(pid).map((p) => p.pid)];
  const calfs = tree.filter((p) => !isContainer(p, level, pid));
  const containers = tree.filter((p) => isContainer(p, level, pid));
  try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
  for (let waited = 0; calfs.some(alive) && waited < 5000 * slow; waited += 100) await sleep(100);
  for (const p of containers) {
    try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
  }
  for (let waited = 0; calfs.some(alive) && waited < 20_000 * slow; waited += 100) await sleep(100);
}

/** This machine's cgroup version, as the kernel shows it: a block of the other version's is not replayed. */
function cgroupVersion(): 'v1' | 'v2' {
  return fs.existsSync('/sys/fs/cgroup/cgroup.controllers') ? 'v2' : 'v1';
}

/** The host pid of the session's process that is `inner` in its PID namespace (NSpid in /proc/PID/status). */
function hostPid(session: number, inner: number): number | undefined {
  for (const p of descendants(session)) {
    try {
      const nspid = /^NSpid:\s+(.*)$/m.exec(fs.readFileSync(`/proc/${p.pid}/status`, 'utf8'))?.[1]?.trim().split(/\s+/);
      if (nspid && Number(nspid.at(-1)) === inner && nspid.length > 1) return p.pid;
    } catch {
      // it exited meanwhile
    }
  }
  return undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Options {
  level: string;
  dir: string;
  mode: 'step' | 'pace' | 'check';
  pace: number;
}

const tty = process.stdout.isTTY === true;
const paint = (code: string) => (text: string) => (tty ? `\x1b[${code}m${text}\x1b[0m` : text);
const bold = paint('1');
const dim = paint('2');
const green = paint('32');
const red = paint('31');

/** A command of the transcript that never ended: the replay stops, and says so as a drift. */
class Stuck extends Error {}

/** Replay one level's transcript. Returns the drifts found (empty: the README is right). */
export async function replay(options: Options): Promise<string[]> {
  const levelReadme = fs.readdirSync(path.join(repo, 'levels')).find((d) => d.startsWith(`${options.level}-`));
  if (!levelReadme) throw new Error(`no levels/${options.level}-* directory`);
  const readme = path.join(repo, 'levels', levelReadme, 'README.md');
  const shownReadme = path.relative(repo, readme);
  const { blocks, after } = readTranscript(readme);
  const check = options.mode === 'check';
  const say = (text: string) => process.stdout.write(text);

  const missing = TEST_IMAGES.filter((name) => !fs.existsSync(path.join(imagesDir, name, 'index.json')));
  if (missing.length) throw new Error(`test images not built (${missing.join(', ')}): run npm run setup, or npm run images`);
  // What the transcript makes on the host in /tmp (`echo … > /tmp/canary`, `mkdir -p /tmp/share`, a bind's
  // `-v /tmp/share:…`, which calf makes) is removed afterwards, unless it was there before.
  const written = [...new Set(blocks.flatMap((b) => [b.background ?? '', ...b.steps.map((st) => st.command)].flatMap((command) =>
    [...command.matchAll(/(?:>\s*|\bmkdir\s+(?:-p\s+)?|-v\s+)(\/tmp\/[\w.-]+)/g)].map((m) => m[1]!))))]
    .filter((f) => !fs.existsSync(f));
  // Not under a name containing "calf": the transcripts grep the host's mount table for it.
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-root-'));
  // The session's own TMPDIR. tsx (the transcript's `calf`) listens on $TMPDIR/tsx-UID/PID.pipe,
  // and the session is a PID namespace of its own: two demos replayed side by side have tsx
  // processes with the same pid, and the second one's listen failed with EADDRINUSE (demo 09 in
  // CI's VM printed Node's `node:net` error instead of its cgroup line).
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-tmp-'));
  let shell: Shell | undefined;
  // Paths the transcript gives its own store (`export CALF_ROOT=/tmp/calf-demo`): the demo's store instead.
  const aliases = [...new Set(blocks.flatMap((b) => b.steps.flatMap((st) => [...st.command.matchAll(/\bCALF_ROOT=(\/[\w./-]+)/g)].map((m) => m[1]!))))];
  const cleanup = () => {
    shell?.stop();
    // What a transcript's calf left in the store (a container killed with its calf, cgroups whose
    // records are in the store) goes before the store: by the store's own records, so nothing else
    // on the machine is touched.
    try {
      execFileSync(process.execPath, ['--import', 'tsx', path.join(options.dir, 'calf.ts'), 'cleanup', '--force'],
        { cwd: repo, env: { ...process.env, CALF_ROOT: root }, stdio: 'ignore', timeout: 60_000 * slow });
    } catch {
      // best effort: what is left is reported by the check below, or by the next run
    }
    for (const f of written) fs.rmSync(f, { recursive: true, force: true });
    unmountUnder(root);
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals) => {
    cleanup();
    process.exit(128 + os.constants.signals[signal]);
  };
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(s, onSignal);
  const drifts: string[] = [];
  const rl = check ? undefined : readline.createInterface({ input: process.stdin });
  const enter = async () => {
    if (options.mode === 'step' && rl) await new Promise<void>((r) => rl.once('line', () => r()));
    else if (options.mode === 'pace') await sleep(1200);
  };
  try {
    for (const name of TEST_IMAGES) await loadImages(path.join(imagesDir, name), root);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CALF_ROOT: root,
      TMPDIR: tmp,
      PATH: `${path.join(repo, 'node_modules/.bin')}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`,
      TERM: 'dumb',
    };
    delete env.CALF_DEBUG;
    shell = new Shell(repo, env, check ? () => undefined : (chunk) => say(chunk));
    await shell.run('ip link set lo up', { quiet: true }); // the session's network namespace: only lo, down
    const version = cgroupVersion();
    if (!check) say(`${bold(`calf demo · level ${options.level} · ${options.dir}`)}  ${dim(`(${shownReadme}, "Check it by hand"; store ${root})`)}\n\n`);
    for (const block of blocks) {
      if (block.only && block.only !== version) {
        say(`${dim('⚠')} skipped ${block.steps.length} command${block.steps.length > 1 ? 's' : ''} for cgroup ${block.only} (from \`${block.steps[0]?.command}\`): this machine has cgroup ${version}; \`CALF_VM_DEMOS=${Number(options.level)} npm run test:vm\` replays ${block.only === 'v2' ? 'them in a cgroup-v2 VM' : 'the other column'}\n`);
        continue;
      }
      if (!check && block.before) {
        say(`${dim(block.before)}\n\n`);
        await enter();
      }
      // Steps that look at the whole machine: is anything else there that would show up?
      const busy = new Map<Step, string>();
      for (const step of block.steps) {
        const rule = MACHINE_WIDE.find((r) => r.level === options.level && r.command.test(step.command));
        if (rule && (await shell.run(rule.unless, { quiet: true })).some((l) => l.trim())) busy.set(step, rule.why);
      }
      let background: number | undefined; // its host pid
      if (block.background) {
        const bg = rewrite(block.background, options, root, aliases);
        if (!check) say(dim(`(in the background: ${bg})\n`));
        await shell.run(`${bg} >/dev/null 2>&1 & __demo_bg=$!`, { quiet: true });
        const inner = Number((await shell.run('echo $__demo_bg', { quiet: true }))[0]);
        background = hostPid(shell.pid, inner);
        const problem = await untilContainer(background, options.level);
        if (problem) {
          const message = `${shownReadme}: \`${block.background}\` (run in the background for the next ${block.steps.length} commands): ${problem}; those commands were not run`;
          drifts.push(message);
          say(`${red('✗')} ${message}\n`);
          if (background !== undefined) await stopBackground(background, options.level);
          await shell.run('wait $__demo_bg 2>/dev/null; true', { quiet: true }).catch(() => undefined);
          continue;
        }
      }
      try {
        for (const step of block.steps) {
          const command = rewrite(step.command, options, root, aliases);
          if (!check) {
            if (options.mode === 'step') await enter();
            say(bold('# '));
            if (options.mode === 'pace') for (const c of command) { say(c); await sleep(options.pace); }
            else say(command);
            say('\n');
          }
          let output: string[];
          try {
            output = await shell.run(command);
          } catch (err) {
            // a command that never ends: the session is stuck, nothing after it can run
            const message = `${shownReadme}:${step.line}: \`${step.command}\` did not end (${(err as Error).message}); the replay stops here`;
            drifts.push(message);
            say(`${red('✗')} ${message}\n`);
            throw new Stuck();
          }
          // `calf run … &`: the transcript goes on once its container runs, as a person at the keyboard would
          if (/&\s*$/.test(command) && /\brun\b/.test(command)) {
            const started = hostPid(shell.pid, Number((await shell.run('echo $!', { quiet: true }))[0]));
            const problem = await untilContainer(started, options.level);
            if (problem) output.push(`(demo: \`${step.command}\`: ${problem})`);
          }
          const drift = compare(options.level, step, output, root, aliases);
          if (drift && busy.has(step)) {
            say(`⚠ ${step.command}: not compared: ${busy.get(step)}\n`);
          } else if (drift) {
            const message = `${shownReadme}:${step.line}: \`${step.command}\` no longer prints what the README shows\n  ${drift}`;
            drifts.push(message);
            say(`${red('✗')} ${message}\n`);
          } else if (check) {
            say(`${green('✓')} ${step.command}\n`);
          }
        }
      } finally {
        if (background !== undefined) {
          await stopBackground(background, options.level);
          await shell.run('wait $__demo_bg 2>/dev/null; true', { quiet: true });
        }
      }
      if (!check) say('\n');
    }
    if (!check && after) {
      say(`${dim(after)}\n`);
      await enter();
    }
    // Nothing may be left: what `calf cleanup` finds in the demo's store, the transcript left behind.
    const left = (await shell.run(`node --import tsx ${options.dir}/calf.ts cleanup 2>&1`, { quiet: true })).filter((l) => l.trim());
    if (left.length) {
      const message = `${shownReadme}: the transcript left things behind, which calf cleanup removed:\n  ${left.map((l) => l.replaceAll(root, DEFAULT_ROOT)).join('\n  ')}`;
      drifts.push(message);
      say(`${red('✗')} ${message}\n`);
    }
  } catch (err) {
    if (!(err instanceof Stuck)) throw err;
  } finally {
    rl?.close();
    cleanup();
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(s, onSignal);
  }
  return drifts;
}

/** A transcript command as the demo runs it: against the chosen directory, in the demo's store. */
function rewrite(command: string, options: Options, root: string, aliases: readonly string[] = []): string {
  return [DEFAULT_ROOT, ...aliases].reduce((text, r) => text.replaceAll(r, root), command
    .replace(/\btsx levels\/\d\d-[\w-]+\/calf\.ts\b/g, `tsx ${options.dir}/calf.ts`));
}

function usage(message: string): never {
  console.error(`${message}\nusage: npm run demo N [-- [--level-dir DIR] [--step | --pace MS | --check]]`);
  process.exit(2);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let ref: string | undefined;
  let dir: string | undefined;
  let mode: Options['mode'] = process.stdin.isTTY && process.stdout.isTTY ? 'step' : 'check';
  let pace = 30;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--level-dir') dir = args[++i] ?? usage('--level-dir needs a directory');
    else if (a === '--step') mode = 'step';
    else if (a === '--check') mode = 'check';
    else if (a === '--pace') {
      mode = 'pace';
      pace = Number(args[++i]);
      if (!Number.isFinite(pace)) usage('--pace needs milliseconds per character');
    } else if (a.startsWith('-') || ref !== undefined) usage(`unknown argument ${a}`);
    else ref = a;
  }
  if (ref === undefined || !/^\d{1,2}$/.test(ref)) usage('which level?');
  const level = ref.padStart(2, '0');
  if (process.getuid?.() !== 0) {
    console.error('calf demo: run it as root (sudo -i): calf needs root for chroot, mounts and namespaces');
    process.exit(1);
  }
  if (dir === undefined) {
    const solution = fs.readdirSync(path.join(repo, 'solutions')).find((d) => d.startsWith(`${level}-`));
    if (!solution) usage(`no solutions/${level}-* directory`);
    dir = `solutions/${solution}`;
  } else {
    const abs = path.resolve(process.cwd(), dir);
    if (!fs.existsSync(path.join(abs, 'calf.ts'))) usage(`${dir} has no calf.ts`);
    const rel = path.relative(repo, abs);
    dir = rel.startsWith('..') ? abs : rel;
  }
  const started = Date.now();
  if (mode === 'check') {
    // npm test must never hang on a demo: give up after 5 minutes (SIGTERM runs the cleanup).
    setTimeout(() => {
      console.error(`${red('✗')} demo ${level}: no end after ${5 * slow} minutes, giving up`);
      process.kill(process.pid, 'SIGTERM');
    }, 300_000 * slow).unref();
  }
  const drifts = await replay({ level, dir, mode, pace });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (drifts.length) {
    console.log(`${red('✗')} demo ${level}: ${drifts.length} command${drifts.length > 1 ? 's' : ''} no longer match${drifts.length > 1 ? '' : 'es'} levels/${level}-*/README.md (${dir}, ${seconds} s)`);
    process.exit(1);
  }
  console.log(`${green('✓')} demo ${level}: ${dir} replays the README's transcript (${seconds} s)`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
