/**
 * calf, level 16 (exec): your starting point: level 15's solution plus TODOs.
 * Goal: calf exec: a process joins a running container's namespaces, cgroup, user, capabilities and seccomp filter.
 * Lesson: levels/16-exec/README.md · check: npm run level 16
 * Run it as root: tsx levels/16-exec/calf.ts run busybox sh
 *
 * Generated from ladder/calf.ts by `npm run generate` (instructors: edit that file, not this one).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { StdioOptions } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { constants } from 'node:os';
import * as linux from '../../lib/linux/index.js';
import {
  main, exited, lookPath, mergeEnv, DEFAULT_PATH, CalfError, initEntry, initEnv, OCI_VERSION, type RunOptions, type Spec,
  createContainer, saveConfig, type Container,
  type Root, flag,
  hostnameArg,
  joinNetwork, syncWithInit, syncWithParent,
  type Resources,
  lookupUser,
  securityConfig, capabilityArg, type Capabilities, type Seccomp,
  volumeMounts, volumeCommand, type Mount,
  nameContainer, nameArg, logOptArg, containerCommands, consoleSizeOf, type StartOptions,
  containerExecCommand, runningContainer, faultPoint, type ExecOptions,
} from '../../lib/runtime/index.js';
import type { ResolvedImage } from '../../lib/image/index.js';
import { storageDriver, checkDriverName } from '../../lib/storage/index.js';
import { pullCommand, tagCommand, parsePullPolicy, type PullPolicy } from '../../lib/image/commands.js';
import { pull, imageFor } from './pull.js';
import { parseVolume, parseTmpfs, prepareMountPoint, mountOptions, mountFlagsOf, mountError } from '../../lib/storage/index.js';
import {
  EXEC_STAGE, execConfig, inPidNamespaceOf, startExecStage, openNamespaces, enterCgroup, joinNamespaces, type ExecConfig,
} from './exec.js';
import { parsePublish, listen, splice, networkCommand, ip, ipIn, type Endpoint, type PortMapping } from '../../lib/network/index.js';
import { DEFAULT_NETWORK } from '../../lib/network/index.js';
import {
  createCgroup, parseCpus, parseCpuShares, sharesToWeight, resourcesOf, CPU_PERIOD_US, type Cgroup,
  parseMemory, parseMemorySwap, parsePidsLimit,
  limitDevices,
} from '../../lib/cgroup/index.js';
import { runContainer, monitor, monitorCommands, openTerminal, type Started } from './monitor.js';

/** The `calf run` flags this level adds to Docker's common ones (-e, --env-file…). */
const flags = {
  storageDriver: flag('--storage-driver <name>', 'overlay or vfs (default: $CALF_STORAGE_DRIVER, else overlay)', (name: string) => checkDriverName(name)),
  hostname: flag('--hostname <name>', "the container's host name (default: its short id)", hostnameArg),
  network: flag('--network <name>', 'none (the default): only lo; host: the host\'s network; or a network of calf network ls'),
  publish: flag('-p, --publish <hostPort:containerPort>', 'publish a container\'s TCP port on the host\'s 127.0.0.1 (repeatable)', parsePublish),
  cpus: flag('--cpus <decimal>', 'number of CPUs (0.5: half of one)', parseCpus),
  cpuShares: flag('-c, --cpu-shares <int>', 'CPU shares, a relative weight (default 1024)', parseCpuShares),
  cgroupParent: flag('--cgroup-parent <string>', 'the parent cgroup of the container\'s cgroup (default: calf)'),
  memory: flag('-m, --memory <bytes>', 'memory limit (64m, 1g…)', parseMemory),
  memorySwap: flag('--memory-swap <bytes>', 'memory plus swap limit: -1 for unlimited swap (default: twice --memory)', parseMemorySwap),
  pidsLimit: flag('--pids-limit <int>', 'most processes the container may have (-1: no limit)', parsePidsLimit),
  user: flag('-u, --user <name|uid[:group|gid]>', "who the command runs as (default: the image's User, else root)"),
  privileged: flag<boolean>('--privileged', 'every capability, no seccomp filter, no masked paths, no device policy'),
  capAdd: flag('--cap-add <cap>', 'add a capability to Docker\'s default set (repeatable; ALL)', capabilityArg),
  capDrop: flag('--cap-drop <cap>', 'drop a capability from Docker\'s default set (repeatable; ALL)', capabilityArg),
  pull: flag('--pull <policy>', 'pull the image first: missing (the default), always or never', parsePullPolicy),
  volume: flag('-v, --volume <[source:]destination[:ro]>', 'bind a host path (absolute source) or a named volume on destination (repeatable)', parseVolume),
  tmpfs: flag('--tmpfs <destination[:options]>', 'mount a new tmpfs on destination (repeatable; options as mount(8): size=64m,exec)', parseTmpfs),
  readOnly: flag<boolean>('--read-only', "mount the container's root read-only (its volumes and tmpfs mounts stay writable)"),
  detach: flag<boolean>('-d, --detach', 'run the container in the background (its monitor does), and print its id'),
  name: flag('--name <name>', 'a name for the container, unique (default: a made-up one)', nameArg),
  logOpt: flag('--log-opt <key=value>', 'the log\'s rotation: max-size=10m, max-file=2 (repeatable)', logOptArg),
};

