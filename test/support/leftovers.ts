/**
 * What calf or its tests may leave on the host: mounts and container directories under a calf
 * root, calf cgroups, network namespaces and links, and calf processes. The board and
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

/** Everything calf-made that exists right now, one line per thing. */
export function snapshot(roots: readonly string[]): string[] {
  const found: string[] = [];
  for (const point of mountPoints(fs.readFileSync('/proc/self/mountinfo', 'utf8'))) {
    if (roots.some((r) => point === r || point.startsWith(`${r}/`))) found.push(`mount ${point}`);
  }
  for (const root of roots) {
    for (const d of safe(() => fs.readdirSync(path.join(root, 'containers')), [])) found.push(`container dir ${path.join(root, 'containers', d)}`);
  }
  for (const cg of findDirs('/sys/fs/cgroup', 3, /calf/i)) found.push(`cgroup ${cg}`);
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

/** What `after` has that `before` had not. */
export function newSince(before: readonly string[], after: readonly string[]): string[] {
  const old = new Set(before);
  return after.filter((thing) => !old.has(thing));
}
