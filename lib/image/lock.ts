/**
 * The image store's two locks, both flock(2) on files in the store, so the kernel drops them
 * when a calf dies, SIGKILL included:
 *
 * ```
 * <root>/.images.lock        the store lock: shared while blobs are added (pull, load),
 *                             exclusive while they are removed (rmi, image prune)
 * <root>/.images.index.lock  the index lock: exclusive around each read-change-write of index.json
 *                             (tag, and the naming step of pull and load)
 * ```
 * Beside `images/`, not in it: the store's layout is made whole and renamed into place
 * (store.ts's initStore), so a lock taken before it exists must not make `images/` half.
 * Why two: a pull's blobs are in the store, unnamed, until its last one is verified; a prune
 * meanwhile would see them as garbage. So pulls hold the store lock *shared* for their whole
 * run (many pulls at once are fine: blobs are content-addressed and written by rename), and a
 * prune waits for them with it *exclusive*. Naming an image rewrites `index.json`, and two
 * pulls doing that at once would lose one name: that is the short, exclusive index lock.
 * Always take the store lock first, then the index lock: never the other way round.
 *
 * Both are re-entrant within one process (flock would deadlock a process against its own
 * second open of the file): an inner `load` inside an outer lock just runs.
 * @see https://man7.org/linux/man-pages/man2/flock.2.html
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { flock, LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN } from '../linux/file.js';
import { SyscallError } from '../linux/syscall-error.js';
import { calfRoot } from '../core/root.js';

export type LockMode = 'shared' | 'exclusive';

interface Held {
  fd: number;
  mode: LockMode;
  depth: number;
}

const held = new Map<string, Held>();

/** How a wait for a lock is reported: called once, when the lock is busy, before waiting. */
export type OnWait = (what: string) => void;

const STORE_LOCK = '.images.lock';
const INDEX_LOCK = '.images.index.lock';

function lockFile(root: string, name: string): string {
  fs.mkdirSync(root, { recursive: true });
  return path.join(root, name);
}

/** Take the lock without waiting; false when another open file description holds it. */
function tryLock(fd: number, mode: LockMode): boolean {
  try {
    flock(fd, (mode === 'shared' ? LOCK_SH : LOCK_EX) | LOCK_NB);
    return true;
  } catch (err) {
    if (err instanceof SyscallError && (err.code === 'EWOULDBLOCK' || err.code === 'EAGAIN')) return false;
    throw err;
  }
}

/** This process's hold on `file`, if it has one (re-entry); throws on a shared → exclusive upgrade. */
function reenter(file: string, mode: LockMode): (() => void) | undefined {
  const mine = held.get(file);
  if (!mine) return undefined;
  if (mine.mode === 'shared' && mode === 'exclusive') {
    throw new Error(`${file}: cannot take the lock exclusive while this calf holds it shared (flock would not upgrade atomically)`);
  }
  mine.depth++;
  return () => { mine.depth--; };
}

/** Record a lock just taken on `fd`; returns how to leave it. */
function hold(file: string, fd: number, mode: LockMode): () => void {
  const entry: Held = { fd, mode, depth: 1 };
  held.set(file, entry);
  return () => {
    if (--entry.depth > 0) return;
    held.delete(file);
    try {
      flock(fd, LOCK_UN);
    } finally {
      fs.closeSync(fd); // closing alone would drop it too; unlocking first says what we mean
    }
  };
}

/** Take `file`'s lock, waiting in flock(2) (after telling `onWait`) while it is busy. */
function enterSync(file: string, mode: LockMode, onWait?: OnWait): () => void {
  const again = reenter(file, mode);
  if (again) return again;
  const fd = fs.openSync(file, 'a');
  try {
    if (!tryLock(fd, mode)) {
      onWait?.(waitMessage(mode));
      flock(fd, mode === 'shared' ? LOCK_SH : LOCK_EX);
    }
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  return hold(file, fd, mode);
}

/**
 * Run `fn` holding the store lock in `mode`. While another calf holds it in a conflicting mode,
 * `onWait` is told once and this waits without blocking the event loop (a progress display,
 * a signal handler still run), polling every 50 ms.
 */
export async function withStoreLock<T>(mode: LockMode, fn: () => Promise<T> | T, options: { root?: string; onWait?: OnWait } = {}): Promise<T> {
  const file = lockFile(options.root ?? calfRoot(), STORE_LOCK);
  let leave = reenter(file, mode);
  if (!leave) {
    const fd = fs.openSync(file, 'a');
    try {
      if (!tryLock(fd, mode)) {
        options.onWait?.(waitMessage(mode));
        while (!tryLock(fd, mode)) await new Promise((r) => setTimeout(r, 50));
      }
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    // Another task of this process may have taken it while this one waited: then share its hold.
    leave = reenter(file, mode);
    if (leave) fs.closeSync(fd);
    else leave = hold(file, fd, mode);
  }
  try {
    return await fn();
  } finally {
    leave();
  }
}

/** {@link withStoreLock} for synchronous code (`rmi`, `image prune`): it waits in flock(2) itself. */
export function withStoreLockSync<T>(mode: LockMode, fn: () => T, options: { root?: string; onWait?: OnWait } = {}): T {
  const leave = enterSync(lockFile(options.root ?? calfRoot(), STORE_LOCK), mode, options.onWait);
  try {
    return fn();
  } finally {
    leave();
  }
}

/**
 * Run `fn` (a read-change-write of `index.json`) holding the index lock. Held for
 * milliseconds, so it simply waits in flock(2).
 */
export function withIndexLock<T>(fn: () => T, root = calfRoot()): T {
  const leave = enterSync(lockFile(root, INDEX_LOCK), 'exclusive');
  try {
    return fn();
  } finally {
    leave();
  }
}

function waitMessage(mode: LockMode): string {
  return mode === 'shared'
    ? 'waiting for another calf removing images (rmi, image prune) to finish'
    : 'waiting for other calfs using the image store (pull, load) to finish';
}
