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
import fs from 'node:fs';
import net from 'node:net'; //@s08
import { constants } from 'node:os';
import * as linux from '../lib/linux/index.js';
import {
  main, exited, lookPath, mergeEnv, DEFAULT_PATH, createContainer, removeContainer, CalfError, type RunOptions,
  flag, //@s07
  syncWithInit, syncWithParent, SYNC_STDIO, //@s08
} from '../lib/runtime/index.js';
import { resolveImage, unpackImage, type ResolvedImage } from '../lib/image/index.js';
//@s07..s08: import { networkMode } from '../lib/network/index.js';
//@s08 {
import {
  createEndpoint, removeEndpoint, ip, ipIn, parsePublish, listen, splice, networkCommand, type Endpoint, type PortMapping,
} from '../lib/network/index.js';
//@}

/** What the parent side hands to the init stage, as JSON on its command line. */
interface InitConfig {
  argv: string[]; // the command and its arguments
  env: string[]; // its whole environment, KEY=VALUE
  rootfs: string; // the directory that becomes the container's / //@s01
  cwd: string; // the working directory inside the container //@s01
  network: string; // none, host (level 08: or a network's name) //@s07
}

//@s07 {
/** The `calf run` options this level adds, spelled as Docker's. */
const FLAGS = {
  //@s07..s08: network: flag('--network <mode>', 'none (the default): a network namespace with only lo; host: the host\'s network', networkMode),
  network: flag('--network <name>', 'none (the default): only lo; host: the host\'s network; or a network of calf network ls'), //@s08
  publish: flag('-p, --publish <hostPort:containerPort>', 'publish a container\'s TCP port on the host\'s 127.0.0.1 (repeatable)', parsePublish), //@s08
};
//@}

// ─── Parent side: runs on the host ─────────────────────────────────────────────────────────────
// Our job: prepare the container, start its first process, wait for it, report how it ended.

//@..s07: async function run(options: RunOptions): Promise<number> {
async function run(options: RunOptions<typeof FLAGS>): Promise<number> { //@s07
  //@..s01: const config: InitConfig = { argv: options.command, env: mergeEnv([`PATH=${DEFAULT_PATH}`], options.env) };
  const { image, rootfs } = await createRootfs(options.image); //@s01
  const config = containerConfig(options, image, rootfs); //@s01
  if (config.argv.length === 0) throw new CalfError('no command specified');
  const endpoint = joinNetwork(config.network); //@s08
  await publishPorts(options.flags.publish ?? [], endpoint); // before the container starts: a taken port stops it //@s08
  const child = startInit(config);
  //@todo08 {
  // TODO(08.2): connectSandbox() needs the container's network namespace, which exists only once
  // the init stage has unshared, and must be done before the command starts. Make the two sides
  // wait for each other (lib/runtime/sync.ts: its diagram): the init stage spawned with
  // SYNC_STDIO, syncWithInit() here, syncWithParent() in init() after the unshare. What would
  // `ip link add … netns PID` do if it ran right after the spawn?
  //@}
  await syncWithInit(child, (pid) => connectSandbox(endpoint, pid)); // between its unshare and its execve //@08
  return exitStatus(await exited(child));
}