// ─── Parent side: runs on the host ─────────────────────────────────────────────────────────────
// Our job: prepare the container and its config (a Spec: the OCI runtime-spec's config.json, as
// far as this level fills it), start its first process, wait for it, report how it ended.
// From level 15 on, run() makes the container and hands it to its monitor (monitor.ts), which
// calls start() and waits: in this process, or (-d) in one of its own in the background.

async function run(options: RunOptions<typeof flags>): Promise<number> {
  const { image, container, overlay } = await prepareRootfs(options.image, options.flags.storageDriver, options.flags.pull);
  const config = containerConfig(options, image, container, overlay);
  if (config.process.args.length === 0) throw new CalfError('no command specified');
  saveConfig(container, config); // config.json beside rootfs/: the container's directory is an OCI bundle
  nameContainer(container, options.flags.name); // unique in the calf root, or a made-up one
  if (options.flags.publish && !options.flags.network) options.flags.network = DEFAULT_NETWORK; // as Docker's default bridge
  return runContainer(container, options, start); // its monitor: this process, or (-d) one in the background
}

/** The container's start, which its monitor runs (at `calf run`, and at each `calf start`): network, cgroup, init stage, handshake. */
async function start(container: Container, config: Spec, options: StartOptions<typeof flags>, stdio: StdioOptions): Promise<Started> {
  const endpoint = joinNetwork(container, String(options.flags.network ?? 'none')); // an address, released by its teardown
  await publishPorts(options.flags.publish ?? [], endpoint); // before the container starts: a taken port stops it
  container.teardown.add('removeCgroup', container.id); // before it exists: a calf killed while making it leaves nothing unfound
  const cgroup = createCgroup(options.flags.cgroupParent ?? 'calf', container.id); // calf/<id>, as Docker's docker/<id>
  limitCpu(cgroup, config.linux?.resources ?? {});
  limitMemoryAndPids(cgroup, config.linux?.resources ?? {});
  limitDevices(cgroup, config.linux?.resources?.devices); // given code: Docker's device rules (v1), none with --privileged
  const child = inNewPidNamespace(() => startInit(config, stdio));
  const hostSide = (pid: number): void => { // the parent's part: after the init stage's unshares, before its execve
    joinCgroup(cgroup, pid);
    connectSandbox(endpoint, pid);
  };
  await syncWithInit(child, hostSide);
  return { child, exitCode: exited(child, container).then((ended) => reportOomKill(cgroup, exitStatus(ended))) };
}

/** No fork() in Node: start the container side by running this file again, as the hidden `init` command. */
function startInit(config: Spec, stdio: StdioOptions): ChildProcess {
  return spawn(process.execPath, [initEntry(), 'init', JSON.stringify(config)], {
    stdio, // the monitor's choice: its pipes (or a terminal's socket) on 0–2 and 4; fd 3: the sync socket
    env: initEnv(), // the command's environment is in config; Node's own variables only slow this stage
  }); // initEntry(): no tsx to load, no TypeScript to compile: the stage starts several times faster
}

