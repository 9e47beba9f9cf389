//@ This is the one source of every levels/*/calf.ts and solutions/*/calf.ts: `npm run generate`
//@ writes them, `npm run generate -- --check` fails when they are stale, `npm run generate --
//@ --diff N` shows level N's lesson. Fix a bug here, once. As it stands, this file is the last
//@ solution, so tsc checks it and editors follow its imports into lib/.
//@
//@ The files come in this order: s00 (level 00's skeleton), 00 (its solution), s01, 01, s02, 02…
//@ A tag names a range over that order, the end excluded:
//@   01        from solution 01 on (so also in skeleton 02 and later: each skeleton is the
//@             previous solution plus TODOs)
//@   s01       from skeleton 01 on (a step the attendee fills in, with its TODO in the skeleton)
//@   01..03    solutions 01 and 02 (and skeletons 02 and 03); skeleton 03 replaces it
//@   todo01    only in skeleton 01: a TODO, and a stub that keeps the skeleton running (the stub's
//@             code as `//@todo01: …`, since the solution replaces it)
//@ A line ending in `//@TAG`, or the lines between `//@TAG {` and `//@}`, exist only in TAG's range.
//@ `//@TAG: code` is code that a later level replaced: it is kept in a comment here (so this file
//@ stays valid TypeScript) and written out, uncommented, in TAG's range.
//@ Lines starting with `//@ ` (like these) are never copied.
//@
//@ One lesson = one step function: a level adds a call line to run() or init() and the function
//@ block it calls, with its TODO inside. Keep the TODO ids (00.1, …): the READMEs refer to them.
import { spawn, type ChildProcess } from 'node:child_process';
import type { StdioOptions } from 'node:child_process'; //@s15
import fs from 'node:fs'; //@s02
import net from 'node:net'; //@s08
import { constants } from 'node:os';
import * as linux from '../lib/linux/index.js';
import {
  main, exited, lookPath, mergeEnv, DEFAULT_PATH, CalfError, initEntry, initEnv, OCI_VERSION, type RunOptions, type Spec,
  createContainer, saveConfig, type Container, //@s01
  type Root, flag, //@s04
  hostnameArg, //@s05
  //@s08..s15: joinNetwork, syncWithInit, syncWithParent, SYNC_STDIO,
  joinNetwork, syncWithInit, syncWithParent, //@s15
  type Resources, //@s09
  lookupUser, //@s11
  securityConfig, capabilityArg, type Capabilities, type Seccomp, //@s12
  volumeMounts, volumeCommand, type Mount, //@s14
  nameContainer, nameArg, logOptArg, containerCommands, consoleSizeOf, type StartOptions, //@s15
  containerExecCommand, runningContainer, faultPoint, type ExecOptions, //@s16
  SYNC_STDIO, hasNamespace, applyProcessLimits, joinNamespacePaths, mountKernelFilesystems, //@s17
} from '../lib/runtime/index.js';
import type { ResolvedImage } from '../lib/image/index.js'; //@s01
import { resolveImage } from '../lib/image/index.js'; // level 13 pulls what the store lacks first //@s01..s13
import { unpackImage } from '../lib/image/index.js'; // level 04's storage drivers unpack layers themselves //@s01..04
import { storageDriver, checkDriverName } from '../lib/storage/index.js'; //@s04
import { pullCommand, tagCommand, parsePullPolicy, type PullPolicy } from '../lib/image/commands.js'; //@s13
import { pull, imageFor } from './pull.js'; //@s13
import { parseVolume, parseTmpfs, prepareMountPoint, mountOptions, mountFlagsOf, mountError } from '../lib/storage/index.js'; //@s14
import { //@s16
  EXEC_STAGE, execConfig, inPidNamespaceOf, startExecStage, openNamespaces, enterCgroup, joinNamespaces, type ExecConfig, //@s16
} from './exec.js'; //@s16
import { runtimeCommands, openExecFifo, awaitStart } from './runtime.js'; //@s17
//@s07..s08: import { networkMode } from '../lib/network/index.js';
import { parsePublish, listen, splice, networkCommand, ip, ipIn, type Endpoint, type PortMapping } from '../lib/network/index.js'; //@s08
import { DEFAULT_NETWORK } from '../lib/network/index.js'; //@s15
//@s09 {
import {
  createCgroup, parseCpus, parseCpuShares, sharesToWeight, resourcesOf, CPU_PERIOD_US, type Cgroup,
  parseMemory, parseMemorySwap, parsePidsLimit, //@s10
  limitDevices, //@s12
} from '../lib/cgroup/index.js';
//@}
import { runContainer, monitor, monitorCommands, openTerminal, type Started } from './monitor.js'; //@s15

