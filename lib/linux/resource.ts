/**
 * Resource limits: `<sys/resource.h>`.
 * @module
 */
import { libc, check } from './libc.js';

const _prlimit = libc.func('int prlimit(int pid, int resource, const void *new_limit, void *old_limit)');

/** RLIMIT_* numbers by the spec's names (`process.rlimits[].type`): the same on x86_64 and arm64. */
export const RLIMIT_CPU = 0;
export const RLIMIT_FSIZE = 1;
export const RLIMIT_DATA = 2;
export const RLIMIT_STACK = 3;
export const RLIMIT_CORE = 4;
export const RLIMIT_RSS = 5;
export const RLIMIT_NPROC = 6;
export const RLIMIT_NOFILE = 7;
export const RLIMIT_MEMLOCK = 8;
export const RLIMIT_AS = 9;
export const RLIMIT_LOCKS = 10;
export const RLIMIT_SIGPENDING = 11;
export const RLIMIT_MSGQUEUE = 12;
export const RLIMIT_NICE = 13;
export const RLIMIT_RTPRIO = 14;
export const RLIMIT_RTTIME = 15;

/**
 * Set the calling process's soft and hard limit of `resource` (prlimit(2) on pid 0, as
 * setrlimit(2)): inherited across fork and kept across execve. Raising a hard limit needs
 * CAP_SYS_RESOURCE; `EPERM` otherwise.
 * @see https://man7.org/linux/man-pages/man2/prlimit.2.html
 */
export function setrlimit(resource: number, soft: bigint, hard: bigint): void {
  const limit = Buffer.alloc(16); // struct rlimit { rlim_t rlim_cur; rlim_t rlim_max; }
  limit.writeBigUInt64LE(soft, 0);
  limit.writeBigUInt64LE(hard, 8);
  check(_prlimit(0, resource, limit, null), 'setrlimit', [resource, soft, hard]);
}
