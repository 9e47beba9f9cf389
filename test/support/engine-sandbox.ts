/**
 * A throwaway "machine" for podman and containerd: a PID, mount and network namespace the test
 * makes, with every piece of engine state in one test-made directory.
 *
 * Why namespaces and not only flags: both engines write outside the directories their flags
 * name. podman keeps its blob cache in /var/lib/containers/cache and its locks in
 * /dev/shm/libpod_lock, calls runc without --root (so its state lands in /run/runc), and CNI
 * keeps leases in /var/lib/cni and network namespaces in /run/netns; containerd's shims put
 * their sockets in /run/containerd/s, runc's state in /run/containerd/runc and ctr its FIFOs in
 * /run/containerd/fifo. In the sandbox, /run, /var/lib, /var/tmp and /dev/shm are empty tmpfs
 * mounts of its own, so all of that exists only there.
 *
 * The sandbox's PID 1 is a bash that waits for its stdin to close: the test holds the other end.
 * When the test ends it (or the test process dies and the pipe closes), PID 1 exits and the
 * kernel kills every process in the PID namespace: the engines, conmon, the shims, the runtime
 * and the containers. The mount namespace goes with its last process, and every mount in it
 * (overlays, netns bind mounts, tmpfs) with it: nothing the engines mount is ever visible on the
 * host. What is left for {@link EngineSandbox.remove} is what namespaces do not hold: the cgroups
 * (all under one test-named parent, `calf-engines-<token>`) and the directory.
 * @see https://man7.org/linux/man-pages/man7/pid_namespaces.7.html
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { execa, type ResultPromise } from 'execa';
import { token } from './canary.js';
import { slow } from './host.js';
import { childrenOf, holdPidNamespace } from './procs.js';

/** The PATH every engine command gets, and nothing else from the test's environment. */
export const CLEAN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** How to run one command in the sandbox. */
export interface SandboxExecOptions {
  /** variables besides PATH (the command's environment is only these) */
  env?: Record<string, string>;
  /** written to the command's stdin, which is then closed */
  input?: string;
  /** milliseconds, stretched by CALF_TEST_SLOW; default 60 s */
  timeout?: number;
  /** run it on a pseudo-terminal (util-linux `script`), for `-t` */
  tty?: boolean;
}

export interface EngineSandbox {
  /** `calf-engines-<token>`: the cgroup parent of everything the engines make, and containerd's namespace */
  name: string;
  /** `/calf-engines-<token>`, for podman's `--cgroup-parent` */
  cgroupParent: string;
  /** the test-made directory for every piece of engine state (also the host's view of it) */
  dir: string;
  /** host pid of the sandbox's PID 1: its namespaces are /proc/PID/ns/{pid,mnt,net} */
  pid: number;
  /** run a command inside, with a clean environment; resolves (never rejects) with its result */
  exec(file: string, args: readonly string[], options?: SandboxExecOptions): ResultPromise<{ reject: false }>;
  /** start a long-running command inside (a daemon), its output appended to `logFile` */
  spawn(file: string, args: readonly string[], logFile: string, env?: Record<string, string>): ChildProcess;
  /** host pids of every process in the sandbox's PID namespace but its PID 1 (containers' included) */
  processes(): number[];
  /** mount points in the sandbox's mount table (where the engines' mounts are) */
  mounts(): string[];
  /** cgroup directories under `name`, in every hierarchy, deepest first */
  cgroups(): string[];
  /**
   * End everything (idempotent, never throws): PID 1 and with it every process inside, then the
   * cgroups under `name`, then the directory.
   * @returns what could not be removed, one line each; empty when everything is gone
   */
  remove(): Promise<string[]>;
}

/** The sandboxes not removed yet, by name: what the exit and signal handlers end. */
const live = new Map<string, () => string[]>();

/** Sleep synchronously (teardown runs in exit and signal handlers too). */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

// A test process that exits or is interrupted (Ctrl-C, jest ending a worker) still removes its
// sandboxes: the handlers are there only while one is.
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
function onExit(): void {
  for (const teardown of [...live.values()]) teardown();
}
function onSignal(signal: NodeJS.Signals): void {
  onExit();
  process.exit(128 + os.constants.signals[signal]);
}
function track(name: string, teardown: () => string[]): void {
  if (!live.size) {
    process.once('exit', onExit);
    for (const signal of SIGNALS) process.once(signal, onSignal);
  }
  live.set(name, teardown);
}
function untrack(name: string): void {
  live.delete(name);
  if (!live.size) {
    process.off('exit', onExit);
    for (const signal of SIGNALS) process.off(signal, onSignal);
  }
}

