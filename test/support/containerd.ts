/**
 * containerd (Debian's 1.6) started by the test, with `ctr` as its client: its root, state,
 * temp dir and gRPC/ttrpc sockets in a test-made directory, its containers in a containerd
 * namespace named like the sandbox (so runc's default cgroupsPath `/<namespace>/<id>` is under
 * the test-named parent), the whole of it in an {@link EngineSandbox} (the shims' sockets in
 * /run/containerd/s, runc's state in /run/containerd/runc and ctr's FIFOs in
 * /run/containerd/fifo are fixed paths: there they are the sandbox's).
 *
 * The runtime reaches the shim (io.containerd.runc.v2, the default) as a container option:
 * `ctr run --runc-binary PATH` stores runc options {BinaryName: PATH} with the container, and
 * the shim runs PATH instead of `runc` for every call on it.
 *
 *   const c = await startContainerd({ runtime: '/usr/bin/runc' });
 *   try { await c.ctr(['run', '--rm', c.image, 'c1', 'echo', 'hi']); } finally { await c.stop(); }
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import type { ResultPromise } from 'execa';
import { createEngineSandbox, type EngineSandbox, type SandboxExecOptions } from './engine-sandbox.js';
import { imagesDir } from './images.js';
import { slow } from './host.js';

export interface ContainerdOptions {
  /** the OCI runtime the shim runs: a path; default Debian's runc */
  runtime?: string;
  /** cover the hybrid host's cgroup2 mount in the sandbox (crun refuses the host otherwise) */
  hideCgroup2?: boolean;
  /** the test images to import (from build/images); default busybox */
  images?: string[];
}

export interface Containerd {
  sandbox: EngineSandbox;
  /** root/, state/, tmp/, config.toml, containerd.log, the sockets */
  dir: string;
  /** the gRPC socket ctr talks to */
  address: string;
  /** the containerd namespace of the test's containers (= the sandbox's name) */
  namespace: string;
  /** the OCI runtime (ctr run's --runc-binary) */
  runtime: string;
  /** the busybox test image's name in this containerd */
  image: string;
  /**
   * `ctr --address A --namespace N ARGS` in the sandbox. `run` and `container create` get
   * `--runc-binary RUNTIME` added.
   */
  ctr(args: readonly string[], options?: SandboxExecOptions): ResultPromise<{ reject: false }>;
  /** end containerd, its shims and containers, and remove its state; returns what could not be removed */
  stop(): Promise<string[]>;
}

/** containerd's configuration: every path in `dir`, no CRI, none of the plugins that would write elsewhere (opt: /opt/containerd). */
function writeConfig(dir: string): string {
  for (const d of ['root', 'state', 'tmp']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const file = path.join(dir, 'config.toml');
  fs.writeFileSync(file, `version = 2
root = "${dir}/root"
state = "${dir}/state"
temp = "${dir}/tmp"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "${dir}/containerd.sock"

[ttrpc]
  address = "${dir}/containerd.sock.ttrpc"
`);
  return file;
}

/** Start a containerd of the test's own and import the test images. Call `stop()` in a finally/afterAll. */
export async function startContainerd(options: ContainerdOptions = {}): Promise<Containerd> {
  const sandbox = await createEngineSandbox({ hideCgroup2: options.hideCgroup2 });
  try {
    const dir = path.join(sandbox.dir, 'containerd');
    const config = writeConfig(dir);
    const address = path.join(dir, 'containerd.sock');
    const namespace = sandbox.name;
    const runtime = options.runtime ?? '/usr/bin/runc';
    const log = path.join(dir, 'containerd.log');
    const daemon = sandbox.spawn('containerd', ['--config', config], log);
    const ctr: Containerd['ctr'] = (args, o = {}) => {
      const [a, b] = args;
      const at = a === 'run' ? 1 : (a === 'container' || a === 'c') && b === 'create' ? 2 : 0;
      const withBinary = at && !args.some((x) => x.startsWith('--runc-binary')) ? [...args.slice(0, at), '--runc-binary', runtime, ...args.slice(at)] : args;
      return sandbox.exec('ctr', ['--address', address, '--namespace', namespace, ...withBinary], o);
    };
    // serving once the socket answers
    const until = Date.now() + 20_000 * slow;
    for (;;) {
      if (daemon.exitCode !== null) throw new Error(`containerd exited (${daemon.exitCode}): ${tail(log)}`);
      if (fs.existsSync(address) && (await ctr(['version'], { timeout: 5_000 })).exitCode === 0) break;
      if (Date.now() > until) throw new Error(`containerd did not start serving ${address}: ${tail(log)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const name of options.images ?? ['busybox']) {
      const layout = path.join(imagesDir, name);
      if (!fs.existsSync(path.join(layout, 'index.json'))) throw new Error(`test image ${name} not built: run npm run images`);
      // ctr imports an OCI archive (the layout, tarred); the name is the layout's ref.name annotation
      const archive = path.join(dir, `${name}.tar`);
      execFileSync('tar', ['-C', layout, '-cf', archive, '.']);
      const imported = await ctr(['images', 'import', archive]);
      if (imported.exitCode !== 0) throw new Error(`ctr images import ${archive} failed (exit ${imported.exitCode}): ${imported.stderr.trim()}`);
    }
    return {
      sandbox,
      dir,
      address,
      namespace,
      runtime,
      image: 'busybox:latest',
      ctr,
      stop: () => sandbox.remove(),
    };
  } catch (err) {
    await sandbox.remove();
    throw err;
  }
}

function tail(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-5).join('\n');
  } catch {
    return '(no log)';
  }
}
