/**
 * Who the container's command runs as: `--user` (or the image's `User`) looked up in the image's
 * own `/etc/passwd` and `/etc/group`, with Docker's rules (runc's `user.GetExecUser`).
 * @module
 */
import fs from 'node:fs';
import { CalfError } from '../core/errors.js';
import type { User } from '../core/spec.js';

/** A user to become, resolved. */
export interface ExecUser {
  uid: number;
  gid: number;
  /** supplementary groups: the groups that list the user by name in /etc/group */
  groups: number[];
  /** the home directory from /etc/passwd, or `/` */
  home: string;
}

const NUMERIC = /^\d+$/;

/** The lines of a colon-separated database like /etc/passwd, split into fields; none when it is missing. */
function entries(file: string): string[][] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':'));
}

/**
 * Resolve `spec` (`name`, `uid`, `name:group`, `uid:gid`…) against the passwd and group files,
 * as `docker run --user` does:
 * - a name must exist in passwd; a uid need not (then gid 0 and home `/`, unless `:group` says);
 * - `:group` is a name that must exist in group, or a gid that need not;
 * - the supplementary groups are those that list the user's name, minus the primary one.
 * Read synchronously: it runs in the init stage, through the container's `/`.
 * @throws CalfError (exit 125) naming the user or group that is not there
 */
export function lookupUser(spec: string | User, files = { passwd: '/etc/passwd', group: '/etc/group' }): ExecUser {
  if (typeof spec !== 'string') {
    // The spec's user: a name still to look up (calf's own configs), or numbers an engine resolved
    if (spec.username !== undefined) return lookupUser(spec.username, files);
    const home = entries(files.passwd).find((f) => f[2] === String(spec.uid))?.[5] || '/';
    return { uid: spec.uid, gid: spec.gid, groups: spec.additionalGids ?? [], home };
  }
  const [userPart = '', groupPart, ...extra] = spec.split(':');
  if (!userPart || extra.length || groupPart === '') throw new CalfError(`invalid user ${JSON.stringify(spec)}: use name|uid[:group|gid]`);
  const passwd = entries(files.passwd);
  const entry = NUMERIC.test(userPart) ? passwd.find((f) => f[2] === userPart) : passwd.find((f) => f[0] === userPart);
  if (!entry && !NUMERIC.test(userPart)) throw new CalfError(`unable to find user ${userPart}: no matching entries in passwd file`);
  const uid = Number(entry ? entry[2] : userPart);
  let gid = Number(entry?.[3] ?? 0);
  const groups = entries(files.group);
  if (groupPart !== undefined) {
    const group = NUMERIC.test(groupPart) ? undefined : groups.find((f) => f[0] === groupPart);
    if (!group && !NUMERIC.test(groupPart)) throw new CalfError(`unable to find group ${groupPart}: no matching entries in group file`);
    gid = Number(group ? group[2] : groupPart);
  }
  const name = entry?.[0];
  const supplementary = name === undefined ? [] : groups
    .filter((f) => (f[3] ?? '').split(',').includes(name))
    .map((f) => Number(f[2]))
    .filter((g) => g !== gid);
  return { uid, gid, groups: [...new Set(supplementary)], home: entry?.[5] || '/' };
}
