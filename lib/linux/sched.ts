/**
 * Namespaces: `<sched.h>`.
 * @module
 */
import { libc, check, flagNames } from './libc.js';

/** Namespace flags for {@link unshare} and {@link setns} (`CLONE_*` from `<sched.h>`). */
export const CLONE_NEWNS = 0x00020000;
export const CLONE_NEWCGROUP = 0x02000000;
export const CLONE_NEWUTS = 0x04000000;
export const CLONE_NEWIPC = 0x08000000;
export const CLONE_NEWUSER = 0x10000000;
export const CLONE_NEWPID = 0x20000000;
export const CLONE_NEWNET = 0x40000000;
/**
 * For {@link unshare}: stop sharing the root directory, working directory and umask with the
 * threads that share them (Node's: pthreads are made with `CLONE_FS`). `setns` into a mount
 * namespace refuses a thread that shares them (`EINVAL`): it would change them for all.
 */
export const CLONE_FS = 0x00000200;

const CLONE_FLAGS = {
  CLONE_FS, CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
};

const _unshare = libc.func('int unshare(int flags)');
const _setns = libc.func('int setns(int fd, int nstype)');

/**
 * Move the calling **thread** into new namespaces.
 *
 * In Node this is only the main thread: libuv's and V8's threads stay where they were, so after
 * `unshare` use only synchronous calls (`fs.*Sync`, koffi) — async I/O runs on those other threads.
 * `CLONE_NEWUSER` fails with `EINVAL` because the process has several threads.
 * @see https://man7.org/linux/man-pages/man2/unshare.2.html
 */
export function unshare(flags: number): void {
  check(_unshare(flags), 'unshare', [flagNames(flags, CLONE_FLAGS)]);
}

/**
 * Move the calling thread into the namespace behind `fd` (an open `/proc/PID/ns/*` file).
 * `nstype` 0 accepts any type; a `CLONE_NEW*` flag checks that `fd` is of that type.
 * @see https://man7.org/linux/man-pages/man2/setns.2.html
 */
export function setns(fd: number, nstype: number): void {
  check(_setns(fd, nstype), 'setns', [fd, nstype ? flagNames(nstype, CLONE_FLAGS) : 0]);
}