//@s04 {
/** The `calf run` flags this level adds to Docker's common ones (-e, --env-file…). */
const flags = {
  storageDriver: flag('--storage-driver <name>', 'overlay or vfs (default: $CALF_STORAGE_DRIVER, else overlay)', (name: string) => checkDriverName(name)),
  hostname: flag('--hostname <name>', "the container's host name (default: its short id)", hostnameArg), //@s05
  //@s07..s08: network: flag('--network <mode>', 'none (the default): a network namespace with only lo; host: the host\'s network', networkMode),
  network: flag('--network <name>', 'none (the default): only lo; host: the host\'s network; or a network of calf network ls'), //@s08
  publish: flag('-p, --publish <hostPort:containerPort>', 'publish a container\'s TCP port on the host\'s 127.0.0.1 (repeatable)', parsePublish), //@s08
  cpus: flag('--cpus <decimal>', 'number of CPUs (0.5: half of one)', parseCpus), //@s09
  cpuShares: flag('-c, --cpu-shares <int>', 'CPU shares, a relative weight (default 1024)', parseCpuShares), //@s09
  cgroupParent: flag('--cgroup-parent <string>', 'the parent cgroup of the container\'s cgroup (default: calf)'), //@s09
  memory: flag('-m, --memory <bytes>', 'memory limit (64m, 1g…)', parseMemory), //@s10
  memorySwap: flag('--memory-swap <bytes>', 'memory plus swap limit: -1 for unlimited swap (default: twice --memory)', parseMemorySwap), //@s10
  pidsLimit: flag('--pids-limit <int>', 'most processes the container may have (-1: no limit)', parsePidsLimit), //@s10
  user: flag('-u, --user <name|uid[:group|gid]>', "who the command runs as (default: the image's User, else root)"), //@s11
  privileged: flag<boolean>('--privileged', 'every capability, no seccomp filter, no masked paths, no device policy'), //@s12
  capAdd: flag('--cap-add <cap>', 'add a capability to Docker\'s default set (repeatable; ALL)', capabilityArg), //@s12
  capDrop: flag('--cap-drop <cap>', 'drop a capability from Docker\'s default set (repeatable; ALL)', capabilityArg), //@s12
  pull: flag('--pull <policy>', 'pull the image first: missing (the default), always or never', parsePullPolicy), //@s13
  volume: flag('-v, --volume <[source:]destination[:ro]>', 'bind a host path (absolute source) or a named volume on destination (repeatable)', parseVolume), //@s14
  tmpfs: flag('--tmpfs <destination[:options]>', 'mount a new tmpfs on destination (repeatable; options as mount(8): size=64m,exec)', parseTmpfs), //@s14
  readOnly: flag<boolean>('--read-only', "mount the container's root read-only (its volumes and tmpfs mounts stay writable)"), //@s14
  detach: flag<boolean>('-d, --detach', 'run the container in the background (its monitor does), and print its id'), //@s15
  name: flag('--name <name>', 'a name for the container, unique (default: a made-up one)', nameArg), //@s15
  logOpt: flag('--log-opt <key=value>', 'the log\'s rotation: max-size=10m, max-file=2 (repeatable)', logOptArg), //@s15
};
//@}

// ─── Parent side: runs on the host ─────────────────────────────────────────────────────────────
// Our job: prepare the container and its config (a Spec: the OCI runtime-spec's config.json, as
// far as this level fills it), start its first process, wait for it, report how it ended.
//@s15 {
// From level 15 on, run() makes the container and hands it to its monitor (monitor.ts), which
// calls start() and waits: in this process, or (-d) in one of its own in the background.
//@}

//@..s04: async function run(options: RunOptions): Promise<number> {
async function run(options: RunOptions<typeof flags>): Promise<number> { //@s04
  //@..s01: const config: Spec = { ociVersion: OCI_VERSION, process: { args: options.command, env: mergeEnv([`PATH=${DEFAULT_PATH}`], options.env), cwd: process.cwd() } };
  //@s01..s04: const { image, container } = await createRootfs(options.image);
  //@s04..s13: const { image, container, overlay } = await prepareRootfs(options.image, options.flags.storageDriver);
  const { image, container, overlay } = await prepareRootfs(options.image, options.flags.storageDriver, options.flags.pull); //@s13
  //@s01..s04: const config = containerConfig(options, image, container);
  const config = containerConfig(options, image, container, overlay); //@s04
  if (config.process.args.length === 0) throw new CalfError('no command specified');
  saveConfig(container, config); // config.json beside rootfs/: the container's directory is an OCI bundle //@s01
  //@s15 {
  nameContainer(container, options.flags.name); // unique in the calf root, or a made-up one
  if (options.flags.publish && !options.flags.network) options.flags.network = DEFAULT_NETWORK; // as Docker's default bridge
  return runContainer(container, options, start); // its monitor: this process, or (-d) one in the background
}

/** The container's start, which its monitor runs (at `calf run`, and at each `calf start`): network, cgroup, init stage, handshake. */
async function start(container: Container, config: Spec, options: StartOptions<typeof flags>, stdio: StdioOptions): Promise<Started> {
  //@}
  const endpoint = joinNetwork(container, String(options.flags.network ?? 'none')); // an address, released by its teardown //@s08
  await publishPorts(options.flags.publish ?? [], endpoint); // before the container starts: a taken port stops it //@s08
  container.teardown.add('removeCgroup', container.id); // before it exists: a calf killed while making it leaves nothing unfound //@s09
  const cgroup = createCgroup(options.flags.cgroupParent ?? 'calf', container.id); // calf/<id>, as Docker's docker/<id> //@s09
  limitCpu(cgroup, config.linux?.resources ?? {}); //@s09
  limitMemoryAndPids(cgroup, config.linux?.resources ?? {}); //@s10
  limitDevices(cgroup, config.linux?.resources?.devices); // given code: Docker's device rules (v1), none with --privileged //@s12
  //@..s06: const child = startInit(config);
  //@s06..s15: const child = inNewPidNamespace(() => startInit(config));
  const child = inNewPidNamespace(() => startInit(config, stdio)); //@s15
  //@todo08 {
  // TODO(08.2): connectSandbox() needs the container's network namespace, which exists only once
  // the init stage has unshared, and must be done before the command starts. Make the two sides
  // wait for each other (lib/runtime/sync.ts: its diagram): the init stage spawned with
  // SYNC_STDIO, syncWithInit() here, syncWithParent() in init() after the unshare. What would
  // `ip link add … netns PID` do if it ran right after the spawn?
  //@}
  //@08 {
  const hostSide = (pid: number): void => { // the parent's part: after the init stage's unshares, before its execve
    joinCgroup(cgroup, pid); //@s09
    connectSandbox(endpoint, pid);
  };
  await syncWithInit(child, hostSide);
  //@}
  //@..s01: return exitStatus(await exited(child));
  //@s01..s10: return exitStatus(await exited(child, container)); // exited() also records it in the container's state
  //@s10..s15: return reportOomKill(cgroup, exitStatus(await exited(child, container)));
  return { child, exitCode: exited(child, container).then((ended) => reportOomKill(cgroup, exitStatus(ended))) }; //@s15
}

