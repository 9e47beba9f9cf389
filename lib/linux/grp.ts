/**
 * Supplementary groups: `<grp.h>`.
 * @module
 */
import { libc, check } from './libc.js';

const _setgroups = libc.func('int setgroups(size_t size, const uint32_t *list)');

/**
 * Replace the caller's supplementary group list with `groups` (an empty list drops them all).
 * Needs `CAP_SETGID`: call it before giving up root. glibc applies it to every thread.
 * @see https://man7.org/linux/man-pages/man2/setgroups.2.html
 */
export function setgroups(groups: readonly number[]): void {
  check(_setgroups(groups.length, groups.length ? [...groups] : null), 'setgroups', [groups]);
}
