/**
 * podman (Debian's 4.3, with its conmon) driven hermetically: its store, run root, tmp dir,
 * configuration, events log and network configuration in a test-made directory, its containers
 * under a test-named cgroup parent, the whole of it in an {@link EngineSandbox} (so what podman
 * writes to fixed paths, /var/lib/containers/cache, /dev/shm/libpod_lock, /run/runc, /run/netns,
 * /var/lib/cni, stays there). The runtime is whatever path the test gives: Debian's runc, crun,
 * a logging shim, calf-runtime.
 *
 *   const p = await startPodman({ runtime: '/usr/bin/runc' });
 *   try { await p.podman(['run', '--rm', p.image, 'echo', 'hi']); } finally { await p.stop(); }
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ResultPromise } from 'execa';
import { createEngineSandbox, type EngineSandbox, type SandboxExecOptions } from './engine-sandbox.js';
import { imagesDir } from './images.js';

export interface PodmanOptions {
  /** the OCI runtime: a path (or a name on PATH); default Debian's runc */
  runtime?: string;
  /** containers/storage driver: overlay (default) or vfs */
  storageDriver?: 'overlay' | 'vfs';
  /** cover the hybrid host's cgroup2 mount in the sandbox (crun refuses the host otherwise) */
  hideCgroup2?: boolean;
  /** the test images to load (from build/images); default busybox */
  images?: string[];
}

export interface Podman {
  sandbox: EngineSandbox;
  /** where podman keeps everything: root/, run/, tmp/, conf/, net.d/, events.log */
  dir: string;
  /** the OCI runtime podman runs (its --runtime) */
  runtime: string;
  /** the busybox test image's name in this store */
  image: string;
  /**
   * `podman GLOBAL-FLAGS ARGS` in the sandbox. `run` and `create` get `--cgroup-parent` added,
   * so their cgroups are the sandbox's (podman's default is a shared `libpod_parent`).
   */
  podman(args: readonly string[], options?: SandboxExecOptions): ResultPromise<{ reject: false }>;
  /** end everything podman started and remove its state; returns what could not be removed */
  stop(): Promise<string[]>;
}

/** podman's global flags for a store in `dir`. */
function globalFlags(dir: string, runtime: string, driver: string): string[] {
  return [
    '--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'run'), '--tmpdir', path.join(dir, 'tmp'),
    '--storage-driver', driver, '--cgroup-manager', 'cgroupfs', '--events-backend', 'file',
    '--runtime', runtime,
  ];
}

/**
 * containers.conf, storage.conf and registries.conf of the test's own (podman reads the
 * machine's only when these variables are unset). runtime_supports_json adds calf-runtime to
 * podman's list, so that it gets runc's --log-format json too. default_ulimits: podman's rootful default
 * (nofile 1048576, nproc 32768) is above this machine's hard limits, and runc's setrlimit then
 * fails with EPERM; the workshop VM does not need it, but it does no harm there.
 */
function writeConfig(dir: string, driver: string): Record<string, string> {
  const conf = path.join(dir, 'conf');
  for (const d of ['conf', 'root', 'run', 'tmp', 'net.d', 'hooks.d', 'bigfiles']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  fs.writeFileSync(path.join(conf, 'containers.conf'), `[containers]
log_driver = "k8s-file"
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "${dir}/events.log"
tmp_dir = "${dir}/tmp"
hooks_dir = ["${dir}/hooks.d"]
volume_path = "${dir}/root/volumes"
static_dir = "${dir}/root/libpod"
conmon_path = ["/usr/bin/conmon"]
# podman passes --log-format=json --log FILE only to runtimes named here (by base name), and
# then reads a failed create's message from FILE; others' from their stderr
runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "calf-runtime"]

[network]
network_backend = "cni"
network_config_dir = "${dir}/net.d"
`);
  fs.writeFileSync(path.join(conf, 'storage.conf'), `[storage]\ndriver = "${driver}"\ngraphroot = "${dir}/root"\nrunroot = "${dir}/run"\n`);
  fs.writeFileSync(path.join(conf, 'registries.conf'), 'unqualified-search-registries = []\n');
  return {
    CONTAINERS_CONF: path.join(conf, 'containers.conf'),
    CONTAINERS_STORAGE_CONF: path.join(conf, 'storage.conf'),
    CONTAINERS_REGISTRIES_CONF: path.join(conf, 'registries.conf'),
    // image copies write big temporary files to $TMPDIR (default /var/tmp)
    TMPDIR: path.join(dir, 'bigfiles'),
  };
}

/** Start a podman of the test's own (a sandbox, a store, the test images loaded). Call `stop()` in a finally/afterAll. */
export async function startPodman(options: PodmanOptions = {}): Promise<Podman> {
  const sandbox = await createEngineSandbox({ hideCgroup2: options.hideCgroup2 });
  try {
    const dir = path.join(sandbox.dir, 'podman');
    const driver = options.storageDriver ?? 'overlay';
    const runtime = options.runtime ?? '/usr/bin/runc';
    const env = writeConfig(dir, driver);
    const flags = globalFlags(dir, runtime, driver);
    const podman: Podman['podman'] = (args, o = {}) => {
      const [sub, ...rest] = args;
      const withParent = (sub === 'run' || sub === 'create') && !rest.some((a) => a.startsWith('--cgroup-parent'))
        ? [sub, '--cgroup-parent', sandbox.cgroupParent, ...rest] : args;
      return sandbox.exec('podman', [...flags, ...withParent], { ...o, env: { ...env, ...o.env } });
    };
    for (const name of options.images ?? ['busybox']) {
      const layout = path.join(imagesDir, name);
      if (!fs.existsSync(path.join(layout, 'index.json'))) throw new Error(`test image ${name} not built: run npm run images`);
      const loaded = await podman(['load', '-i', layout]);
      const ref = /Loaded image(?:\(s\))?: (\S+)/.exec(loaded.stdout)?.[1];
      if (loaded.exitCode !== 0 || !ref) throw new Error(`podman load -i ${layout} failed (exit ${loaded.exitCode}): ${loaded.stderr.trim()}`);
      // `podman load` of an OCI layout names the image after its path; give it its short name
      const tagged = await podman(['tag', ref, `localhost/${name}:latest`]);
      if (tagged.exitCode !== 0) throw new Error(`podman tag ${ref} failed: ${tagged.stderr.trim()}`);
    }
    return {
      sandbox,
      dir,
      runtime,
      image: 'localhost/busybox:latest',
      podman,
      stop: () => sandbox.remove(),
    };
  } catch (err) {
    await sandbox.remove();
    throw err;
  }
}