/** Docker's exit code for how the init stage (by then, the command) ended. */
function exitStatus([code, signal]: [number | null, NodeJS.Signals | null]): number {
  return signal === null ? code! : 128 + constants.signals[signal];
}

/** Find the image, and have a storage driver make the container's root out of its layers. */
async function prepareRootfs(ref: string, driverName: string | undefined, policy?: PullPolicy): Promise<{ image: ResolvedImage; container: Container; overlay?: Root['overlay'] }> {
  const driver = storageDriver(driverName); // first: a bad name leaves nothing behind
  const image = await imageFor(ref, policy); // pulled first when the store lacks it (--pull: when)
  const container = createContainer(image);
  container.teardown.add('removeContainerDir', container.dir); // before prepare(): it can fail halfway
  return { image, container, ...(await driver.prepare(image, container)) };
}

/** The init stage's config, in the OCI runtime-spec's names: the command and environment over the image's defaults. */
function containerConfig(options: RunOptions<typeof flags>, image: ResolvedImage, container: Container, overlay?: Root['overlay']): Spec {
  const defaults = image.config.config ?? {};
  const security = securityConfig(options.flags); // Docker's defaults, or what --privileged and --cap-* make of them
  return {
    ociVersion: OCI_VERSION,
    process: {
      args: [...(defaults.Entrypoint ?? []), ...(options.command.length ? options.command : defaults.Cmd ?? [])],
      env: mergeEnv(defaults.Env ?? [`PATH=${DEFAULT_PATH}`], options.env),
      cwd: defaults.WorkingDir || '/',
      user: { uid: 0, gid: 0, username: options.flags.user || defaults.User || '0' }, // looked up in the image by init
      ...security.process, // capabilities, noNewPrivileges
      terminal: options.tty, // -t: openTerminal() gives the command one
      ...(options.tty ? consoleSizeOf() : {}), // -t: calf's terminal's size, the pty's from the start
    },
    root: { path: container.rootfs, overlay, readonly: options.flags.readOnly },
    hostname: options.flags.hostname ?? container.id.slice(0, 12), // Docker's default: the short id
    mounts: volumeMounts(options.flags, container), // -v and --tmpfs; makes a missing host directory, a new volume
    linux: {
      namespaces: [
        { type: 'mount' },
        { type: 'uts' }, { type: 'ipc' },
        { type: 'pid' },
        ...(options.flags.network === 'host' ? [] : [{ type: 'network' as const }]),
      ],
      resources: { ...resourcesOf(options.flags), devices: security.devices },
      ...security.linux, // maskedPaths, readonlyPaths, seccomp
    },
  };
}

/** Put the init stage (pid) into the container's cgroup: everything it starts inherits it. */
function joinCgroup(cgroup: Cgroup, pid: number): void {
  cgroup.set({ v1: { 'cgroup.procs': pid }, v2: { 'cgroup.procs': pid } }); // v1: once per hierarchy
}

/** The spec's CPU resources (from --cpus and --cpu-shares): a CFS quota per period, and a weight against the other cgroups. */
function limitCpu(cgroup: Cgroup, { cpu }: Resources): void {
  const { quota, period = CPU_PERIOD_US, shares } = cpu ?? {};
  if (quota !== undefined) cgroup.set({ v1: { 'cpu.cfs_period_us': period, 'cpu.cfs_quota_us': quota }, v2: { 'cpu.max': `${quota} ${period}` } });
  if (shares !== undefined) cgroup.set({ v1: { 'cpu.shares': shares }, v2: { 'cpu.weight': sharesToWeight(shares) } });
}