/** No fork() in Node: start the container side by running this file again, as the hidden `init` command. */
//@..s15: function startInit(config: Spec): ChildProcess {
function startInit(config: Spec, stdio: StdioOptions): ChildProcess { //@s15
  //@todo00 {
  // TODO(00.1): Node can't fork(): run this very file again as a child (child_process.spawn),
  // with the hidden command `init`, the config as JSON, and calf's own stdin/stdout/stderr.
  // process.execPath is node; initEntry() is this file (with all it imports) compiled to one
  // plain-JavaScript file, initEnv() calf's environment minus NODE_OPTIONS & co. Why not run
  // process.argv[1] again, with process.execArgv (tsx) along?
  //@}
  //@todo00: throw new Error('level 00 is not done yet: start the init stage (TODO 00.1 in calf.ts)');
  //@00 {
  return spawn(process.execPath, [initEntry(), 'init', JSON.stringify(config)], {
    //@00..08: stdio: 'inherit', // the command reads and writes calf's own stdin/stdout/stderr, byte for byte
    //@08..s15: stdio: SYNC_STDIO, // calf's own stdin/stdout/stderr, byte for byte, and fd 3: the sync socket
    stdio, // the monitor's choice: its pipes (or a terminal's socket) on 0–2 and 4; fd 3: the sync socket //@s15
    env: initEnv(), // the command's environment is in config; Node's own variables only slow this stage
  }); // initEntry(): no tsx to load, no TypeScript to compile: the stage starts several times faster
  //@}
}

/** Docker's exit code for how the init stage (by then, the command) ended. */
function exitStatus([code, signal]: [number | null, NodeJS.Signals | null]): number {
  //@todo00 {
  // TODO(00.2): calf exits with the command's status, or 128 + N when signal N killed it, as a
  // shell does. os.constants.signals maps signal names to numbers.
  //@}
  //@todo00: throw new Error('level 00 is not done yet: report how the command ended (TODO 00.2 in calf.ts)');
  return signal === null ? code! : 128 + constants.signals[signal]; //@00
}

//@s01..04 {
/** Find the image, unpack it into a new container directory, and have that directory removed when calf exits. */
async function createRootfs(ref: string): Promise<{ image: ResolvedImage; container: Container }> {
  //@todo01 {
  // TODO(01.1): the image is ignored so far. Find it (resolveImage), make a container for it
  // (createContainer: a directory with a state record), unpack the layers into its rootfs
  // (unpackImage). The directory must go however calf exits: register its removal on the
  // container's teardown list (container.teardown.add, step 'removeContainerDir'), which lib
  // runs as calf exits and `calf cleanup` after a crash. Which step can fail, and what is left then?
  //@}
  //@todo01: return { image: { config: {} } as ResolvedImage, container: createContainer() }; // a stub: an empty container that stays
  //@01 {
  const image = resolveImage(ref);
  const container = createContainer(image);
  container.teardown.add('removeContainerDir', container.dir); // runs as calf exits, and in calf cleanup after a crash
  await unpackImage(image, container.rootfs);
  return { image, container };
  //@}
}
//@}

//@s04 {
/** Find the image, and have a storage driver make the container's root out of its layers. */
//@s04..s13: async function prepareRootfs(ref: string, driverName: string | undefined): Promise<{ image: ResolvedImage; container: Container; overlay?: Root['overlay'] }> {
async function prepareRootfs(ref: string, driverName: string | undefined, policy?: PullPolicy): Promise<{ image: ResolvedImage; container: Container; overlay?: Root['overlay'] }> { //@s13
  //@todo04 {
  // TODO(04.1): level 01 unpacked every layer into every container. Let a storage driver do it
  // (storageDriver(driverName): overlay, or vfs): it unpacks each layer once into the layer graph
  // and builds the container's root out of those, all inside the container's directory. Make the
  // container, register the directory's removal, then let the driver prepare the root. Why
  // register the removal before prepare()?
  //@}
  //@todo04: return createRootfs(ref); // level 01's way, until you replace it
  //@04 {
  const driver = storageDriver(driverName); // first: a bad name leaves nothing behind
  //@04..s13: const image = resolveImage(ref);
  const image = await imageFor(ref, policy); // pulled first when the store lacks it (--pull: when) //@s13
  const container = createContainer(image);
  container.teardown.add('removeContainerDir', container.dir); // before prepare(): it can fail halfway
  return { image, container, ...(await driver.prepare(image, container)) };
  //@}
}
//@}

//@s01 {
/** The init stage's config, in the OCI runtime-spec's names: the command and environment over the image's defaults. */
//@s01..s04: function containerConfig(options: RunOptions, image: ResolvedImage, container: Container): Spec {
function containerConfig(options: RunOptions<typeof flags>, image: ResolvedImage, container: Container, overlay?: Root['overlay']): Spec { //@s04
  //@todo01 {
  // TODO(01.2): docker run applies the image's defaults: Entrypoint before (COMMAND, or else Cmd),
  // Env under the -e values, WorkingDir (else "/"): the spec's process.args, env and cwd; root.path
  // is the container's rootfs. Where in image.config are they? Which may be missing?
  //@}
  //@todo01: return { ociVersion: OCI_VERSION, process: { args: options.command, env: mergeEnv([`PATH=${DEFAULT_PATH}`], options.env), cwd: '/' }, root: { path: container.rootfs } };
  //@01 {
  const defaults = image.config.config ?? {};
  const security = securityConfig(options.flags); // Docker's defaults, or what --privileged and --cap-* make of them //@s12
  return {
    ociVersion: OCI_VERSION,
    process: {
      args: [...(defaults.Entrypoint ?? []), ...(options.command.length ? options.command : defaults.Cmd ?? [])],
      env: mergeEnv(defaults.Env ?? [`PATH=${DEFAULT_PATH}`], options.env),
      cwd: defaults.WorkingDir || '/',
      user: { uid: 0, gid: 0, username: options.flags.user || defaults.User || '0' }, // looked up in the image by init //@s11
      ...security.process, // capabilities, noNewPrivileges //@s12
      terminal: options.tty, // -t: openTerminal() gives the command one //@s15
      ...(options.tty ? consoleSizeOf() : {}), // -t: calf's terminal's size, the pty's from the start //@s15
    },
    //@..s04: root: { path: container.rootfs },
    //@s04..s14: root: { path: container.rootfs, overlay },
    root: { path: container.rootfs, overlay, readonly: options.flags.readOnly }, //@s14
    hostname: options.flags.hostname ?? container.id.slice(0, 12), // Docker's default: the short id //@s05
    mounts: volumeMounts(options.flags, container), // -v and --tmpfs; makes a missing host directory, a new volume //@s14
    //@s02 {
    linux: {
      namespaces: [
        { type: 'mount' },
        { type: 'uts' }, { type: 'ipc' }, //@s05
        { type: 'pid' }, //@s06
        ...(options.flags.network === 'host' ? [] : [{ type: 'network' as const }]), //@s07
      ],
      //@s09..s12: resources: resourcesOf(options.flags),
      resources: { ...resourcesOf(options.flags), devices: security.devices }, //@s12
      ...security.linux, // maskedPaths, readonlyPaths, seccomp //@s12
    },
    //@}
  };
  //@}
}
//@}

