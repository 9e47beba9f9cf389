/**
 * What calf makes on the host, as kinds of leftovers that `calf cleanup` can find and remove.
 *
 * Each module that creates something on the host (container directories and their mounts here;
 * cgroups and network devices at later levels) registers one {@link LeftoverKind} when it is
 * loaded. `calf cleanup` and the tests' leftover detector ask every registered kind, so a new
 * kind of thing grows them by registration, not by editing a central list.
 * @module
 */

/** One thing calf made that is still there. */
export interface Leftover {
  /** one line for the user: `container dir /var/lib/calf/containers/ab12cd34ef56` */
  what: string;
  /** the calf process that made it, when known: while that process lives, the thing is in use */
  owner?: number;
  /** Remove it. Must succeed on any state a half-done run can leave, and when it is already gone. */
  remove(): void;
}

/** A kind of thing calf makes on the host, and how to find what exists of it under a calf root. */
export interface LeftoverKind {
  /** what the things are called in reports: `container dir`, `mount`, `cgroup` */
  kind: string;
  /** everything of this kind that exists now for the calf root `root` */
  find(root: string): Leftover[];
}

const kinds: LeftoverKind[] = [];

/** Register a kind; kinds are cleaned in registration order (containers before the mounts left after them). */
export function registerLeftovers(kind: LeftoverKind): void {
  if (!kinds.some((k) => k.kind === kind.kind)) kinds.push(kind);
}

/** The kinds registered so far, by the modules this process has loaded. */
export function leftoverKinds(): readonly LeftoverKind[] {
  return kinds;
}

/** Everything every registered kind finds for `root`. */
export function findLeftovers(root: string): Leftover[] {
  return kinds.flatMap((k) => k.find(root));
}