/** The spec's memory and pids resources (from --memory, --memory-swap, --pids-limit) as those controllers' limits. */
function limitMemoryAndPids(cgroup: Cgroup, { memory, pids }: Resources): void {
  if (memory?.limit !== undefined) {
    const memsw = memory.swap ?? -1; // not given: no cap on swap (--memory-swap's default is in the spec already)
    cgroup.set({
      v1: { 'memory.limit_in_bytes': memory.limit, 'memory.memsw.limit_in_bytes': memsw }, // memsw may never be below the limit
      v2: { 'memory.max': memory.limit, 'memory.swap.max': memsw === -1 ? 'max' : memsw - memory.limit },
    });
  }
  if (pids !== undefined) cgroup.set({ v1: { 'pids.max': pids.limit }, v2: { 'pids.max': pids.limit } });
}

/** Docker's 137 when the kernel's OOM killer ended the container, and a line saying so. */
function reportOomKill(cgroup: Cgroup, status: number): number {
  if (!/^oom_kill [1-9]/m.test(cgroup.read({ v1: 'memory.oom_control', v2: 'memory.events' }))) return status;
  process.stderr.write('calf: the container was OOM-killed: it used more memory than --memory allows\n');
  return 137;
}

/** Publish ports: a proxy on the host's 127.0.0.1 for each, forwarding to the container's address. */
async function publishPorts(ports: PortMapping[], endpoint: Endpoint | undefined): Promise<void> {
  if (ports.length && !endpoint) throw new CalfError('-p needs a network with addresses: --network NAME');
  for (const { hostPort, containerPort } of ports) {
    // allowHalfOpen: a client that has sent all it will (a FIN) still wants the answer
    const server = net.createServer({ allowHalfOpen: true }, (client) => splice(client, net.connect(containerPort, endpoint!.address)));
    await listen(server, hostPort, '127.0.0.1');
    server.unref(); // calf lives as long as the container, not as long as the proxy
  }
}

