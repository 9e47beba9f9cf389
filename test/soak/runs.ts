/**
 * One soak run: what a user does with calf, drawn from the run's own random stream, and maybe a
 * SIGKILL somewhere in it. Four kinds:
 *
 * - `run`: a foreground container on calf0 with cgroup limits (`--rm`), that prints its address;
 * - `detach`: `run -d` + `logs` + `exec` + `stop` + `rm`, with a name, on calf0, with limits;
 * - `pull`: `calf pull` from the test registry into an empty calf root of the run's own (a pull
 *   into the shared store would find every blob there already), then a container of it;
 * - `volumes`: a named volume, a read-only bind mount and a tmpfs, written by one container and
 *   read by the next; then `volume rm`.
 *
 * A kill is either a fault point (`CALF_FAULT`, lib/core/faults.ts: calf kills itself there) or
 * `kill:<role>`: the soak SIGKILLs one of the run's calf processes (the CLI, the monitor, the
 * init stage, the exec stage, a pull) at a random moment of a random step. After a kill the run
 * stops where it is, as a user's would; `calf cleanup` afterwards must remove what it left.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { Rng } from '../fuzz/rng.js';
import { calfProcesses, type Netns } from './host.js';
import { repo } from '../support/paths.js';

export type Kind = 'run' | 'detach' | 'pull' | 'volumes';
const KINDS: Kind[] = ['run', 'detach', 'pull', 'volumes'];

/** How a run ended. */
export interface RunResult {
  index: number;
  kind: Kind;
  /** the planned kill: a fault point, or `kill:<step>`; undefined when the run was not to be killed */
  planned?: string;
  /** what was killed, when something was: `fault:<point>` or `kill:<role>` */
  killed?: string;
  /** why the run failed although nothing killed it (a wrong exit code, output, a timeout) */
  failure?: string;
  /** ms from spawning `calf run` to the container's command running (its first line, or `run -d`'s exit) */
  startupMs: number[];
  /** calf roots the run made of its own (pull), for the checks after it */
  roots: string[];
  /** container ids (short) the run saw, to tell its cgroups from other runs' on a shared machine */
  ids: string[];
}

/** Everything a run needs from the soak. */
export interface RunContext {
  seed: string;
  killShare: number;
  root: string;
  scratch: string;
  netns: Netns;
  entry: string;
  registry: string;
  /** a step's time limit: past it, the run is a finding (a deadlock) */
  timeoutMs: number;
}

interface Step {
  args: string[];
  /** extra environment (CALF_FAULT) */
  env?: Record<string, string>;
  root?: string;
  /** the container's first line marks its start: time it */
  startup?: 'first-line' | 'exit';
  expect: (out: string, code: number | null) => string | undefined;
}

interface StepEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  startupMs?: number;
  /** from spawn to calf's exit */
  ms: number;
  timedOut: boolean;
}

/** How long each command (`run`, `exec`, `pull`…) took, recently: a moving average, for the kill moments. */
const typicalMs = new Map<string, number>();
function remember(command: string, ms: number): void {
  const was = typicalMs.get(command);
  typicalMs.set(command, was === undefined ? ms : 0.8 * was + 0.2 * ms);
}

/** The points each step can die at by itself (lib/core/faults.ts). */
const RUN_POINTS = ['before-cgroup', 'init-waiting', 'after-host-side', 'during-teardown'];
const DETACH_POINTS = ['before-cgroup', 'init-waiting', 'after-host-side', 'before-handover'];

const ok = (want?: RegExp) => (out: string, code: number | null) =>
  code !== 0 ? `exit ${code}` : want && !want.test(out) ? `output ${JSON.stringify(out.slice(0, 200))} lacks ${want}` : undefined;

/** The name of run `index`'s `-d` container (a seed is any text; a name is not). */
export function containerName(seed: string, index: number): string {
  return `soak-${index}-${seed.replace(/[^a-zA-Z0-9_.-]/g, '')}`.slice(0, 40);
}