/**
 * Make a sandbox: a directory under the temp dir and the namespaces' PID 1.
 * @param options.hideCgroup2 also cover /sys/fs/cgroup/unified (a hybrid host's cgroup2 mount,
 *   without controllers) with an empty, writable tmpfs: crun fails on such a host and works
 *   once it sees no cgroup2 there (the directories it still makes there are the sandbox's);
 *   runc does not care
 */
export async function createEngineSandbox(options: { hideCgroup2?: boolean } = {}): Promise<EngineSandbox> {
  const name = `calf-engines-${token()}`;
  // A short directory name: podman refuses a runroot (here `<dir>/podman/run`) longer than 50
  // characters, which `calf-engines-<token>-XXXXXX` under the test VM's /calf-vm-tmp was.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-e-'));
  const covers = ['/run', '/var/lib', '/var/tmp', '/dev/shm'];
  const hide = options.hideCgroup2 && fs.existsSync('/sys/fs/cgroup/unified/cgroup.procs') ? '/sys/fs/cgroup/unified' : '';
  const script = [
    'set -e',
    `for d in ${covers.join(' ')}; do mount -t tmpfs -o mode=0755 ${name} "$d"; done`,
    'chmod 1777 /var/tmp /dev/shm',
    ...(hide ? [`mount -t tmpfs -o mode=0755 ${name} ${hide}`] : []),
    'ip link set lo up',
    'echo ready',
    // PID 1 of the namespace: bash reaps every orphan that is reparented to it (conmon and the
    // shims double-fork). It ends when the test closes our stdin, or dies and the pipe closes.
    'read -r _ || true',
  ].join('\n');
  const holder = spawn('unshare', ['--pid', '--fork', '--mount-proc', '--mount', '--net', '--propagation', 'private', '--', 'bash', '-c', script], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { PATH: CLEAN_PATH },
  });
  let out = '';
  let err = '';
  holder.stdout!.on('data', (c: Buffer) => { out += String(c); });
  holder.stderr!.on('data', (c: Buffer) => { err += String(c); });
  const until = Date.now() + 10_000 * slow;
  while (!out.includes('ready')) {
    if (holder.exitCode !== null || holder.signalCode !== null || Date.now() > until) {
      holder.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`engine sandbox did not start (unshare --pid --mount --net): ${err.trim() || `exit ${holder.exitCode ?? holder.signalCode}`}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  // unshare --fork waits for its one child, the namespace's PID 1
  const pid1 = childrenOf(holder.pid!)[0];
  if (pid1 === undefined) {
    holder.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error('engine sandbox: unshare said ready but has no child');
  }
  // Held until teardown has seen it empty: the name of a namespace that ended goes to the next one made.
  const pidNs = holdPidNamespace(pid1);
  const enter = ['--target', String(pid1), '--pid', '--mount', '--net', '--'];
  const envOf = (extra: Record<string, string> = {}) => ['env', '-i', `PATH=${CLEAN_PATH}`, ...Object.entries(extra).map(([k, v]) => `${k}=${v}`)];

  /** The steps of remove(), synchronous, each one idempotent; what could not be removed. */
  const teardown = (): string[] => {
    const left: string[] = [];
    if (live.has(name)) {
      untrack(name);
      // 1. PID 1 ends (EOF on its stdin; SIGKILL in case it is stuck), and the kernel kills
      //    every other process in its namespace, and waits for them, before PID 1 is gone.
      holder.stdin!.destroy();
      try {
        process.kill(pid1, 'SIGKILL');
      } catch {
        // gone already
      }
      const until = Date.now() + 15_000 * slow;
      while (processesIn(pid1, pidNs.name, true).length) {
        if (Date.now() > until) {
          left.push(`processes of sandbox ${name} still running: ${processesIn(pid1, pidNs.name, true).join(' ')}`);
          break;
        }
        pause(20);
      }
      pidNs.release();
    }
    // 2. The cgroups the engines made, deepest first; one whose last process is still exiting
    //    is busy for a moment.
    for (const cg of cgroupDirs(name)) {
      const until = Date.now() + 5_000 * slow;
      for (;;) {
        try {
          fs.rmdirSync(cg);
          break;
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') break;
          if (Date.now() > until) {
            left.push(`cgroup ${cg} (${code})`);
            break;
          }
          pause(50);
        }
      }
    }
    // 3. The directory: nothing is mounted in it on the host (the mounts were the sandbox's).
    const mounted = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((p) => p && (p === dir || p.startsWith(`${dir}/`)));
    if (mounted.length) left.push(...mounted.map((m) => `mount ${m}`));
    else {
      try {
        fs.rmSync(dir, { recursive: true, force: true });
      } catch (e) {
        left.push(`${dir} (${(e as Error).message})`);
      }
    }
    return left;
  };
  track(name, teardown);

  const sandbox: EngineSandbox = {
    name,
    cgroupParent: `/${name}`,
    dir,
    pid: pid1,
    exec: (file, args, o = {}) => {
      const command = [...envOf(o.env), file, ...args];
      // script(1) gives the command a pty of its own and copies its output; -e keeps the exit code
      const argv = o.tty ? ['script', '-qec', command.map(shellQuote).join(' '), '/dev/null'] : command;
      return execa('nsenter', [...enter, ...argv], {
        reject: false, stripFinalNewline: false, timeout: (o.timeout ?? 60_000) * slow,
        env: { PATH: CLEAN_PATH }, extendEnv: false, cwd: dir,
        ...(o.input === undefined ? { stdin: 'ignore' as const } : { input: o.input }),
      });
    },
    spawn: (file, args, logFile, env) => {
      const log = fs.openSync(logFile, 'a');
      try {
        return spawn('nsenter', [...enter, ...envOf(env), file, ...args], { stdio: ['ignore', log, log], env: { PATH: CLEAN_PATH }, cwd: dir });
      } finally {
        fs.closeSync(log);
      }
    },
    processes: () => processesIn(pid1, pidNs.name),
    mounts: () => {
      try {
        return fs.readFileSync(`/proc/${pid1}/mountinfo`, 'utf8').trim().split('\n').map((l) => l.split(' ')[4]!);
      } catch {
        return [];
      }
    },
    cgroups: () => cgroupDirs(name),
    remove: async () => teardown(),
  };
  return sandbox;
}

/**
 * Host pids of the processes in PID 1's PID namespace, nested namespaces (the containers')
 * included: NSpid in /proc/PID/status lists a process's pid in each namespace from the host's
 * down, so a process is inside when one of those levels is the sandbox's.
 * @param pid1 the sandbox's PID 1
 * @param ns its PID namespace's name, held open (see {@link holdPidNamespace})
 * @param andPid1 count PID 1 itself
 */
function processesIn(pid1: number, ns: string, andPid1 = false): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === pid1 && !andPid1) continue;
    try {
      if (fs.readlinkSync(`/proc/${pid}/ns/pid`) === ns || inNested(pid, ns)) found.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/**
 * Is `pid` in a PID namespace nested inside `ns` (a container's)? Such a process has a pid in at
 * least three namespaces (NSpid: the host's, the sandbox's, its own), and one of its ancestors
 * (conmon, a shim) is in `ns` itself.
 */
function inNested(pid: number, ns: string): boolean {
  const levels = /^NSpid:\s+(.*)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]?.split(/\s+/).length ?? 1;
  if (levels < 3) return false;
  for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
    const ppid = Number(/^PPid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
    if (!ppid) return false;
    if (fs.readlinkSync(`/proc/${ppid}/ns/pid`) === ns) return true;
    p = ppid;
  }
  return false;
}

/** Every cgroup directory named `name` at a hierarchy's root and everything below it, deepest first. */
export function cgroupDirs(name: string): string[] {
  const found: string[] = [];
  const walk = (d: string): void => {
    found.push(d);
    for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(d, e.name));
  };
  for (const h of fs.readdirSync('/sys/fs/cgroup')) {
    const top = path.join('/sys/fs/cgroup', h, name);
    if (fs.existsSync(path.join(top, 'cgroup.procs'))) walk(top);
  }
  // v2 (one tree, no per-controller directories): /sys/fs/cgroup/NAME itself
  const v2 = path.join('/sys/fs/cgroup', name);
  if (!found.length && fs.existsSync(path.join(v2, 'cgroup.procs'))) walk(v2);
  return found.sort((a, b) => b.split('/').length - a.split('/').length);
}

/** Quote one word for sh. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