/** No fork() in Node: start the container side by running this file again, as the hidden `init` command. */
function startInit(config: InitConfig): ChildProcess {
  //@todo00 {
  // TODO(00.1): Node can't fork(): run this very file again as a child (child_process.spawn),
  // with the hidden command `init`, the config as JSON, and calf's own stdin/stdout/stderr.
  // process.execPath is node, process.argv[1] this file. Why must process.execArgv come along?
  //@}
  //@todo00: throw new Error('level 00 is not done yet: start the init stage (TODO 00.1 in calf.ts)');
  //@00 {
  return spawn(process.execPath, [...process.execArgv, process.argv[1]!, 'init', JSON.stringify(config)], {
    //@00..08: stdio: 'inherit', // the command reads and writes calf's own stdin/stdout/stderr, byte for byte
    stdio: SYNC_STDIO, // calf's own stdin/stdout/stderr, byte for byte, and fd 3: the sync socket //@08
  }); // execArgv: node runs this .ts file through tsx again
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

//@s01 {
/** Find the image, unpack it into a new container directory, and have that directory removed when calf exits. */
async function createRootfs(ref: string): Promise<{ image: ResolvedImage; rootfs: string }> {
  //@todo01 {
  // TODO(01.1): the image is ignored so far. Find it (resolveImage), make a container directory
  // (createContainer), unpack the layers into its rootfs (unpackImage); the directory must go
  // however calf exits (removeContainer). Which step can fail, and what is left on disk then?
  //@}
  //@todo01: return { image: { config: {} } as ResolvedImage, rootfs: '' }; // a stub that keeps calf running
  //@01 {
  const image = resolveImage(ref);
  const container = createContainer();
  process.on('exit', () => removeContainer(container)); // sync, so it also runs when calf fails
  await unpackImage(image, container.rootfs);
  return { image, rootfs: container.rootfs };
  //@}
}

/** The init stage's config: the command line's command and environment over the image's defaults. */
function containerConfig(options: RunOptions, image: ResolvedImage, rootfs: string): InitConfig {
  //@todo01 {
  // TODO(01.2): docker run applies the image's defaults: Entrypoint before (COMMAND, or else Cmd),
  // Env under the -e values, WorkingDir (else "/"). Where in image.config are they? Which may be missing?
  //@}
  //@todo01: return { argv: options.command, env: mergeEnv([`PATH=${DEFAULT_PATH}`], options.env), rootfs, cwd: '/' };
  //@01 {
  const defaults = image.config.config ?? {};
  return {
    argv: [...(defaults.Entrypoint ?? []), ...(options.command.length ? options.command : defaults.Cmd ?? [])],
    env: mergeEnv(defaults.Env ?? [`PATH=${DEFAULT_PATH}`], options.env),
    rootfs,
    cwd: defaults.WorkingDir || '/',
    network: String(options.flags.network ?? 'none'), //@s07
  };
  //@}
}
//@}

//@s08 {
/** The container's endpoint on its network (none with --network none or host): an address leased from the pool. */
function joinNetwork(network: string): Endpoint | undefined {
  if (network === 'none' || network === 'host') return undefined;
  const endpoint = createEndpoint(network); // IPAM: the lowest free address, under the pool's lock
  process.on('exit', () => removeEndpoint(endpoint)); // sync: the veth and the lease go however calf exits
  return endpoint;
}

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
  // TODO(08.1): the init stage (pid) is in its own netns by now. Make a veth pair (ip-link(8),
  // veth(4)): endpoint.veth here, on endpoint.bridge and up; its peer eth0 in pid's netns. There
  // (ipIn), put endpoint.address/prefix on eth0, bring it up, route the rest via endpoint.gateway.
  // Why does nobody have to delete eth0 when the container ends?
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
// Our job: turn this process into the container, then become the command with execve().
// Everything here is synchronous: after unshare() only this thread is in the new namespaces.

function init(config: InitConfig): never {
  enterMountNamespace(); // first: every mount below then stays in the container //@s02
  if (config.network !== 'host') enterNetworkNamespace(); // before /sys: sysfs shows its mounter's netns //@s07
  syncWithParent(); // sync: our namespaces exist; the parent connects our netns to its network now //@08
  mountProcAndSys(config.rootfs); //@s02
  populateDev(`${config.rootfs}/dev`); //@s02
  chrootInto(config.rootfs, config.cwd); // after the mounts: they are made through host paths //@s01..s03
  pivotInto(config.rootfs, config.cwd); // after the mounts: they move along with the new root //@s03
  execCommand(config.argv, config.env);
}

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

//@..s07: main({ run, init });
//@s07..s08: main({ run, init, flags: FLAGS });
main({ run, init, flags: FLAGS, commands: [networkCommand] }); //@s08
