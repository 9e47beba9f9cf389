/**
 * Processes and the filesystem view: `<unistd.h>`.
 * @module
 */
import { libc, check, flagNames, Bare } from './libc.js';
import { syscall, syscallNumber } from './syscall.js';

const _chroot = libc.func('int chroot(const char *path)');
const _chdir = libc.func('int chdir(const char *path)');
const _sethostname = libc.func('int sethostname(const char *name, size_t len)');
const _execve = libc.func('int execve(const char *pathname, const char **argv, const char **envp)');
const _getpid = libc.func('int getpid()');
const _setresuid = libc.func('int setresuid(uint32_t ruid, uint32_t euid, uint32_t suid)');
const _setresgid = libc.func('int setresgid(uint32_t rgid, uint32_t egid, uint32_t sgid)');
const _close = libc.func('int close(int fd)');

/**
 * Change the root directory of the calling process to `path`. It does **not** change the
 * working directory, which is how the classic chroot breakout escapes.
 * @see https://man7.org/linux/man-pages/man2/chroot.2.html
 */
export function chroot(path: string): void {
  check(_chroot(path), 'chroot', [path], { path });
}

/**
 * Change the working directory. Unlike `process.chdir`, this is the bare call: it applies to
 * the calling thread's filesystem context, which matters after `unshare(CLONE_NEWNS)`.
 * @see https://man7.org/linux/man-pages/man2/chdir.2.html
 */
export function chdir(path: string): void {
  check(_chdir(path), 'chdir', [path], { path });
}

/**
 * Set the hostname of the caller's UTS namespace.
 * @see https://man7.org/linux/man-pages/man2/sethostname.2.html
 */
export function sethostname(name: string): void {
  check(_sethostname(name, Buffer.byteLength(name)), 'sethostname', [name]);
}

/**
 * Replace the current process image with `pathname`. Returns only on failure, so this throws
 * (`ENOENT`: no such file, `EACCES`/`ENOEXEC`: not executable). All of Node's threads end with
 * the old image; the new program keeps the pid, the namespaces and the fds without `FD_CLOEXEC`.
 * @see https://man7.org/linux/man-pages/man2/execve.2.html
 */
export function execve(pathname: string, argv: readonly string[], envp: readonly string[]): never {
  check(_execve(pathname, [...argv, null], [...envp, null]), 'execve', [pathname], { path: pathname });
  throw new Error(`execve(${JSON.stringify(pathname)}) returned without an error`);
}

/**
 * The caller's process id, in the caller's own PID namespace.
 * @see https://man7.org/linux/man-pages/man2/getpid.2.html
 */
export function getpid(): number {
  return _getpid();
}

/**
 * Set the real, effective and saved user ids. Once all three are non-zero, the process has lost
 * root's privileges for good (capabilities(7): its permitted and effective sets are cleared), so
 * everything that needs root (setgroups, setresgid) must come first. glibc applies it to every
 * thread of the process, as POSIX requires, though the kernel call is per-thread.
 * @see https://man7.org/linux/man-pages/man2/setresuid.2.html
 */
export function setresuid(ruid: number, euid: number, suid: number): void {
  check(_setresuid(ruid, euid, suid), 'setresuid', [ruid, euid, suid]);
}

/**
 * Set the real, effective and saved group ids (every thread, as {@link setresuid}).
 * @see https://man7.org/linux/man-pages/man2/setresgid.2.html
 */
export function setresgid(rgid: number, egid: number, sgid: number): void {
  check(_setresgid(rgid, egid, sgid), 'setresgid', [rgid, egid, sgid]);
}

/**
 * Close a file descriptor. For an fd from a koffi call (`socket`), which Node's
 * `fs.closeSync` would do too, but this keeps the C name next to the call that made it.
 * @see https://man7.org/linux/man-pages/man2/close.2.html
 */
export function close(fd: number): void {
  check(_close(fd), 'close', [fd]);
}

const _dup2 = libc.func('int dup2(int oldfd, int newfd)');

