/**
 * What calf makes on the host, as kinds of leftovers that `calf cleanup` can find and remove.
 * The kinds themselves are defined where the things are made (container directories in
 * lib/runtime, cgroups in lib/cgroup, endpoints in lib/network…), and listed once, explicitly, in
 * lib/runtime/leftovers.ts: what `calf cleanup` knows never depends on what a level imports.
 * @module
 */

/** One thing calf made that is still there. */
export interface Leftover {
  /** one line for the user: `container dir /var/lib/calf/containers/ab12cd34ef56` */
  what: string;
  /**
   * The calf process that made it, when known: while that process lives, the thing is in use.
   * With a start time, a process that merely reuses the pid is not taken for the owner.
   */
  owner?: number;
  ownerStartTime?: number;
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
