/**
 * The levels of the workshop, in order: the generator, the test board and `npm test` read this.
 * @module
 */

/** One rung of the ladder. */
export interface Level {
  /** two digits: `00`, `01`… */
  id: string;
  /** directory suffix: `levels/<id>-<name>` */
  name: string;
  /** what an attendee builds in it, one line */
  goal: string;
  /**
   * The files this level adds beside calf.ts, each generated from `ladder/<file>` into its
   * skeleton and every later stage (part 2's lessons: `pull.ts`, `monitor.ts`…).
   */
  files?: readonly string[];
}

export const LEVELS: readonly Level[] = [
  { id: '00', name: 'fork-exec', goal: 'run a command as a child process: re-exec an init stage that execve()s it' },
  { id: '01', name: 'chroot', goal: 'unpack an image and chroot into it' },
  { id: '02', name: 'mount-namespace', goal: 'a private mount namespace with /proc, /sys and /dev' },
  { id: '03', name: 'pivot-root', goal: 'pivot_root into the image and detach the host root' },
  { id: '04', name: 'overlay', goal: 'stack the image\'s layers with overlayfs: each unpacked once, a writable layer per container' },
  { id: '05', name: 'uts-ipc', goal: 'a host name and System V IPC objects of its own' },
  { id: '06', name: 'pid-namespace', goal: 'the command is PID 1 of its own PID namespace' },
  { id: '07', name: 'net-namespace', goal: 'a network namespace of its own, with lo up; --network none|host' },
  { id: '08', name: 'networking', goal: 'networks: a bridge, an address pool, a veth per container; -p publishes a port' },
  { id: '09', name: 'cpu-cgroup', goal: 'a cgroup of its own (v1 or v2), --cpus and --cpu-shares' },
  { id: '10', name: 'memory-pids-cgroup', goal: '--memory, --memory-swap and --pids-limit, and an OOM kill reported as such' },
  { id: '11', name: 'user', goal: 'run the command as the image\'s user, with only its groups' },
  { id: '12', name: 'security', goal: "Docker's capabilities, no_new_privs, a seccomp filter, masked paths, a device policy" },
  { id: '13', name: 'pull', goal: 'pull images from a registry: manifests, an index, Bearer tokens, verified blobs; calf run pulls what it lacks', files: ['pull.ts'] },
  { id: '14', name: 'volumes', goal: 'bind mounts, named volumes, tmpfs mounts and a read-only root, resolved inside the rootfs' },
  { id: '15', name: 'detach', goal: 'a monitor per container: run -d, ps, logs, stop, rm, start, commit, -t', files: ['monitor.ts'] },
  { id: '16', name: 'exec', goal: 'calf exec: a process joins a running container\'s namespaces, cgroup, user, capabilities and seccomp filter', files: ['exec.ts'] },
  { id: '17', name: 'oci-runtime', goal: 'calf-runtime: runc\'s command line over an OCI bundle, so that podman and containerd run their containers on calf', files: ['runtime.ts'] },
];

/** `levels/<id>-<name>` or `solutions/<id>-<name>`, relative to the repository root. */
export function levelDir(level: Level, kind: 'levels' | 'solutions'): string {
  return `${kind}/${level.id}-${level.name}`;
}

/** The level a number like `3`, `03` or a name like `pivot-root` refers to. */
export function findLevel(ref: string): Level | undefined {
  return LEVELS.find((l) => l.id === ref.padStart(2, '0') || l.name === ref || `${l.id}-${l.name}` === ref);
}
