/**
 * What calf or its tests may leave on the host: mounts and container directories under a calf
 * root, calf cgroups, network namespaces and links, System V IPC objects, and calf processes. The board and
 * `npm test` take a snapshot before a run and fail it on anything new afterwards.
 *
 * Two sources, on purpose: the detector's own scans (it does not trust the code it checks), and
 * every kind of leftover lib lists (lib/runtime/leftovers.ts), so a kind a new level adds is
 * detected without an edit here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { mountPoints } from './mounts.js';
import { findLeftovers } from '../../lib/runtime/leftovers.js';

function safe<T>(fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch {
    return fallback;
  }
}

function findDirs(dir: string, depth: number, match: RegExp): string[] {
  if (depth < 0) return [];
  const entries = safe(() => fs.readdirSync(dir, { withFileTypes: true }), []);
  return entries.filter((e) => e.isDirectory()).flatMap((e) => {
    const full = path.join(dir, e.name);
    return [...(match.test(e.name) ? [full] : []), ...findDirs(full, depth - 1, match)];
  });
}

/**
 * A stopped container that Docker's semantics keep until `calf rm` (level 15): its record says it
 * stopped, nobody is in charge of it, and its teardown list holds only what `rm` removes (its
 * directory, its name). Not a leftover: a directory of files. Whatever else of it might be left
 * (a mount, a cgroup, a veth, a process) the other scans find.
 */
function keptStopped(dir: string): boolean {
  const state = safe(() => JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as { owner: unknown; status: string; teardown: { step: string }[] }, undefined);
  return state !== undefined && state.owner === null && state.status === 'stopped'
    && state.teardown.every((s) => s.step === 'removeContainerDir' || s.step === 'releaseName');
}

/** Everything calf-made that exists right now, one line per thing. */
export function snapshot(roots: readonly string[]): string[] {
  const found: string[] = [];
  for (const point of mountPoints(fs.readFileSync('/proc/self/mountinfo', 'utf8'))) {
    if (roots.some((r) => point === r || point.startsWith(`${r}/`))) found.push(`mount ${point}`);
  }
  for (const root of roots) {
    const containers = safe(() => fs.readdirSync(path.join(root, 'containers')), []);
    for (const d of containers) if (!keptStopped(path.join(root, 'containers', d))) found.push(`container dir ${path.join(root, 'containers', d)}`);
    // a name (level 15) whose container is gone
    for (const name of safe(() => fs.readdirSync(path.join(root, 'names')), [])) {
      const id = safe(() => fs.readFileSync(path.join(root, 'names', name), 'utf8').trim(), '');
      if (!containers.includes(id.slice(0, 12))) found.push(`container name ${name} (${id.slice(0, 12) || 'no id'})`);
    }
  }
  // calf's cgroups, and the empty ones in them: a calf/<id> left empty (demo 09's once) is a
  // leftover even when calf/ itself was there before. (Not the ones with processes: on a shared
  // machine those are other runs' containers, running.)
  for (const cg of findDirs('/sys/fs/cgroup', 3, /calf/i)) {
    found.push(`cgroup ${cg}`);
    const empty = (dir: string) => safe(() => fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').trim() === '', false);
    for (const child of findDirs(cg, 0, /./).filter(empty)) found.push(`cgroup ${child}`);
  }
  // System V IPC objects in the host's namespace: a container without an IPC namespace of its own
  // (before level 05, or a level 05 without CLONE_NEWIPC) makes them there, and they outlive it
  for (const [file, kind] of [['msg', 'message queue'], ['sem', 'semaphore set'], ['shm', 'shared memory segment']] as const) {
    const rows = safe(() => fs.readFileSync(`/proc/sysvipc/${file}`, 'utf8'), '').trim().split('\n').slice(1);
    for (const row of rows) {
      const [key, id] = row.trim().split(/\s+/);
      if (id !== undefined) found.push(`ipc ${kind} ${id} (key ${key})`);
    }
  }
  const netns = safe(() => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }), '');
  for (const ns of netns.split('\n').filter((l) => /calf/i.test(l))) found.push(`netns ${ns.split(' ')[0]}`);
  for (const link of safe(() => fs.readdirSync('/sys/class/net'), [])) if (/calf|veth/i.test(link)) found.push(`link ${link}`);
  // Processes of this run only (an attendee may have a container open in another terminal):
  // calf stages started with one of these roots, and commands whose root directory is inside one.
  for (const pid of safe(() => fs.readdirSync('/proc'), []).filter((p) => /^\d+$/.test(p))) {
    const environ = safe(() => fs.readFileSync(`/proc/${pid}/environ`, 'utf8'), '').split('\0');
    const rootDir = safe(() => fs.readlinkSync(`/proc/${pid}/root`), '');
    const ours = roots.some((r) => environ.includes(`CALF_ROOT=${r}`) || rootDir.startsWith(`${r}/`));
    if (ours) found.push(`process ${pid} ${safe(() => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'), '').split('\0').join(' ').trim()}`);
  }
  for (const root of roots) for (const thing of safe(() => findLeftovers(root), [])) found.push(thing.what);
  return [...new Set(found)];
}

/**
 * The command that removes one leftover line by hand, for the board's report: what `calf cleanup`
 * could not (its records went with the test's store, or the thing is not calf's kind of thing).
 */
export function removalCommand(thing: string): string | undefined {
  const ipc = /^ipc (message queue|semaphore set|shared memory segment) (\d+)/.exec(thing);
  if (ipc) return `ipcrm -${{ 'message queue': 'q', 'semaphore set': 's', 'shared memory segment': 'm' }[ipc[1]!]} ${ipc[2]}`;
  const [, kind, rest = ''] = /^(cgroup|netns|link|process|mount) (\S+)/.exec(thing) ?? [];
  if (kind === 'cgroup') return `rmdir ${rest}`;
  if (kind === 'netns') return `ip netns delete ${rest}`;
  if (kind === 'link') return `ip link delete ${rest.replace(/@.*$/, '')}`;
  if (kind === 'process') return `kill -KILL ${rest}`;
  if (kind === 'mount') return `umount -l ${rest}`;
  return undefined;
}

/**
 * Of `things` (new since a snapshot), those still there a moment later: on a shared machine
 * another run's container passes through an empty `calf/<id>` cgroup, another test's queue is on
 * its way out. Only cgroups and IPC objects are looked at again; everything else is kept.
 */
export async function settled(things: string[], roots: readonly string[]): Promise<string[]> {
  if (!things.some((t) => t.startsWith('cgroup ') || t.startsWith('ipc '))) return things;
  await new Promise((r) => setTimeout(r, 2000));
  const now = new Set(snapshot(roots));
  return things.filter((t) => (!t.startsWith('cgroup ') && !t.startsWith('ipc ')) || now.has(t));
}

/** What `after` has that `before` had not. */
export function newSince(before: readonly string[], after: readonly string[]): string[] {
  const old = new Set(before);
  return after.filter((thing) => !old.has(thing));
}
