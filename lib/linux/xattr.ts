/**
 * Extended attributes: `<sys/xattr.h>`. Overlayfs keeps its own metadata in `trusted.overlay.*`
 * attributes (an opaque directory is one with `trusted.overlay.opaque` = `y`); only root may
 * read or write the `trusted.` namespace.
 * @see https://man7.org/linux/man-pages/man7/xattr.7.html
 * @module
 */
import koffi from 'koffi';
import { libc, check } from './libc.js';

const _lsetxattr = libc.func('int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)');
const _lgetxattr = libc.func('long lgetxattr(const char *path, const char *name, _Out_ void *value, size_t size)');

/** `lgetxattr(2)`'s errno when the attribute is not set. */
const ENODATA = 61;

/**
 * Set the extended attribute `name` of `path` (a symlink itself, not its target) to `value`.
 * @see https://man7.org/linux/man-pages/man2/lsetxattr.2.html
 */
export function lsetxattr(path: string, name: string, value: string | Buffer, flags = 0): void {
  const bytes = typeof value === 'string' ? Buffer.from(value) : value;
  check(_lsetxattr(path, name, bytes, bytes.length, flags), 'lsetxattr', [path, name, bytes.toString()], { path });
}

/**
 * The value of the extended attribute `name` of `path` (a symlink itself, not its target), or
 * `undefined` when it has none (`ENODATA`). Values longer than 4 KiB are cut.
 * @see https://man7.org/linux/man-pages/man2/lgetxattr.2.html
 */
export function lgetxattr(path: string, name: string): Buffer | undefined {
  const buffer = Buffer.alloc(4096);
  const n = Number(_lgetxattr(path, name, buffer, buffer.length));
  if (n === -1 && koffi.errno() === ENODATA) return undefined;
  check(n, 'lgetxattr', [path, name], { path });
  return buffer.subarray(0, n);
}