//@s09 {
/** Put the init stage (pid) into the container's cgroup: everything it starts inherits it. */
function joinCgroup(cgroup: Cgroup, pid: number): void {
  //@todo09 {
  // TODO(09.1): the container's cgroup exists (lib's createCgroup made calf/<id>), but nothing
  // runs in it. Move the init stage into it: a cgroup's `cgroup.procs` takes a pid (cgroups(7)).
  // cgroup.set() writes v1's files and v2's side by side: what differs between the two here?
  // Why now, between the init stage's unshare and its execve, and not once the command runs?
  //@}
  cgroup.set({ v1: { 'cgroup.procs': pid }, v2: { 'cgroup.procs': pid } }); // v1: once per hierarchy //@09
}

/** The spec's CPU resources (from --cpus and --cpu-shares): a CFS quota per period, and a weight against the other cgroups. */
function limitCpu(cgroup: Cgroup, { cpu }: Resources): void {
  //@todo09 {
  // TODO(09.2): the spec's cpu.quota lets the container run `quota` µs of every `period` µs (--cpus
  // 0.5: 50000 of 100000): on v1 cpu.cfs_period_us and cpu.cfs_quota_us, on v2 one file, cpu.max
  // ("QUOTA PERIOD"). cpu.shares is v1's cpu.shares (2–262144); v2's cpu.weight is 1–10000:
  // sharesToWeight() converts as runc does. Only what is given. Why can't a v1 quota come first?
  //@}
  //@09 {
  const { quota, period = CPU_PERIOD_US, shares } = cpu ?? {};
  if (quota !== undefined) cgroup.set({ v1: { 'cpu.cfs_period_us': period, 'cpu.cfs_quota_us': quota }, v2: { 'cpu.max': `${quota} ${period}` } });
  if (shares !== undefined) cgroup.set({ v1: { 'cpu.shares': shares }, v2: { 'cpu.weight': sharesToWeight(shares) } });
  //@}
}
//@}

//@s10 {
/** The spec's memory and pids resources (from --memory, --memory-swap, --pids-limit) as those controllers' limits. */
function limitMemoryAndPids(cgroup: Cgroup, { memory, pids }: Resources): void {
  //@todo10 {
  // TODO(10.1): memory.limit caps RAM: v1 memory.limit_in_bytes, v2 memory.max. memory.swap is
  // RAM *plus* swap (-1: no cap): v1 takes that sum in memory.memsw.limit_in_bytes, v2 only the
  // swap in memory.swap.max ("max": no cap). pids.limit is pids.max on both. Only what is given.
  // Which v1 file must be written first, and why?
  //@}
  //@10 {
  if (memory?.limit !== undefined) {
    const memsw = memory.swap ?? -1; // not given: no cap on swap (--memory-swap's default is in the spec already)
    cgroup.set({
      v1: { 'memory.limit_in_bytes': memory.limit, 'memory.memsw.limit_in_bytes': memsw }, // memsw may never be below the limit
      v2: { 'memory.max': memory.limit, 'memory.swap.max': memsw === -1 ? 'max' : memsw - memory.limit },
    });
  }
  if (pids !== undefined) cgroup.set({ v1: { 'pids.max': pids.limit }, v2: { 'pids.max': pids.limit } });
  //@}
}

/** Docker's 137 when the kernel's OOM killer ended the container, and a line saying so. */
function reportOomKill(cgroup: Cgroup, status: number): number {
  //@todo10 {
  // TODO(10.2): the OOM killer's SIGKILL looks like any other `kill -9`. The memory controller
  // counts its kills: an `oom_kill N` line in v1's memory.oom_control and in v2's memory.events
  // (cgroup.read() reads this version's). Say on stderr that the container was OOM-killed and
  // return 137. Why read it here and not in an exit handler?
  //@}
  //@todo10: return status;
  //@10 {
  if (!/^oom_kill [1-9]/m.test(cgroup.read({ v1: 'memory.oom_control', v2: 'memory.events' }))) return status;
  process.stderr.write('calf: the container was OOM-killed: it used more memory than --memory allows\n');
  return 137;
  //@}
}
//@}

//@s08 {
/** Publish ports: a proxy on the host's 127.0.0.1 for each, forwarding to the container's address. */
async function publishPorts(ports: PortMapping[], endpoint: Endpoint | undefined): Promise<void> {
  if (ports.length && !endpoint) throw new CalfError('-p needs a network with addresses: --network NAME');
  //@todo08 {
  // TODO(08.3): for each port, listen on 127.0.0.1:hostPort (net.createServer, then lib's listen),
  // and join every connection to a new one to the container's address and containerPort
  // (net.connect; lib's splice pipes them both ways). Why listen before the container starts?
  //@}
  //@08 {
  for (const { hostPort, containerPort } of ports) {
    // allowHalfOpen: a client that has sent all it will (a FIN) still wants the answer
    const server = net.createServer({ allowHalfOpen: true }, (client) => splice(client, net.connect(containerPort, endpoint!.address)));
    await listen(server, hostPort, '127.0.0.1');
    server.unref(); // calf lives as long as the container, not as long as the proxy
  }
  //@}
}

