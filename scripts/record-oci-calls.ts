/**
 * Record how podman and containerd call their OCI runtime: each case below runs the engine
 * (through the test harness, in a sandbox) with a logging shim as its runtime, the shim running
 * Debian's runc. Writes test/fixtures/oci/: calls.json (per case, the engine commands and every
 * runtime call: argv, caller, exit code, what it printed, its --log file) and the config.json
 * and process.json files the engines generated, as fixtures for calf-runtime's tests. The
 * findings are written up in docs/notes/oci-engines.md.
 *
 *   npx tsx scripts/record-oci-calls.ts [--out test/fixtures/oci]
 *
 * Paths and ids are normalised so that a second recording differs only where the engines'
 * behaviour does: the sandbox directory is `/tmp/calf-engines`, container ids `<id>` (and
 * `<id12>` for their 12-character form), layer and exec-session ids `<layer>`, `<session>`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startPodman, type Podman } from '../test/support/podman.js';
import { startContainerd, type Containerd } from '../test/support/containerd.js';
import { writeLoggingShim, readCalls, clearCalls, type RuntimeCall } from '../test/support/oci-shim.js';
import { repo } from '../test/support/paths.js';

const { values: opts } = parseArgs({ options: { out: { type: 'string', default: 'test/fixtures/oci' } } });
const out = path.resolve(repo, opts.out!);
fs.mkdirSync(out, { recursive: true });

interface Recorded {
  engine: 'podman' | 'containerd';
  case: string;
  /** the engine commands the case ran, their exit codes and output */
  commands: { argv: string[]; exitCode: number | undefined; stdout: string; stderr: string }[];
  calls: (Omit<RuntimeCall, 'config' | 'process' | 'env'> & { env: string[] })[];
}

const recorded: Recorded[] = [];
/** fds this recorder inherited (a terminal's, a CI runner's): every engine inherits them too, they are not the engines' */
const inherited = new Set(fs.readdirSync('/proc/self/fd').map((fd) => { try { return fs.readlinkSync(`/proc/self/fd/${fd}`); } catch { return ''; } }).filter((t) => /^(pipe|socket):/.test(t)));
/** every sandbox dir and container id seen, for normalising */
const ids = new Set<string>();
const dirs = new Set<string>();