/** The steps of run `index`, and where it may be killed. */
export function plan(ctx: RunContext, index: number): { kind: Kind; steps: Step[]; faultSteps: Map<number, string[]>; pullRoot?: string } {
  const rng = new Rng(ctx.seed, index);
  const kind = KINDS[rng.next() % KINDS.length]!;
  const name = containerName(ctx.seed, index);
  const limits = ['--memory', '64m', '--pids-limit', '64', '--cpus', '0.5'];
  const faultSteps = new Map<number, string[]>();
  if (kind === 'run') {
    faultSteps.set(0, RUN_POINTS);
    return {
      kind, faultSteps, steps: [{
        args: ['run', '--rm', '--network', 'calf0', ...limits, 'busybox', 'sh', '-c', 'echo soak-ready; ip -4 -o addr show eth0'],
        startup: 'first-line', expect: ok(/soak-ready\n.*inet 1\d*\.\d+\.\d+\.\d+\//s),
      }],
    };
  }
  if (kind === 'detach') {
    faultSteps.set(0, DETACH_POINTS);
    faultSteps.set(2, ['exec-joined']);
    return {
      kind, faultSteps, steps: [
        { args: ['run', '-d', '--name', name, '--network', 'calf0', ...limits, 'busybox', 'sh', '-c', 'echo soak-ready; exec sleep 600'], startup: 'exit', expect: ok(/^[0-9a-f]{64}\n$/) },
        { args: ['logs', name], expect: ok(/soak-ready/) },
        { args: ['exec', name, 'sh', '-c', 'echo exec-ok $(cat /proc/1/comm)'], expect: ok(/^exec-ok sleep\n$/) },
        { args: ['stop', '-t', '1', name], expect: ok() },
        { args: ['rm', name], expect: ok() },
      ],
    };
  }
  if (kind === 'pull') {
    const pullRoot = path.join(ctx.scratch, `pull-${index}`);
    faultSteps.set(1, RUN_POINTS.slice(0, 3));
    return {
      kind, faultSteps, pullRoot, steps: [
        { args: ['pull', '-q', `${ctx.registry}/library/busybox:latest`], root: pullRoot, expect: ok() },
        { args: ['run', '--rm', '--network', 'none', `${ctx.registry}/library/busybox:latest`, 'sh', '-c', 'echo soak-ready; echo pulled'], root: pullRoot, startup: 'first-line', expect: ok(/soak-ready\npulled\n/) },
      ],
    };
  }
  const volume = `soakvol-${index}`;
  const host = path.join(ctx.scratch, `host-${index}`);
  const mounts = ['-v', `${volume}:/data`, '-v', `${host}:/host:ro`, '--tmpfs', '/scratch', ...limits.slice(0, 2)];
  faultSteps.set(1, RUN_POINTS);
  return {
    kind, faultSteps, steps: [
      { args: ['volume', 'create', volume], expect: ok() },
      { args: ['run', '--rm', '--network', 'none', ...mounts, 'busybox', 'sh', '-c', `echo soak-ready; cat /host/token > /data/f && echo x > /scratch/y && ! touch /host/z 2>/dev/null && cat /data/f`], startup: 'first-line', expect: ok(/soak-ready\ntoken-\d+\n/) },
      { args: ['run', '--rm', '--network', 'none', ...mounts, 'busybox', 'sh', '-c', 'cat /data/f; ls /scratch | wc -l'], expect: ok(/^token-\d+\n0\n$/) },
      { args: ['volume', 'rm', volume], expect: ok(/soakvol/) },
    ],
  };
}

/** Run `index`: its steps in order, each checked, one maybe killed. */
export async function soakRun(ctx: RunContext, index: number, onSpawn: (pid: number) => void): Promise<RunResult> {
  const rng = new Rng(ctx.seed, index);
  rng.next(); // the kind, drawn by plan()
  const { kind, steps, faultSteps, pullRoot } = plan(ctx, index);
  const result: RunResult = { index, kind, startupMs: [], roots: pullRoot ? [pullRoot] : [], ids: [] };
  // Where to kill: a fault point of a step that has them, or a random moment of a random step.
  let killStep = -1;
  let fault: string | undefined;
  let delayMs = 0;
  if (rng.next() / 2 ** 32 < ctx.killShare) {
    const withPoints = [...faultSteps.keys()];
    if (withPoints.length && rng.next() % 2 === 0) {
      killStep = withPoints[rng.next() % withPoints.length]!;
      const points = faultSteps.get(killStep)!;
      fault = points[rng.next() % points.length]!;
      result.planned = `fault:${fault}`;
    } else {
      killStep = rng.next() % steps.length;
      // a moment inside the step's work: a share of how long that command has taken so far in
      // this soak (a fixed range would land mostly in node's start-up on a busy machine)
      const command = steps[killStep]!.args[0]!;
      delayMs = Math.round((rng.next() / 2 ** 32) * 1.2 * (typicalMs.get(command) ?? 1500));
      result.planned = `kill:${command} after ${delayMs} ms`;
    }
  }
  if (kind === 'volumes') {
    const host = path.join(ctx.scratch, `host-${index}`);
    fs.mkdirSync(host, { recursive: true });
    fs.writeFileSync(path.join(host, 'token'), `token-${index}\n`);
  }
  const marker = `CALF_SOAK_RUN=${ctx.seed}-${index}`;
  for (const [i, step] of steps.entries()) {
    const env: Record<string, string> = i === killStep && fault ? { CALF_FAULT: fault } : {};
    const kill = i === killStep && !fault ? { afterMs: delayMs, pick: rng.next() } : undefined;
    const end = await runStep(ctx, { ...step, env }, step.root ?? ctx.root, marker, onSpawn, kill, (role) => {
      result.killed = `kill:${role}`;
    });
    if (end.startupMs !== undefined && !result.killed && !fault) result.startupMs.push(end.startupMs);
    if (!result.killed && !(i === killStep && fault) && end.code === 0) remember(step.args[0]!, end.ms);
    if (kind === 'detach' && i === 0 && /^[0-9a-f]{64}\n$/.test(end.stdout)) result.ids.push(end.stdout.slice(0, 12));
    if (end.timedOut) {
      result.failure = `step ${i + 1} (calf ${step.args.join(' ')}) still running after ${ctx.timeoutMs / 1000} s`;
      break;
    }
    if (i === killStep && fault) {
      // did calf reach the point (and die there)? A point this run never passes is no kill.
      // (it died, or said that a process of it did: `run -d` reports its monitor's death, exit 125)
      if (step.expect(end.stdout, end.code) === undefined) continue; // passed through: the point is not on this path
      result.killed = `fault:${fault}`;
    }
    if (result.killed) break;
    const wrong = step.expect(end.stdout, end.code);
    if (wrong) {
      result.failure = `step ${i + 1} (calf ${step.args.join(' ')}): ${wrong}${end.stderr.trim() ? `; stderr: ${end.stderr.trim().slice(0, 300)}` : ''}`;
      break;
    }
  }
  return result;
}

/**
 * Run one calf command in the netns. `killAfter`: SIGKILL one of the run's calf processes (picked
 * at random among those alive then) that many ms after the start. Resolves when calf itself has
 * exited: a container that outlives its killed calf holds its stdout, so the pipe's end is not
 * awaited then (cleanup removes the container).
 */
function runStep(ctx: RunContext, step: Step, root: string, marker: string, onSpawn: (pid: number) => void, kill: { afterMs: number; pick: number } | undefined, onKill: (role: string) => void): Promise<StepEnd> {
  return new Promise((resolve) => {
    const started = performance.now();
    const [k, v] = marker.split('=') as [string, string];
    const child = spawn('nsenter', [...ctx.netns.nsenter, process.execPath, path.join(repo, 'bin/calf.cjs'), ...step.args], {
      cwd: repo, stdio: ['ignore', 'pipe', 'pipe'],
      // a clean environment, as a user's shell has it (no NODE_EXTRA_CA_CERTS: it slows every node start)
      env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/root', CALF_ROOT: root, CALF_FAST_ENTRY: ctx.entry, [k]: v, ...step.env },
    });
    onSpawn(child.pid!);
    let stdout = '';
    let stderr = '';
    let startupMs: number | undefined;
    child.stdout!.on('data', (c: Buffer) => {
      stdout += String(c);
      if (step.startup === 'first-line' && startupMs === undefined && stdout.includes('\n')) startupMs = performance.now() - started;
    });
    child.stderr!.on('data', (c: Buffer) => { stderr += String(c); });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, ctx.timeoutMs);
    let killer: NodeJS.Timeout | undefined;
    if (kill) {
      killer = setTimeout(() => {
        const procs = calfProcesses(marker).sort((a, b) => a.pid - b.pid);
        if (!procs.length) return; // the step was over: no kill this time
        const victim = procs[kill.pick % procs.length]!; // the seed picks which one was there (what was there depends on timing)
        try {
          process.kill(victim.pid, 'SIGKILL');
          onKill(victim.role);
        } catch {
          // it ended meanwhile
        }
      }, kill.afterMs);
    }
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (killer) clearTimeout(killer);
      if (step.startup === 'exit' && code === 0) startupMs = performance.now() - started;
      // give the pipes a moment to deliver what calf wrote; a container holding them is not waited for
      const ms = performance.now() - started;
      setTimeout(() => resolve({ code, signal, stdout, stderr, startupMs, ms, timedOut }), 50);
    });
  });
}