/** The endpoint's other end: a veth pair from the bridge into the sandbox (the container's netns), with an address and a route. */
function connectSandbox(endpoint: Endpoint | undefined, pid: number): void {
  if (!endpoint) return;
  //@todo08 {
  // TODO(08.1): the init stage (pid) is in a network namespace of its own, with only lo. Plug it
  // into the network: a veth pair (veth(4)), one end on endpoint.bridge, the other as eth0 in
  // pid's namespace with endpoint's address and a default route (ip-link(8), ip-address(8),
  // ip-route(8); ip and ipIn run them). Why does nobody have to delete eth0 when the container ends?
  //@}
  //@08 {
  ip(['link', 'add', endpoint.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', String(pid)]);
  ip(['link', 'set', endpoint.veth, 'master', endpoint.bridge, 'up']);
  ipIn(pid, ['address', 'add', `${endpoint.address}/${endpoint.prefix}`, 'dev', 'eth0']);
  ipIn(pid, ['link', 'set', 'eth0', 'up']);
  ipIn(pid, ['route', 'add', 'default', 'via', endpoint.gateway]);
  //@}
}
//@}

// ─── Container side: `calf init`, re-executed by the parent ───────────────────────────────────
// Our job: become the container, then the command (execve). All synchronous: unshare() moves this thread only.

function init(config: Spec): never {
  const startFifo = openExecFifo(config.execFifo); // calf-runtime's: first, while its path is the host's //@s17
  const rootfs = config.root!.path; // calf's config has a root from level 01 on //@s01
  enterMountNamespace(); // first: every mount below then stays in the container //@s02
  mountOverlay(rootfs, config.root!.overlay); // before the others: they go on top of it //@s04
  enterUtsAndIpcNamespaces(config.hostname!); //@s05
  //@s07..s17: if (config.linux?.namespaces?.some((ns) => ns.type === 'network')) enterNetworkNamespace(); // before /sys: it shows its mounter's netns
  if (config.linux?.namespaces?.some((ns) => ns.type === 'network' && !ns.path)) enterNetworkNamespace(); // before /sys: it shows its mounter's netns //@s17
  joinNamespacePaths(config); // calf-runtime's: the namespaces an engine made, by path (podman's network), setns(2): given code //@s17
  syncWithParent(); // sync: our namespaces exist; the parent connects our netns, joins us to our cgroup //@08
  mountProcAndSys(rootfs); //@s02
  maskKernelFiles(rootfs, config.linux ?? {}); // as soon as /proc and /sys exist; the pivot takes them along //@s12
  populateDev(`${rootfs}/dev`); //@s02
  mountKernelFilesystems(rootfs, config); // calf-runtime's: a cgroup namespace, /dev/mqueue, /sys/fs/cgroup, as an engine asks (given code) //@s17
  mountVolumes(rootfs, config.mounts ?? []); // last of the mounts: a volume may go anywhere, even under /dev //@s14
  chrootInto(rootfs, config.process.cwd); // after the mounts: they are made through host paths //@s01..s03
  pivotInto(rootfs, config.process.cwd); // after the mounts: they move along with the new root //@s03
  if (config.root!.readonly) makeRootReadonly(); // once nothing is made in the root any more //@s14
  if (config.process.terminal) openTerminal(config.process.consoleSize); // -t, after the pivot: a pty of the container's devpts //@s15
  //@s12..s16 {
  // Privileges last (the mounts need them), in runc's order: capabilities, the user, the filter right before execve
  dropCapabilities(config.process.capabilities);
  //@}
  switchUser(config); // after the pivot: the user is the image's, from its /etc/passwd //@s11..s16
  filterSyscalls(config.process.noNewPrivileges, config.linux?.seccomp); //@s12..s16
  execCommand(config.process.args, config.process.env); //@..s16
  applyProcessLimits(config); // calf-runtime's engines' rlimits and umask (given code): execve keeps them //@s17
  awaitStart(startFifo); // calf-runtime's: "created" until start; last, so that start runs the command at once //@s17
  startProcess(config); // the privileges, the user, the filter, execve: the exec stage ends the same way //@s16
}

//@s16 {
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
  applyProcessLimits(config); // calf-runtime's engines' rlimits and umask, as init applies them (given code) //@s17
  startProcess(config); // the rest is init's: the same privileges, user and filter as PID 1
}
//@}

//@s17 {
// ─── calf-runtime: calf under podman and containerd (the lesson is in runtime.ts) ─────────────

/** calf-runtime's create, calf.ts's part: the container's cgroup with the spec's limits, its init stage, the handshake. */
async function createInit(config: Spec, where: { parent: string; name: string }, console?: number): Promise<ChildProcess> {
  const cgroup = createCgroup(where.parent, where.name); // the engine's cgroupsPath: podman's libpod_parent/libpod-ID
  limitCpu(cgroup, config.linux?.resources ?? {});
  limitMemoryAndPids(cgroup, config.linux?.resources ?? {});
  limitDevices(cgroup, config.linux?.resources?.devices);
  // the runtime's stdio is the container's (the engine's pipes); with -t, fd 4 is the engine's console socket
  const spawnInit = () => startInit(config, console === undefined ? SYNC_STDIO : ['inherit', 'inherit', 'inherit', 'pipe', console]); // SYNC_STDIO, and fd 4
  const child = hasNamespace(config, 'pid') ? inNewPidNamespace(spawnInit) : spawnInit();
  await syncWithInit(child, (pid) => joinCgroup(cgroup, pid)); // false: it failed, and createdInit() says how
  return child;
}
//@}

//@s02 {
/** A mount namespace of its own, whose mounts never reach the host's. */
function enterMountNamespace(): void {
  //@todo02 {
  // TODO(02.1): every mount the container makes is the host's too. Give this thread a mount
  // namespace of its own (unshare(2)), then stop mount events propagating back to the host
  // (mount(2) sets propagation types: mount_namespaces(7)). Why every mount, not only "/"?
  //@}
  //@02 {
  linux.unshare(linux.CLONE_NEWNS); // the calling thread only: Node's other threads stay in the host's
  linux.mount(null, '/', null, linux.MS_REC | linux.MS_PRIVATE); // shared mounts would propagate to the host
  //@}
}

/** The kernel's views of processes and devices: proc on /proc, a read-only sysfs on /sys. */
function mountProcAndSys(rootfs: string): void {
  //@todo02 {
  // TODO(02.2): mount proc on rootfs/proc and sysfs on rootfs/sys (mount(2); proc(5), sysfs(5)):
  // /sys read-only, and neither with set-uid programs, devices or executables. Where would these
  // mounts show up if they came before TODO 02.1?
  //@}
  //@02 {
  linux.mount('proc', `${rootfs}/proc`, 'proc', linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC);
  linux.mount('sysfs', `${rootfs}/sys`, 'sysfs', linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC);
  //@}
}

const DEVICES: [string, number, number][] = [ // the character devices of Docker's /dev: name, major, minor
  ['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9], ['tty', 5, 0],
];

/** A fresh /dev: a tmpfs with device nodes, a private devpts and a /dev/shm of its own. */
function populateDev(dev: string): void {
  //@todo02 {
  // TODO(02.3): a tmpfs on dev, then each of DEVICES as a character device everyone may read and
  // write (mknod(2), makedev(3)). Why does mknod alone not give mode 0666?
  //@}
  //@02 {
  linux.mount('tmpfs', dev, 'tmpfs', linux.MS_NOSUID | linux.MS_STRICTATIME, 'mode=755,size=65536k');
  for (const [name, major, minor] of DEVICES) {
    linux.mknod(`${dev}/${name}`, linux.S_IFCHR | 0o666, linux.makedev(major, minor));
    fs.chmodSync(`${dev}/${name}`, 0o666); // mknod's mode passes through the umask
  }
  //@}
  fs.mkdirSync(`${dev}/pts`);
  linux.mount('devpts', `${dev}/pts`, 'devpts', linux.MS_NOSUID | linux.MS_NOEXEC, 'newinstance,ptmxmode=0666,mode=0620');
  fs.symlinkSync('pts/ptmx', `${dev}/ptmx`);
  fs.mkdirSync(`${dev}/shm`);
  linux.mount('shm', `${dev}/shm`, 'tmpfs', linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC, 'mode=1777,size=65536k');
  for (const [fd, name] of ['stdin', 'stdout', 'stderr'].entries()) fs.symlinkSync(`/proc/self/fd/${fd}`, `${dev}/${name}`);
  fs.symlinkSync('/proc/self/fd', `${dev}/fd`);
}
//@}

//@s04 {
/** Stack the image's layers under the container's own writable directory, on rootfs: one overlay mount. */
function mountOverlay(rootfs: string, overlay: Root['overlay']): void {
  if (!overlay) return; // the vfs driver copied the layers into rootfs: nothing to stack
  //@todo04 {
  // TODO(04.2): mount an overlay filesystem on rootfs (mount(2), fstype "overlay"): the layer
  // directories read-only below, overlay.upper on top for the container's writes, overlay.work
  // as overlayfs's scratch directory, all in one comma-separated option string (see the
  // overlayfs docs, "Multiple lower layers"). overlay.lower is in the image's order, base layer
  // first: which one must lowerdir name first?
  //@}
  //@04 {
  const lowerdir = overlay.lower.toReversed().join(':'); // the top layer first: it hides the ones after it
  linux.mount('overlay', rootfs, 'overlay', 0, `lowerdir=${lowerdir},upperdir=${overlay.upper},workdir=${overlay.work}`);
  //@}
}
//@}

//@s07 {
/** A network namespace of its own: no interface but a loopback, which we bring up. */
function enterNetworkNamespace(): void {
  //@todo07 {
  // TODO(07.1): the container shares the host's interfaces, addresses and ports. Give this thread
  // a network namespace of its own (unshare(2), network_namespaces(7)). What is in a new one?
  // TODO(07.2): a new namespace's lo is down, so even 127.0.0.1 fails. Bring it up the way
  // ifconfig does: on any socket (socket(2)), read lo's flags (ioctl(2), SIOCGIFFLAGS with a
  // linux.ifreq: netdevice(7)), set them again with IFF_UP added. Why must the socket be made
  // after the unshare?
  //@}
  //@07 {
  linux.unshare(linux.CLONE_NEWNET); // this thread only, like CLONE_NEWNS: fine, it will execve
  const sock = linux.socket(linux.AF_INET, linux.SOCK_DGRAM | linux.SOCK_CLOEXEC, 0); // in the new netns
  const ifr = linux.ifreq('lo');
  linux.ioctl(sock, linux.SIOCGIFFLAGS, ifr); // lo's flags, into ifr
  linux.ioctl(sock, linux.SIOCSIFFLAGS, linux.ifreq('lo', linux.ifr_flags(ifr) | linux.IFF_UP));
  linux.close(sock);
  //@}
}
//@}

//@s01..03 {
/** Make rootfs this process's root directory, and cwd (a path in the image) its working directory. */
function chrootInto(rootfs: string, cwd: string): void {
  //@todo01 {
  // TODO(01.3): make rootfs this process's root directory (chroot(2)), then move the working
  // directory into it (chdir(2) to cwd). What would "." be after chroot without the chdir?
  //@}
  //@01 {
  linux.chroot(rootfs);
  linux.chdir(cwd);
  //@}
}
//@}

//@s03 {
/** Make rootfs the root mount of this mount namespace, and the host's root unreachable. */
function pivotInto(rootfs: string, cwd: string): void {
  //@todo03 {
  // TODO(03.1): pivot_root(2) wants a new root that is a mount point: make rootfs one, with the
  // mounts already under it (mount(2): which flags mount a directory onto a directory?).
  // TODO(03.2): chroot can be escaped. Swap the root mount (pivot_root(2)), detach the host's old
  // root lazily (umount2(2)) and remove its directory. Which paths are the host's, which yours?
  //@}
  //@todo03: chrootInto(rootfs, cwd); // level 02's way, until you replace it
  //@03 {
  linux.mount(rootfs, rootfs, null, linux.MS_BIND | linux.MS_REC); // a mount point, with /proc, /sys, /dev along
  fs.mkdirSync(`${rootfs}/.oldroot`);
  linux.pivot_root(rootfs, `${rootfs}/.oldroot`); // the host's root is now at /.oldroot...
  linux.umount2('/.oldroot', linux.MNT_DETACH); // ...and now nowhere: lazily detached
  fs.rmdirSync('/.oldroot');
  linux.chdir(cwd);
  //@}
}
//@}

/** Become the command: same process, same pid, same stdin/stdout/stderr, new program. */
function execCommand(argv: string[], env: string[]): never {
  //@todo00 {
  // TODO(00.3): execve closes every fd marked close-on-exec, and Node marks even 0, 1 and 2:
  // clear the flag on those three (fcntl(2), F_SETFD). What would the command see otherwise?
  // TODO(00.4): replace this process with the command (execve(2)); lookPath finds argv[0] in the
  // container's PATH. Why replace the init stage instead of spawning one more child?
  //@}
  for (const fd of [0, 1, 2]) linux.fcntl(fd, linux.F_SETFD, 0); //@00
  //@todo00: throw new Error('level 00 is not done yet: execve the command (TODO 00.4 in calf.ts)');
  linux.execve(lookPath(argv[0]!, env), argv, env); //@00
}

//@s05 {
/** A host name and System V IPC objects of its own: what `hostname` and `ipcs` see. */
function enterUtsAndIpcNamespaces(hostname: string): void {
  //@todo05 {
  // TODO(05.1): the container still shares the host's name and its System V message queues,
  // semaphores and shared memory (keyed by numbers any process may guess). Give it a UTS and an
  // IPC namespace of its own (unshare(2), one call), then set its host name (sethostname(2)).
  // Why must the unshare come first?
  //@}
  //@05 {
  linux.unshare(linux.CLONE_NEWUTS | linux.CLONE_NEWIPC);
  linux.sethostname(hostname);
  //@}
}
//@}

//@s06 {
/** Start the init stage as PID 1 of a new PID namespace, and keep calf's later children in the host's. */
function inNewPidNamespace<T>(start: () => T): T {
  //@todo06 {
  // TODO(06.1): a process cannot change its own PID namespace: unshare(2) with CLONE_NEWPID puts
  // the *next children* of the calling thread into a new one, the first of them as its PID 1.
  // Do it around start(), then send this thread's later children back to the host's namespace
  // (setns(2) on an fd of /proc/self/ns/pid, opened before). What would a second child of calf
  // be, if you didn't?
  //@}
  //@todo06: return start();
  //@06 {
  const host = fs.openSync('/proc/self/ns/pid', 'r');
  try {
    linux.unshare(linux.CLONE_NEWPID); // this thread's next child will be PID 1 of a new namespace
    return start();
  } finally {
    linux.setns(host, linux.CLONE_NEWPID); // and its later children (cleanup, ip…) the host's again
    fs.closeSync(host);
  }
  //@}
}
//@}

//@s11 {
/** Run the command as the container's user, with that user's groups and none of root's. */
function switchUser(config: Spec): void {
  //@todo11 {
  // TODO(11.1): the command runs as root, with whatever supplementary groups calf had. Look up
  // config.process.user in the image (lookupUser), then become that user: its supplementary groups
  // (setgroups(2)), its group ids and its user ids, real, effective and saved (setresgid(2),
  // setresuid(2)). Give it $HOME from passwd when the environment sets none. In which order,
  // and what goes wrong in the other?
  //@}
  //@11 {
  const user = lookupUser(config.process.user ?? { uid: 0, gid: 0 });
  linux.setgroups(user.groups); // first: changing groups needs root...
  linux.setresgid(user.gid, user.gid, user.gid);
  linux.setresuid(user.uid, user.uid, user.uid); // ...which this gives up for good
  if (!config.process.env.some((kv) => kv.startsWith('HOME='))) config.process.env.push(`HOME=${user.home}`);
  //@}
}
//@}

//@s12 {
/** Hide what /proc and /sys tell about the host, and freeze the host's kernel settings they expose. */
function maskKernelFiles(rootfs: string, { maskedPaths = [], readonlyPaths = [] }: NonNullable<Spec['linux']>): void {
  //@todo12 {
  // TODO(12.1): /proc and /sys are the host kernel's: /proc/kcore is its memory, /proc/sys its
  // settings, /proc/sysrq-trigger reboots it. Hide the spec's maskedPaths and make its
  // readonlyPaths read-only, under rootfs (mount(2): "Creating a bind mount", "Remounting an
  // existing mount"). Why does a read-only bind mount take two calls?
  //@}
  //@12 {
  for (const file of maskedPaths.map((p) => `${rootfs}${p}`).filter((p) => fs.existsSync(p))) {
    if (fs.statSync(file).isDirectory()) linux.mount('tmpfs', file, 'tmpfs', linux.MS_RDONLY);
    else linux.mount('/dev/null', file, null, linux.MS_BIND);
  }
  for (const file of readonlyPaths.map((p) => `${rootfs}${p}`).filter((p) => fs.existsSync(p))) {
    linux.mount(file, file, null, linux.MS_BIND | linux.MS_REC);
    linux.mount(file, file, null, linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC);
  }
  //@}
}

/** Root in the container keeps Docker's 14 capabilities, and can never get the others back. */
function dropCapabilities(capabilities: Capabilities | undefined): void {
  if (!capabilities) return;
  //@todo12 {
  // TODO(12.2): root has every capability. Leave it capabilities.bounding only, in every set and
  // for good (prctl(2): PR_CAPBSET_DROP, PR_CAP_AMBIENT; capset(2)); switchUser(), next, still
  // needs CAP_SETUID and CAP_SETGID. capabilities(7), "Transformation of capabilities during
  // execve()": why is capset alone not enough for root, and why may it keep those two?
  //@}
  //@12 {
  const keep = linux.capMask(capabilities.bounding ?? []);
  for (let cap = 0; cap <= linux.capLastCap(); cap++) {
    if (!(keep & (1n << BigInt(cap)))) linux.prctl(linux.PR_CAPBSET_DROP, cap);
  }
  linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_CLEAR_ALL);
  // switchUser() still needs these two, as in runc; execve then gives root the bounding set, others nothing
  const forSwitch = keep | linux.capMask(['CAP_SETUID', 'CAP_SETGID']);
  linux.capset({ effective: forSwitch, permitted: forSwitch, inheritable: 0n });
  //@}
}

/** No new privileges through exec, and a seccomp filter that refuses what no container needs. */
function filterSyscalls(noNewPrivileges = false, seccomp?: Seccomp): void {
  //@todo12 {
  // TODO(12.3): even without CAP_SYS_ADMIN some syscalls are attack surface (keyctl, bpf, a user
  // namespace that hands back every capability). Set no_new_privs (prctl(2)) as the spec says,
  // then load its seccomp profile: the default action, a rule per syscall name it lists, which
  // this kernel may not have (seccomp_init(3), seccomp_rule_add(3); linux.scmpAction and
  // scmpArgCmp read the profile's names). Why must no_new_privs come first, now CAP_SYS_ADMIN is gone?
  //@}
  //@12 {
  if (noNewPrivileges) linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1);
  if (!seccomp) return;
  const filter = linux.seccomp_init(linux.scmpAction(seccomp.defaultAction, seccomp.defaultErrnoRet));
  linux.seccompAddArchitectures(filter, seccomp.architectures ?? []); // calf-runtime's engines name the ABIs their profile covers (given code) //@s17
  for (const rule of seccomp.syscalls ?? []) {
    for (const nr of rule.names.map(linux.seccomp_syscall_resolve_name).filter((nr) => nr >= 0)) {
      linux.seccomp_rule_add_array(filter, linux.scmpAction(rule.action, rule.errnoRet), nr, rule.args?.map(linux.scmpArgCmp));
    }
  }
  linux.seccomp_load(filter); // this thread, and the command it becomes
  linux.seccomp_release(filter);
  //@}
}
//@}