/**
 * Make `newfd` a copy of `oldfd` (closing what `newfd` was), **without** `FD_CLOEXEC`: how a
 * stage hands the command its stdin, stdout and stderr (a pty slave on 0, 1 and 2) before
 * `execve`. Node has no `dup2`, and marks its own 0–2 close-on-exec; this clears that flag on
 * `newfd` (unless `oldfd` is `newfd`: then nothing changes, use `fcntl(F_SETFD)`).
 * @see https://man7.org/linux/man-pages/man2/dup2.2.html
 */
export function dup2(oldfd: number, newfd: number): number {
  return check(_dup2(oldfd, newfd), 'dup2', [oldfd, newfd]);
}

// ─── Sessions and process groups ─────────────────────────────────────────────────────────────────

const _setsid = libc.func('int setsid()');
const _getsid = libc.func('int getsid(int pid)');
const _setpgid = libc.func('int setpgid(int pid, int pgid)');
const _getpgid = libc.func('int getpgid(int pid)');
const _getppid = libc.func('int getppid()');

/**
 * Start a new session and process group, both with the caller's pid, with no controlling
 * terminal: a `-d` monitor calls it so that closing the terminal it came from (SIGHUP to that
 * session) does not reach it. Fails with `EPERM` in a process group leader, which a process Node
 * spawned with `detached: true` already is (libuv called `setsid` in the child for it).
 * @returns the new session id (the caller's pid)
 * @see https://man7.org/linux/man-pages/man2/setsid.2.html
 */
export function setsid(): number {
  return check(_setsid(), 'setsid');
}

/**
 * The session id of process `pid` (0: the caller), in the caller's PID namespace.
 * @see https://man7.org/linux/man-pages/man2/getsid.2.html
 */
export function getsid(pid = 0): number {
  return check(_getsid(pid), 'getsid', [pid]);
}

/**
 * Move process `pid` (0: the caller) into process group `pgid` (0: a new group numbered `pid`),
 * within its session. A terminal sends SIGINT, SIGTSTP, SIGWINCH… to its foreground group.
 * @see https://man7.org/linux/man-pages/man2/setpgid.2.html
 */
export function setpgid(pid: number, pgid: number): void {
  check(_setpgid(pid, pgid), 'setpgid', [pid, pgid]);
}

/**
 * The process group of process `pid` (0: the caller).
 * @see https://man7.org/linux/man-pages/man2/getpgid.2.html
 */
export function getpgid(pid = 0): number {
  return check(_getpgid(pid), 'getpgid', [pid]);
}

/**
 * The parent's pid: 0 in a PID namespace's first process, whose parent is outside it; after the
 * parent died, the subreaper's or init's (see `PR_SET_CHILD_SUBREAPER`).
 * @see https://man7.org/linux/man-pages/man2/getppid.2.html
 */
export function getppid(): number {
  return _getppid();
}

// ─── Closing many file descriptors ───────────────────────────────────────────────────────────────

/** {@link close_range} flag: mark the fds close-on-exec instead of closing them (Linux 5.11). */
export const CLOSE_RANGE_CLOEXEC = 1 << 2;
/** {@link close_range} flag: unshare the fd table first (the caller's threads keep theirs). */
export const CLOSE_RANGE_UNSHARE = 1 << 1;

/**
 * Close (or, with `CLOSE_RANGE_CLOEXEC`, mark close-on-exec) every fd from `first` to `last`,
 * open or not, in one call: what a stage does before `execve` so that the command inherits only
 * 0, 1 and 2 and what it was meant to get, even fds some library opened without `O_CLOEXEC`.
 * Closing fds under Node's feet (libuv's, V8's) breaks it: in Node, use `CLOSE_RANGE_CLOEXEC`.
 * Linux 5.9; through `syscall(2)` (glibc's wrapper is from 2.34).
 * @see https://man7.org/linux/man-pages/man2/close_range.2.html
 */
export function close_range(first: number, last: number, flags = 0): void {
  const names = flagNames(flags, { CLOSE_RANGE_UNSHARE, CLOSE_RANGE_CLOEXEC });
  check(Number(syscall(syscallNumber('close_range'), 'unsigned int', first, 'unsigned int', last, 'unsigned int', flags)), 'close_range',
    [first, last === 0xffffffff ? new Bare('~0U') : last, names]);
}
