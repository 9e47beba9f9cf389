/**
 * Processes and the filesystem view: `<unistd.h>`.
 * @module
 */
import { libc, check } from './libc.js';

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