//@s14 {
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
  //@todo14 {
  // TODO(14.1): make source (a directory on the host) appear at destination, a path *in the
  // container*. Have the kernel resolve destination inside rootfs, as the container will see it
  // (linux.openInRoot: openat2(2) with RESOLVE_IN_ROOT), then bind-mount source, with the mounts
  // under it, onto the directory that fd names: /proc/self/fd/N (mount(2)). Close the fd. Why
  // not mount onto `${rootfs}${destination}`, which names the same directory for most images?
  // TODO(14.2): with 'ro' in options, make that new mount read-only: a bind mount ignores
  // MS_RDONLY, but a remount of it (MS_BIND | MS_REMOUNT | MS_RDONLY) changes its own flags,
  // all of them: keep those it has (mountFlagsOf(fd): nosuid, nodev…). Which directory does the
  // fd of 14.1 name once the bind covers it?
  //@}
  //@14 {
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
  //@}
}

/** A new tmpfs on destination: files in memory, gone with the container. */
function mountTmpfs(rootfs: string, { destination, options }: Mount): void {
  //@todo14 {
  // TODO(14.3): mount a new tmpfs on destination, resolved inside rootfs as in 14.1 (mount(2),
  // tmpfs(5)); mountOptions(options) turns the spec's options into MS_* flags and tmpfs's own
  // data (size=, mode=). No directory on the host holds its files: when do they go?
  //@}
  //@14 {
  const { flags, data } = mountOptions(options); // --tmpfs's defaults: nosuid, nodev, noexec, mode=1777
  const fd = linux.openInRoot(rootfs, destination);
  try {
    linux.mount('tmpfs', `/proc/self/fd/${fd}`, 'tmpfs', flags, data);
  } finally {
    linux.close(fd);
  }
  //@}
}

