/**
 * A calf started in the background, for checks that look at a container from the host while it
 * runs: start it, wait until it has printed a line (its "ready"), look, then let it finish (or
 * stop it). One helper for every level: the container's output, how calf ended when it never got
 * there, and the container's command as the host sees it.
 */
import fs from 'node:fs';
import type { ResultPromise } from 'execa';
import { slow } from './host.js';
import { childrenOf } from './procs.js';

/** What a calf run looks like once it has ended (execa's result: exit code, signal, stderr). */
interface Ended {
  exitCode?: number | undefined;
  signal?: string | undefined;
  shortMessage?: string | undefined;
  stderr?: unknown;
  command: string;
}

/**
 * How a calf run ended, for a failure message: `exited 1` or `was killed by SIGSEGV` (no exit
 * code: calf itself was killed, timed out, or never started), then the start of its stderr.
 */
export function howItEnded(r: Ended): [ended: string, said: string] {
  const stderr = (r.stderr instanceof Uint8Array ? Buffer.from(r.stderr).toString() : String(r.stderr ?? '')).trim();
  const ended = r.exitCode !== undefined ? `exited ${r.exitCode}` : r.signal ? `was killed by ${r.signal}` : `did not exit (${r.shortMessage ?? 'no exit code'})`;
  return [ended, stderr ? `; its stderr:\n${stderr.split('\n').slice(0, 6).join('\n')}` : ' (nothing on stderr)'];
}

/** `calf run …` as the tests show it: without node's path and the loader flags. */
export const shown = (command: string) => command.replace(/^\S+ (--import tsx \S+\/calf\.ts|\S+\/bin\/calf\.cjs)/, 'calf').replace(/^nsenter --net=\S+ -- /, '');

/** Every process below `pid` (its children, theirs…), found from the host. */
export function descendants(pid: number): number[] {
  return childrenOf(pid).flatMap((kid) => [kid, ...descendants(kid)]);
}

/** SIGKILL every process below `pid` (the container's, tsx's helper), by pid; `pid` itself lives on and cleans up. */
export function killBelow(pid: number | undefined): void {
  if (pid === undefined) return;
  for (const kid of descendants(pid)) {
    try {
      process.kill(kid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}

/**
 * Send calf SIGTERM, as `docker stop` or a Ctrl-C would, and nothing after it. Not execa's
 * `subprocess.kill('SIGTERM')`: that one also SIGKILLs calf 5 s later if it is still there
 * (execa's `forceKillAfterDelay`, whatever CALF_TEST_SLOW says), and a calf killed that way
 * runs no teardown while its container, orphaned and no longer below calf, keeps running with
 * its veth, its address and its cgroup: in the emulated VM every `stop()` did that.
 */
export function terminate(proc: ResultPromise, signal: NodeJS.Signals = 'SIGTERM'): void {
  try {
    process.kill(proc.pid!, signal);
  } catch {
    // it has ended already
  }
}

/**
 * Wait until a running calf has printed `until` on stdout (a string: that whole line; a RegExp:
 * a match anywhere in what it printed so far), and return what it printed. It fails when calf
 * ends first, naming how it ended and what it said, and after `timeoutMs` (× the machine's
 * slowness), then ending what calf started so that it ends too.
 */
export async function waitForOutput(proc: ResultPromise, until: string | RegExp, options: { what?: string; timeoutMs?: number } = {}): Promise<string> {
  const what = options.what ?? (typeof until === 'string' ? `the line ${JSON.stringify(until)}` : String(until));
  const seen = (text: string) => (typeof until === 'string' ? `\n${text}`.includes(`\n${until}\n`) : until.test(text));
  let out = '';
  let timer: NodeJS.Timeout | undefined;
  const printed = new Promise<'printed'>((resolve) => {
    proc.stdout!.on('data', (chunk: Buffer) => {
      out += String(chunk);
      if (seen(out)) resolve('printed');
    });
  });
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), (options.timeoutMs ?? 45_000) * slow);
  });
  // a moment after calf's end, for what is still in the pipe
  const ended = proc.then(() => new Promise<'ended'>((resolve) => setTimeout(() => resolve('ended'), 100)), () => 'ended' as const);
  try {
    const first = await Promise.race([printed, timedOut, ended]);
    if (first === 'printed' || seen(out)) return out;
    if (first === 'timeout') killBelow(proc.pid);
    const r = await proc;
    const [how, said] = howItEnded(r);
    const when = first === 'timeout' ? `did not print ${what} within ${((options.timeoutMs ?? 45_000) * slow) / 1000} s` : `ended before it printed ${what}`;
    throw new Error(`${shown(r.command)}\n${when}; it printed ${JSON.stringify(out)}; calf ${how}${said}`);
  } finally {
    clearTimeout(timer);
  }
}

/** A calf running in the background, and ways to end it. */
export interface Background<R extends ResultPromise = ResultPromise> {
  /** the calf process (execa's) */
  calf: R;
  /** what it printed on stdout up to and including the awaited line */
  output: string;
  /** Close its stdin (after writing `input`) and wait for calf. */
  finish(input?: string): Promise<Awaited<R>>;
  /**
   * End the container and wait for calf, which then cleans up: SIGKILL to calf's descendants (its
   * container), or with `term`, SIGTERM to calf first (it passes it on) and that SIGKILL 3 s
   * (× CALF_TEST_SLOW) later if calf is still there (a PID 1 ignores a SIGTERM it has no handler
   * for, as `docker stop` knows). calf itself never gets a SIGKILL: it would leave its container.
   */
  stop(options?: { term?: boolean }): Promise<Awaited<R>>;
  /** The host pid of calf's child whose command line contains `text` (the container's command: the init stage became it). */
  childWith(text: string): number | undefined;
}

/**
 * A calf just started (`proc`), handed back once it printed `until` (see {@link waitForOutput}).
 * A calf that ends first, or hangs, fails with how it ended and what it said.
 */
export async function inBackground<R extends ResultPromise>(proc: R, until: string | RegExp, options: { what?: string; timeoutMs?: number } = {}): Promise<Background<R>> {
  const output = await waitForOutput(proc, until, options);
  const cmdline = (pid: number) => { try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' '); } catch { return ''; } };
  const done = () => Promise.resolve(proc) as Promise<Awaited<R>>;
  return {
    calf: proc,
    output,
    finish: (input = '') => {
      proc.stdin?.end(input);
      return done();
    },
    stop: ({ term = false } = {}) => {
      if (!term) {
        killBelow(proc.pid);
        return done();
      }
      terminate(proc);
      const kill = setTimeout(() => killBelow(proc.pid), 3_000 * slow);
      return done().finally(() => clearTimeout(kill));
    },
    childWith: (text) => childrenOf(proc.pid!).find((k) => cmdline(k).includes(text)),
  };
}
