/** A throwaway calf root with the test images loaded, for one run of the test board. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadImages } from '../../lib/image/load.js';
import { mount, MS_BIND, MS_SHARED } from '../../lib/linux/mount.js';
import { unmountUnder } from '../../lib/core/mountinfo.js';
import { alive, sleep } from '../../lib/core/process.js';
import { listContainerDirs } from '../../lib/runtime/container.js';
import { cleanup } from '../../lib/runtime/cleanup.js';
import { imagesDir } from './images.js';
import { staleImages } from '../../scripts/build-images.js';

const TEST_IMAGES = ['busybox', 'layered', 'calf-test'];

/**
 * Make a new calf root under the temp dir and load the test images into it. Its `containers/`
 * directory is a shared mount, as everything is under systemd (Ubuntu, Debian): a container
 * that forgets to make its mounts private then leaks them into the host's mount table on any
 * machine, not only on those whose / happens to be shared.
 */
export async function prepareStore(): Promise<string> {
  const missing = TEST_IMAGES.filter((name) => !fs.existsSync(path.join(imagesDir, name, 'index.json')));
  if (missing.length) {
    throw new Error(`test images not built (${missing.join(', ')}): run npm run setup, or npm run images`);
  }
  const stale = staleImages(imagesDir);
  if (stale) throw new Error(stale);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-test-root-'));
  // A Ctrl-C or kill during a run must not leave the shared mount and the store behind: from the
  // moment the store exists, also while its images are still loading.
  const onSignal = (signal: NodeJS.Signals): void => {
    const removed = stopContainers(root);
    if (removed.length) process.stderr.write(`${signal}: calf cleanup --force on the test store ${root}:\n${removed.map((l) => `  ${l}\n`).join('')}`);
    removeStore(root);
    process.exit(128 + os.constants.signals[signal]);
  };
  interrupted.set(root, onSignal);
  for (const signal of SIGNALS) process.once(signal, onSignal);
  try {
    for (const name of TEST_IMAGES) await loadImages(path.join(imagesDir, name), root);
    const containers = path.join(root, 'containers');
    fs.mkdirSync(containers);
    mount(containers, containers, null, MS_BIND);
    mount(null, containers, null, MS_SHARED);
  } catch (err) {
    removeStore(root);
    throw err;
  }
  return root;
}

/**
 * End what a run interrupted by a signal still has going in the store `root`, before the store
 * goes: level 15's detached containers and their monitors (in a session of their own, so a
 * Ctrl-C never reaches them), a `calf run` still waiting for its container. The calf processes
 * in charge of a container (its record's owner: a monitor, an attached `calf run`) are SIGKILLed
 * first, by pid, so that none of them writes into the store while it goes; then lib's `calf
 * cleanup --force` ends each container's processes and runs its teardown list (cgroup, endpoint,
 * mounts, directory), and removes what no list recorded. Never throws.
 * @returns what cleanup said, one line per thing
 */
export function stopContainers(root: string): string[] {
  try {
    const owners = listContainerDirs(root).flatMap(({ owner }) =>
      // with its start time only: a bare pid (a `.new-PID-…` directory) may be someone else's by now
      (owner?.startTime !== undefined && owner.pid !== process.pid && alive(owner.pid, owner.startTime) ? [owner] : []));
    for (const { pid } of owners) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // ended meanwhile
      }
    }
    const until = Date.now() + 5_000;
    while (owners.some((o) => alive(o.pid, o.startTime)) && Date.now() < until) sleep(20);
    return cleanup({ force: true, root });
  } catch (err) {
    return [`cleanup failed: ${(err as Error).message}`];
  }
}

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const interrupted = new Map<string, (signal: NodeJS.Signals) => void>();

/**
 * Remove a calf root made by {@link prepareStore}, and whatever a broken run mounted in it. It
 * never throws: a mount it cannot detach is returned (and the files are then kept, since
 * deleting through a mount deletes what it shows), for the caller to report.
 * @returns the mount points still under `root`; empty when everything is gone
 */
export function removeStore(root: string): string[] {
  const onSignal = interrupted.get(root);
  if (onSignal) for (const signal of SIGNALS) process.off(signal, onSignal);
  interrupted.delete(root);
  const { left, errors } = unmountUnder(root);
  if (left.length) return left.map((point) => `${point}${errors.has(point) ? ` (${errors.get(point)})` : ''}`);
  try {
    fs.rmSync(root, { recursive: true, force: true });
  } catch (err) {
    return [`${root} (${(err as Error).message})`];
  }
  return [];
}