/** --read-only: the container's root mount read-only; its volumes, tmpfs mounts, /proc and /dev are mounts of their own. */
function makeRootReadonly(): void {
  //@todo14 {
  // TODO(14.4): make the container's root read-only. After the pivot, "/" is the bind mount of
  // rootfs that pivotInto() made, so one remount does it, as in 14.2 (mount(2); never without
  // MS_BIND: that remounts the filesystem, which with the vfs driver is the host's). Which paths
  // of the container stay writable, and why wait until after the pivot?
  //@}
  linux.mount(null, '/', null, linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY); //@14
}
//@}

//@..s04: main({ run, init });
//@s04..s08: main({ run, init, flags });
//@s08..s13: main({ run, init, flags, commands: [networkCommand] });
//@s13..s14: main({ run, init, flags, commands: [networkCommand, pullCommand(pull), tagCommand] });
//@s14..s15: main({ run, init, flags, commands: [networkCommand, pullCommand(pull), tagCommand, volumeCommand] });
//@s15..s16: main({ run, init, flags, commands: [networkCommand, pullCommand(pull), tagCommand, volumeCommand, containerCommands, monitorCommands], monitor: (dir, mode) => monitor(dir, mode, start) });
//@s16..s17 {
main({
  run, init, flags, commands: [networkCommand, pullCommand(pull), tagCommand, volumeCommand, containerCommands, monitorCommands, containerExecCommand(exec)],
  monitor: (dir, mode) => monitor(dir, mode, start),
  stages: { [EXEC_STAGE]: execStage },
});
//@}
//@s17 {
main({
  run, init, flags, commands: [networkCommand, pullCommand(pull), tagCommand, volumeCommand, containerCommands, monitorCommands, containerExecCommand(exec)],
  monitor: (dir, mode) => monitor(dir, mode, start),
  stages: { [EXEC_STAGE]: execStage },
  runtime: runtimeCommands(createInit), // calf-runtime: `calf runtime …`, runc's command line
});
//@}