/** The endpoint's other end: a veth pair from the bridge into the sandbox (the container's netns), with an address and a route. */
function connectSandbox(endpoint: Endpoint | undefined, pid: number): void {
  if (!endpoint) return;
  ip(['link', 'add', endpoint.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', String(pid)]);
  ip(['link', 'set', endpoint.veth, 'master', endpoint.bridge, 'up']);
  ipIn(pid, ['address', 'add', `${endpoint.address}/${endpoint.prefix}`, 'dev', 'eth0']);
  ipIn(pid, ['link', 'set', 'eth0', 'up']);
  ipIn(pid, ['route', 'add', 'default', 'via', endpoint.gateway]);
}

// ─── Container side: `calf init`, re-executed by the parent ───────────────────────────────────
// Our job: become the container, then the command (execve). All synchronous: unshare() moves this thread only.

function init(config: Spec): never {
  const rootfs = config.root!.path; // calf's config has a root from level 01 on
  enterMountNamespace(); // first: every mount below then stays in the container
  mountOverlay(rootfs, config.root!.overlay); // before the others: they go on top of it
  enterUtsAndIpcNamespaces(config.hostname!);
  if (config.linux?.namespaces?.some((ns) => ns.type === 'network')) enterNetworkNamespace(); // before /sys: it shows its mounter's netns
  syncWithParent(); // sync: our namespaces exist; the parent connects our netns, joins us to our cgroup
  mountProcAndSys(rootfs);
  maskKernelFiles(rootfs, config.linux ?? {}); // as soon as /proc and /sys exist; the pivot takes them along
  populateDev(`${rootfs}/dev`);
  mountVolumes(rootfs, config.mounts ?? []); // last of the mounts: a volume may go anywhere, even under /dev
  pivotInto(rootfs, config.process.cwd); // after the mounts: they move along with the new root
  if (config.root!.readonly) makeRootReadonly(); // once nothing is made in the root any more
  if (config.process.terminal) openTerminal(config.process.consoleSize); // -t, after the pivot: a pty of the container's devpts
  startProcess(config); // the privileges, the user, the filter, execve: the exec stage ends the same way
}

/** The container's process, once it is inside: Docker's privileges, its user, the filter, then the command. Both stages end here. */
function startProcess(config: Spec): never {
  // Privileges last (the mounts need them), in runc's order: capabilities, the user, the filter right before execve
  dropCapabilities(config.process.capabilities);
  switchUser(config); // inside the container's root: the user is the image's, from its /etc/passwd
  filterSyscalls(config.process.noNewPrivileges, config.linux?.seccomp);
  execCommand(config.process.args, config.process.env);
}

// ─── calf exec: one more process in a running container (the lesson is in exec.ts) ────────────

/** Parent side: start the exec stage inside the container's PID namespace, relay, report how the command ended. */
async function exec(options: ExecOptions): Promise<number> {
  const container = runningContainer(options.container); // lib: by id, or a prefix of it; refuses a stopped or unknown one
  const config = execConfig(container, options); // its config.json's process, as exec's flags change it
  const child = inPidNamespaceOf(container.process, () => startExecStage(config, options.interactive));
  return exitStatus(await exited(child)); // signals relayed to it; its status, or 128+N, as for run
}

/** Container side: the exec stage. Synchronous like init, for the same reason: setns moves only this thread. */
function execStage(config: ExecConfig): never {
  const namespaces = openNamespaces(config); // first, and checked to be PID 1's
  enterCgroup(config.cgroup); // while /sys/fs/cgroup is still the host's
  joinNamespaces(namespaces); // ipc, uts, net, then mnt: from here on, / is the container's
  faultPoint('exec-joined'); // a test hook: CALF_FAULT=exec-joined kills the stage here
  if (config.process.terminal) openTerminal(config.process.consoleSize); // -t: level 15's pty, of the container's devpts: its master goes to calf exec
  linux.chdir(config.process.cwd);
  startProcess(config); // the rest is init's: the same privileges, user and filter as PID 1
}

/** A mount namespace of its own, whose mounts never reach the host's. */
function enterMountNamespace(): void {
  linux.unshare(linux.CLONE_NEWNS); // the calling thread only: Node's other threads stay in the host's
  linux.mount(null, '/', null, linux.MS_REC | linux.MS_PRIVATE); // shared mounts would propagate to the host
}

/** The kernel's views of processes and devices: proc on /proc, a read-only sysfs on /sys. */
function mountProcAndSys(rootfs: string): void {
  linux.mount('proc', `${rootfs}/proc`, 'proc', linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC);
  linux.mount('sysfs', `${rootfs}/sys`, 'sysfs', linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC);
}

const DEVICES: [string, number, number][] = [ // the character devices of Docker's /dev: name, major, minor
  ['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9], ['tty', 5, 0],
];

/** A fresh /dev: a tmpfs with device nodes, a private devpts and a /dev/shm of its own. */
function populateDev(dev: string): void {
  linux.mount('tmpfs', dev, 'tmpfs', linux.MS_NOSUID | linux.MS_STRICTATIME, 'mode=755,size=65536k');
  for (const [name, major, minor] of DEVICES) {
    linux.mknod(`${dev}/${name}`, linux.S_IFCHR | 0o666, linux.makedev(major, minor));
    fs.chmodSync(`${dev}/${name}`, 0o666); // mknod's mode passes through the umask
  }
  fs.mkdirSync(`${dev}/pts`);
  linux.mount('devpts', `${dev}/pts`, 'devpts', linux.MS_NOSUID | linux.MS_NOEXEC, 'newinstance,ptmxmode=0666,mode=0620');
  fs.symlinkSync('pts/ptmx', `${dev}/ptmx`);
  fs.mkdirSync(`${dev}/shm`);
  linux.mount('shm', `${dev}/shm`, 'tmpfs', linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC, 'mode=1777,size=65536k');
  for (const [fd, name] of ['stdin', 'stdout', 'stderr'].entries()) fs.symlinkSync(`/proc/self/fd/${fd}`, `${dev}/${name}`);
  fs.symlinkSync('/proc/self/fd', `${dev}/fd`);
}

/** Stack the image's layers under the container's own writable directory, on rootfs: one overlay mount. */
function mountOverlay(rootfs: string, overlay: Root['overlay']): void {
  if (!overlay) return; // the vfs driver copied the layers into rootfs: nothing to stack
  const lowerdir = overlay.lower.toReversed().join(':'); // the top layer first: it hides the ones after it
  linux.mount('overlay', rootfs, 'overlay', 0, `lowerdir=${lowerdir},upperdir=${overlay.upper},workdir=${overlay.work}`);
}

/** A network namespace of its own: no interface but a loopback, which we bring up. */
function enterNetworkNamespace(): void {
  linux.unshare(linux.CLONE_NEWNET); // this thread only, like CLONE_NEWNS: fine, it will execve
  const sock = linux.socket(linux.AF_INET, linux.SOCK_DGRAM | linux.SOCK_CLOEXEC, 0); // in the new netns
  const ifr = linux.ifreq('lo');
  linux.ioctl(sock, linux.SIOCGIFFLAGS, ifr); // lo's flags, into ifr
  linux.ioctl(sock, linux.SIOCSIFFLAGS, linux.ifreq('lo', linux.ifr_flags(ifr) | linux.IFF_UP));
  linux.close(sock);
}

/** Make rootfs the root mount of this mount namespace, and the host's root unreachable. */
function pivotInto(rootfs: string, cwd: string): void {
  linux.mount(rootfs, rootfs, null, linux.MS_BIND | linux.MS_REC); // a mount point, with /proc, /sys, /dev along
  fs.mkdirSync(`${rootfs}/.oldroot`);
  linux.pivot_root(rootfs, `${rootfs}/.oldroot`); // the host's root is now at /.oldroot...
  linux.umount2('/.oldroot', linux.MNT_DETACH); // ...and now nowhere: lazily detached
  fs.rmdirSync('/.oldroot');
  linux.chdir(cwd);
}

/** Become the command: same process, same pid, same stdin/stdout/stderr, new program. */
function execCommand(argv: string[], env: string[]): never {
  for (const fd of [0, 1, 2]) linux.fcntl(fd, linux.F_SETFD, 0);
  linux.execve(lookPath(argv[0]!, env), argv, env);
}

/** A host name and System V IPC objects of its own: what `hostname` and `ipcs` see. */
function enterUtsAndIpcNamespaces(hostname: string): void {
  linux.unshare(linux.CLONE_NEWUTS | linux.CLONE_NEWIPC);
  linux.sethostname(hostname);
}

/** Start the init stage as PID 1 of a new PID namespace, and keep calf's later children in the host's. */
function inNewPidNamespace<T>(start: () => T): T {
  const host = fs.openSync('/proc/self/ns/pid', 'r');
  try {
    linux.unshare(linux.CLONE_NEWPID); // this thread's next child will be PID 1 of a new namespace
    return start();
  } finally {
    linux.setns(host, linux.CLONE_NEWPID); // and its later children (cleanup, ip…) the host's again
    fs.closeSync(host);
  }
}

/** Run the command as the container's user, with that user's groups and none of root's. */
function switchUser(config: Spec): void {
  const user = lookupUser(config.process.user ?? { uid: 0, gid: 0 });
  linux.setgroups(user.groups); // first: changing groups needs root...
  linux.setresgid(user.gid, user.gid, user.gid);
  linux.setresuid(user.uid, user.uid, user.uid); // ...which this gives up for good
  if (!config.process.env.some((kv) => kv.startsWith('HOME='))) config.process.env.push(`HOME=${user.home}`);
}

/** Hide what /proc and /sys tell about the host, and freeze the host's kernel settings they expose. */
function maskKernelFiles(rootfs: string, { maskedPaths = [], readonlyPaths = [] }: NonNullable<Spec['linux']>): void {
  for (const file of maskedPaths.map((p) => `${rootfs}${p}`).filter((p) => fs.existsSync(p))) {
    if (fs.statSync(file).isDirectory()) linux.mount('tmpfs', file, 'tmpfs', linux.MS_RDONLY);
    else linux.mount('/dev/null', file, null, linux.MS_BIND);
  }
  for (const file of readonlyPaths.map((p) => `${rootfs}${p}`).filter((p) => fs.existsSync(p))) {
    linux.mount(file, file, null, linux.MS_BIND | linux.MS_REC);
    linux.mount(file, file, null, linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC);
  }
}

/** Root in the container keeps Docker's 14 capabilities, and can never get the others back. */
function dropCapabilities(capabilities: Capabilities | undefined): void {
  if (!capabilities) return;
  const keep = linux.capMask(capabilities.bounding ?? []);
  for (let cap = 0; cap <= linux.capLastCap(); cap++) {
    if (!(keep & (1n << BigInt(cap)))) linux.prctl(linux.PR_CAPBSET_DROP, cap);
  }
  linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_CLEAR_ALL);
  // switchUser() still needs these two, as in runc; execve then gives root the bounding set, others nothing
  const forSwitch = keep | linux.capMask(['CAP_SETUID', 'CAP_SETGID']);
  linux.capset({ effective: forSwitch, permitted: forSwitch, inheritable: 0n });
}

/** No new privileges through exec, and a seccomp filter that refuses what no container needs. */
function filterSyscalls(noNewPrivileges = false, seccomp?: Seccomp): void {
  if (noNewPrivileges) linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1);
  if (!seccomp) return;
  const filter = linux.seccomp_init(linux.scmpAction(seccomp.defaultAction, seccomp.defaultErrnoRet));
  for (const rule of seccomp.syscalls ?? []) {
    for (const nr of rule.names.map(linux.seccomp_syscall_resolve_name).filter((nr) => nr >= 0)) {
      linux.seccomp_rule_add_array(filter, linux.scmpAction(rule.action, rule.errnoRet), nr, rule.args?.map(linux.scmpArgCmp));
    }
  }
  linux.seccomp_load(filter); // this thread, and the command it becomes
  linux.seccomp_release(filter);
}

/** The spec's mounts (-v, --tmpfs), each on its destination inside rootfs, in their order: one under another comes after it. */
function mountVolumes(rootfs: string, mounts: Mount[]): void {
  for (const mount of mounts) {
    try {
      prepareMountPoint(rootfs, mount); // given: makes the destination inside rootfs if the image lacks it; fills an empty named volume from the image
      if (mount.type === 'tmpfs') mountTmpfs(rootfs, mount);
      else bindMount(rootfs, mount);
    } catch (err) {
      throw mountError(mount, err); // one line, naming the -v or --tmpfs it came from
    }
  }
}

/** A host directory (a -v bind, or a named volume's directory) on its destination; read-only with :ro. */
function bindMount(rootfs: string, { source, destination, options = [] }: Mount): void {
  const fd = linux.openInRoot(rootfs, destination); // inside rootfs: an image's /data -> /etc is <rootfs>/etc, never the host's
  try {
    linux.mount(source!, `/proc/self/fd/${fd}`, null, linux.MS_BIND | linux.MS_REC); // onto what was resolved: no path to swap meanwhile
  } finally {
    linux.close(fd);
  }
  if (!options.includes('ro')) return;
  const mounted = linux.openInRoot(rootfs, destination); // again: the first fd names the directory *under* the new mount
  try {
    linux.mount(null, `/proc/self/fd/${mounted}`, null, linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | mountFlagsOf(mounted)); // a source's nosuid stays
  } finally {
    linux.close(mounted);
  }
}

/** A new tmpfs on destination: files in memory, gone with the container. */
function mountTmpfs(rootfs: string, { destination, options }: Mount): void {
  const { flags, data } = mountOptions(options); // --tmpfs's defaults: nosuid, nodev, noexec, mode=1777
  const fd = linux.openInRoot(rootfs, destination);
  try {
    linux.mount('tmpfs', `/proc/self/fd/${fd}`, 'tmpfs', flags, data);
  } finally {
    linux.close(fd);
  }
}

/** --read-only: the container's root mount read-only; its volumes, tmpfs mounts, /proc and /dev are mounts of their own. */
function makeRootReadonly(): void {
  linux.mount(null, '/', null, linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY);
}

main({
  run, init, flags, commands: [networkCommand, pullCommand(pull), tagCommand, volumeCommand, containerCommands, monitorCommands, containerExecCommand(exec)],
  monitor: (dir, mode) => monitor(dir, mode, start),
  stages: { [EXEC_STAGE]: execStage },
});