function normalise(text: string): string {
  let t = text;
  for (const d of dirs) t = t.split(d).join(d.includes('calf-oci-shim') ? '/tmp/calf-oci-shim' : '/tmp/calf-engines');
  t = t.replace(/calf-engines-[0-9a-f]{12}/g, 'calf-engines');
  for (const id of ids) t = t.split(id).join('<id>').split(id.slice(0, 12)).join('<id12>');
  return t
    .replace(/\/overlay\/[0-9a-f]{64}\//g, '/overlay/<layer>/')
    .replace(/\/overlay\/l\/[A-Z0-9]{26}/g, '/overlay/l/<link>')
    .replace(/userdata\/[0-9a-f]{64}/g, 'userdata/<session>')
    .replace(/exec-process-\d+/g, 'exec-process-<n>')
    .replace(/runc-process\d+/g, 'runc-process<n>')
    .replace(/pty\d+\/pty\.sock/g, 'pty<n>/pty.sock')
    .replace(/conmon-term\.\w{6}/g, 'conmon-term.XXXXXX')
    .replace(/netns-[0-9a-f-]{36}/g, 'netns-<uuid>')
    .replace(/"\d{4}-\d\d-\d\dT[\d:.]+Z"/g, '"<time>"')
    .replace(/\b(pid[":= ]+)\d+/g, '$1<pid>')
    .replace(/pipe:\[\d+\]/g, 'pipe').replace(/socket:\[\d+\]/g, 'socket')
    .replace(/\[\d+,\d+(,\d+)*\]/g, '[<pids>]');
}

/** Run `steps` against the engine, with the shim's record cleared first; keep what it recorded. */
async function record(engine: Recorded['engine'], name: string, shimDir: string, steps: () => Promise<Recorded['commands']>, fixtures: { config?: string; process?: string } = {}): Promise<void> {
  clearCalls(shimDir);
  const commands = await steps();
  const calls = readCalls(shimDir);
  // podman's ids are random: normalise them; containerd's are the names the case gave
  for (const c of calls) if (c.command === 'create' && /^[0-9a-f]{64}$/.test(c.args.at(-1)!)) ids.add(c.args.at(-1)!);
  const write = (file: string, data: unknown) => fs.writeFileSync(path.join(out, file), `${normalise(JSON.stringify(data, null, 2))}\n`);
  const created = calls.find((c) => c.config);
  if (fixtures.config && created) write(`${engine}-${fixtures.config}.config.json`, created.config);
  const exec = calls.find((c) => c.process);
  if (fixtures.process && exec) write(`${engine}-${fixtures.process}.process.json`, exec.process);
  recorded.push({
    engine,
    case: name,
    commands: commands.map((c) => ({
      ...c,
      argv: c.argv.map(normalise),
      // ctr task ls/ps print pids in columns
      stdout: normalise(c.argv[0] === 'task' ? c.stdout.replace(/^([A-Za-z]\w*\s+)?\d+(?=\s)/gm, '$1<pid>') : c.stdout),
      stderr: normalise(c.stderr),
    })),
    calls: calls.map(({ config: _c, process: _p, env, ...c }) => ({
      ...c,
      args: c.args.map(normalise),
      cwd: normalise(c.cwd),
      fds: c.fds.filter((f) => !inherited.has(f.slice(f.indexOf(' -> ') + 4))).map(normalise),
      ...(c.stdout === undefined ? {} : { stdout: normalise(c.stdout) }),
      ...(c.log === undefined ? {} : { log: normalise(c.log) }),
      // the variable names, and the values of those that matter to a runtime
      env: Object.entries(env).map(([k, v]) => (/^(PATH|XDG_RUNTIME_DIR|NOTIFY_SOCKET|LISTEN_\w+|_OCI_\w+|_CONTAINERS_\w+|GOMAXPROCS)$/.test(k) ? `${k}=${normalise(v)}` : k)),
    })),
  });
  const ok = commands.map((c) => c.exitCode).join(',');
  console.log(`${engine} ${name}: exits ${ok}; runtime calls: ${calls.map((c) => `${c.command}=${c.exitCode}`).join(' ')}`);
}

/** Run engine commands in order; each one's result is kept. */
function sequence(run: (argv: string[], o?: { tty?: boolean; input?: string }) => ReturnType<Podman['podman']>, cmds: { argv: string[]; tty?: boolean; input?: string; wait?: number }[]) {
  return async () => {
    const results: Recorded['commands'] = [];
    for (const c of cmds) {
      const r = await run(c.argv, { ...(c.tty ? { tty: true } : {}), ...(c.input === undefined ? {} : { input: c.input }) });
      results.push({ argv: c.argv, exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr });
      if (c.wait) await new Promise((res) => setTimeout(res, c.wait));
    }
    return results;
  };
}

async function podmanCases(): Promise<void> {
  const shimDir = fs.mkdtempSync('/tmp/calf-oci-shim-');
  dirs.add(shimDir);
  const shim = writeLoggingShim(shimDir);
  let p: Podman | undefined;
  try {
    p = await startPodman({ runtime: shim });
    dirs.add(p.sandbox.dir);
    const img = p.image;
    const pm = (argv: string[], o?: { tty?: boolean; input?: string }) => p!.podman(argv, o);
    const vol = path.join(p.sandbox.dir, 'vol');
    fs.mkdirSync(vol);
    await record('podman', 'run --rm --network none', shimDir, sequence(pm, [{ argv: ['run', '--rm', '--network', 'none', img, 'echo', 'hi'] }]), { config: 'run' });
    await record('podman', 'run --rm (default network: CNI bridge)', shimDir, sequence(pm, [{ argv: ['run', '--rm', img, 'true'] }]), { config: 'bridge' });
    await record('podman', 'run -d, ps, logs, exec, stop, rm', shimDir, sequence(pm, [
      { argv: ['run', '-d', '--name', 'd1', '--network', 'none', img, 'sh', '-c', 'echo started; trap "exit 3" TERM; while :; do sleep 0.1; done'], wait: 300 },
      { argv: ['ps', '--format', '{{.Names}} {{.Image}}'] },
      { argv: ['logs', 'd1'] },
      { argv: ['exec', 'd1', 'sh', '-c', 'echo in exec; exit 7'] },
      { argv: ['stop', 'd1'] },
      { argv: ['rm', 'd1'] },
    ]), { config: 'detached', process: 'exec' });
    await record('podman', 'run -t', shimDir, sequence(pm, [{ argv: ['run', '--rm', '-t', '--network', 'none', img, 'tty'], tty: true }]), { config: 'tty' });
    await record('podman', 'exec -t, exec -i, kill', shimDir, sequence(pm, [
      { argv: ['run', '-d', '--name', 'e1', '--network', 'none', img, 'sleep', '600'] },
      { argv: ['exec', '-t', 'e1', 'tty'], tty: true },
      { argv: ['exec', '-i', 'e1', 'cat'], input: 'piped\n' },
      { argv: ['kill', 'e1'] },
      { argv: ['rm', 'e1'] },
    ]), { process: 'exec-tty' });
    await record('podman', 'run -i', shimDir, sequence(pm, [{ argv: ['run', '--rm', '-i', '--network', 'none', img, 'cat'], input: 'hello\n' }]));
    await record('podman', 'run --memory --pids-limit --read-only -v', shimDir, sequence(pm, [
      { argv: ['run', '--rm', '--network', 'none', '--memory', '64m', '--pids-limit', '50', '--read-only', '-v', `${vol}:/data:ro`, '-v', `${vol}:/rw`, img, 'true'] },
    ]), { config: 'limits-readonly-volumes' });
    await record('podman', 'run -d --pid host, stop', shimDir, sequence(pm, [
      { argv: ['run', '-d', '--name', 'h1', '--pid', 'host', '--network', 'none', img, 'sleep', '600'] },
      { argv: ['stop', '-t', '1', 'h1'] },
      { argv: ['rm', 'h1'] },
    ]), { config: 'pid-host' });
    await record('podman', 'run: command not found (127)', shimDir, sequence(pm, [{ argv: ['run', '--rm', '--network', 'none', img, '/nonexistent'] }]));
    await record('podman', 'run: command not executable (126)', shimDir, sequence(pm, [{ argv: ['run', '--rm', '--network', 'none', img, '/etc/passwd'] }]));
    await record('podman', 'run: exit 3', shimDir, sequence(pm, [{ argv: ['run', '--rm', '--network', 'none', img, 'sh', '-c', 'exit 3'] }]));
    await record('podman', 'pause, unpause', shimDir, sequence(pm, [
      { argv: ['run', '-d', '--name', 'q1', '--network', 'none', img, 'sleep', '600'] },
      { argv: ['pause', 'q1'] },
      { argv: ['unpause', 'q1'] },
      { argv: ['rm', '-f', 'q1'] },
    ]));
  } finally {
    const left = await p?.stop();
    if (left?.length) console.error(`podman: left ${left.join(', ')}`);
    fs.rmSync(shimDir, { recursive: true, force: true });
  }
}

async function containerdCases(): Promise<void> {
  const shimDir = fs.mkdtempSync('/tmp/calf-oci-shim-');
  dirs.add(shimDir);
  const shim = writeLoggingShim(shimDir);
  let c: Containerd | undefined;
  try {
    c = await startContainerd({ runtime: shim });
    dirs.add(c.sandbox.dir);
    const img = c.image;
    const ctr = (argv: string[], o?: { tty?: boolean; input?: string }) => c!.ctr(argv, o);
    await record('containerd', 'ctr run --rm', shimDir, sequence(ctr, [{ argv: ['run', '--rm', img, 'c1', 'echo', 'hi'] }]), { config: 'run' });
    await record('containerd', 'ctr run -d, task ls, exec, ps, pause, resume, kill, delete', shimDir, sequence(ctr, [
      { argv: ['run', '-d', img, 'd1', 'sh', '-c', 'trap "exit 3" TERM; while :; do sleep 0.1; done'], wait: 300 },
      { argv: ['task', 'ls'] },
      { argv: ['task', 'exec', '--exec-id', 'e1', 'd1', 'sh', '-c', 'echo in exec; exit 7'] },
      { argv: ['task', 'ps', 'd1'] },
      { argv: ['task', 'pause', 'd1'] },
      { argv: ['task', 'resume', 'd1'] },
      { argv: ['task', 'kill', 'd1'], wait: 500 },
      { argv: ['task', 'delete', 'd1'] },
      { argv: ['container', 'delete', 'd1'] },
    ]), { process: 'exec' });
    await record('containerd', 'ctr run -t', shimDir, sequence(ctr, [{ argv: ['run', '--rm', '-t', img, 't1', 'tty'], tty: true }]), { config: 'tty' });
    await record('containerd', 'ctr task exec -t', shimDir, sequence(ctr, [
      { argv: ['run', '-d', img, 'x1', 'sleep', '600'] },
      { argv: ['task', 'exec', '-t', '--exec-id', 'e2', 'x1', 'tty'], tty: true },
      { argv: ['task', 'kill', '-s', 'KILL', 'x1'], wait: 500 },
      { argv: ['task', 'delete', 'x1'] },
      { argv: ['container', 'delete', 'x1'] },
    ]), { process: 'exec-tty' });
    await record('containerd', 'ctr task kill --all', shimDir, sequence(ctr, [
      { argv: ['run', '-d', img, 'k1', 'sleep', '600'] },
      { argv: ['task', 'kill', '--all', '-s', 'KILL', 'k1'], wait: 500 },
      { argv: ['task', 'delete', 'k1'] },
      { argv: ['container', 'delete', 'k1'] },
    ]));
    await record('containerd', 'ctr run --seccomp --memory-limit', shimDir, sequence(ctr, [
      { argv: ['run', '--rm', '--seccomp', '--memory-limit', '67108864', img, 's1', 'true'] },
    ]), { config: 'seccomp-memory' });
    await record('containerd', 'ctr run: command not found', shimDir, sequence(ctr, [{ argv: ['run', '--rm', img, 'n1', '/nonexistent'] }]));
  } finally {
    const left = await c?.stop();
    if (left?.length) console.error(`containerd: left ${left.join(', ')}`);
    fs.rmSync(shimDir, { recursive: true, force: true });
  }
}

await podmanCases();
await containerdCases();
fs.writeFileSync(path.join(out, 'calls.json'), `${JSON.stringify(recorded, null, 2)}\n`);
console.log(`wrote ${path.relative(repo, out)}/: calls.json and ${fs.readdirSync(out).filter((f) => f.endsWith('.json') && f !== 'calls.json').length} config/process fixtures`);
