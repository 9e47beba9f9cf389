/**
 * A logging OCI runtime: a bash script that records how an engine calls it (argv, cwd,
 * environment, open fds, the bundle's config.json, exec's process.json, what it printed, its
 * exit code, the --log file) and runs a real runtime with the same arguments. Point podman's
 * `--runtime` or ctr's `--runc-binary` at it to see exactly what the engine asks of a runtime.
 *
 * The script runs the real runtime as a child, not with exec, to record its exit code: stdio,
 * the console socket and the pid file pass through untouched, and the container's process is
 * reparented to the engine's subreaper (conmon, the shim) as it would be anyway. It is bash, not
 * Node: podman runs `delete` with no PATH at all, and a shim must not cost 60 ms per call.
 */
import fs from 'node:fs';
import path from 'node:path';

/** One call of the runtime, as the shim saw it. */
export interface RuntimeCall {
  /** the arguments after the program name */
  args: string[];
  /** the subcommand (create, start, state, kill, delete, exec, ps, features…), '' if none */
  command: string;
  cwd: string;
  /** the caller's environment, as the runtime got it */
  env: Record<string, string>;
  /** `comm` of the calling process: conmon, podman, containerd-shim… */
  parent: string;
  /** open fds: `0 -> /dev/null`, `1 -> pipe:[…]`… */
  fds: string[];
  exitCode: number;
  /** what the runtime printed on stdout, for the commands whose output the engine reads */
  stdout?: string;
  /** the --log file after the call */
  log?: string;
  /** the bundle's config.json (create, run) */
  config?: unknown;
  /** exec's --process file */
  process?: unknown;
}

const SUBCOMMANDS = ['create', 'start', 'state', 'kill', 'delete', 'exec', 'run', 'features', 'ps', 'pause', 'resume', 'update', 'events', 'checkpoint', 'restore', 'list', 'spec'];

/**
 * Write the shim into `dir` as `dir/<name>` and return its path; its records go to `dir/calls/`.
 * @param real the runtime it runs (default Debian's runc)
 * @param name its file name: podman passes `--log-format=json --log FILE` only to a runtime
 *   whose base name is in containers.conf's runtime_supports_json (runc, crun…)
 */
export function writeLoggingShim(dir: string, real = '/usr/bin/runc', name = 'runc'): string {
  const calls = path.join(dir, 'calls');
  fs.mkdirSync(calls, { recursive: true });
  const shim = path.join(dir, name);
  // Every redirection below is on an external command or a subshell: bash then keeps no extra
  // fd of its own open, and the fds the record lists are the caller's.
  fs.writeFileSync(shim, `#!/bin/bash
d=${JSON.stringify(calls)}/$(/bin/date +%s%N)-$$
/bin/mkdir -p "$d"
printf '%s\\0' "$@" > "$d/argv"
printf '%s' "$PWD" > "$d/cwd"
/bin/cat /proc/$$/environ > "$d/env"
/bin/cat /proc/$PPID/comm > "$d/parent" 2>/dev/null
/bin/ls -l /proc/$$/fd/ > "$d/fds" 2>/dev/null
bundle=$PWD cmd= prev= proc= logf=
for a in "$@"; do
  case "$prev" in --bundle|-b) bundle=$a;; --process|-p) proc=$a;; --log) logf=$a;; esac
  case "$a" in --bundle=*) bundle=\${a#--bundle=};; --process=*) proc=\${a#--process=};; --log=*) logf=\${a#--log=};; esac
  [ -z "$cmd" ] && case "$a" in ${SUBCOMMANDS.join('|')}) cmd=$a;; esac
  prev=$a
done
case "$cmd" in create|run) [ -f "$bundle/config.json" ] && /bin/cp "$bundle/config.json" "$d/config.json";; esac
[ -n "$proc" ] && [ -f "$proc" ] && /bin/cp "$proc" "$d/process.json"
case "$cmd" in
  state|ps|features|list|spec|"") ${JSON.stringify(real)} "$@" > "$d/stdout"; rc=$?; /bin/cat "$d/stdout" ;;
  *) ${JSON.stringify(real)} "$@"; rc=$? ;;
esac
printf '%s' "$rc" > "$d/exit"
[ -n "$logf" ] && [ -f "$logf" ] && /bin/cp "$logf" "$d/log"
exit $rc
`, { mode: 0o755 });
  return shim;
}

/** The calls recorded in `dir` (by {@link writeLoggingShim}), oldest first. */
export function readCalls(dir: string): RuntimeCall[] {
  const calls = path.join(dir, 'calls');
  if (!fs.existsSync(calls)) return [];
  // names are `<ns since epoch>-<pid>`: same length for centuries, so they sort as strings
  return fs.readdirSync(calls).sort().map((n) => {
    const d = path.join(calls, n);
    const read = (f: string): string | undefined => (fs.existsSync(path.join(d, f)) ? fs.readFileSync(path.join(d, f), 'utf8') : undefined);
    const args = (read('argv') ?? '').split('\0').slice(0, -1);
    const env = Object.fromEntries((read('env') ?? '').split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    const fds = (read('fds') ?? '').split('\n').filter((l) => l.includes(' -> ')).map((l) => l.slice(l.lastIndexOf(' ', l.indexOf(' -> ') - 1) + 1))
      .filter((f) => !/^255 -> /.test(f)); // bash's own fd for the script it reads
    const json = (f: string): unknown => { const t = read(f); return t === undefined ? undefined : JSON.parse(t); };
    const stdout = read('stdout');
    const log = read('log');
    const config = json('config.json');
    const processJson = json('process.json');
    return {
      args,
      command: args.find((a) => SUBCOMMANDS.includes(a)) ?? '',
      cwd: read('cwd') ?? '',
      env,
      parent: (read('parent') ?? '').trim(),
      fds,
      exitCode: Number(read('exit') ?? NaN),
      ...(stdout === undefined ? {} : { stdout }),
      ...(log === undefined ? {} : { log }),
      ...(config === undefined ? {} : { config }),
      ...(processJson === undefined ? {} : { process: processJson }),
    };
  });
}

/** Forget the calls recorded so far (before the next case). */
export function clearCalls(dir: string): void {
  fs.rmSync(path.join(dir, 'calls'), { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'calls'));
}
