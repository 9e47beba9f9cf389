/**
 * calf's libc bindings: the counterpart of rubber-docker's `linux.c`. Every function keeps its
 * C name and semantics and throws a {@link SyscallError} where C would return -1.
 * @module
 */
export * from './syscall-error.js';
export * from './sched.js';
export * from './mount.js';
export * from './unistd.js';
export * from './fcntl.js';
export * from './stat.js';
export { syscall, syscallNumber } from './syscall.js';
export * from './poll.js';
export * from './grp.js';
export * from './capability.js';
export * from './seccomp.js';
export * from './xattr.js';
export * from './socket.js';
export * from './ioctl.js';
export * from './file.js';
export * from './openat2.js';
export * from './termios.js';
export * from './pty.js';
export * from './signal.js';
export * from './pidfd.js';
export * from './wait.js';
export * from './resource.js';
