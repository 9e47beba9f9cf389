/**
 * calf's command line, shared by every level: `run`, `load`, `images`, `cleanup` and the
 * hidden `init` stage. A level file supplies only its lesson — the parent side (`run`) and the
 * container side (`init`) — and calls {@link main}.
 *
 * Exit codes are Docker's: 125 for calf's own errors (bad flag, unknown image, a failed
 * syscall before the command starts), 126 command cannot be executed, 127 command not found,
 * otherwise the command's own status, 128+N when a signal N killed it.
 * @module
 */
import fs from 'node:fs';
import { Command, CommanderError, type Option } from 'commander';
import { CommandNotFoundError } from './exec.js';
import { SyscallError } from './syscall-error.js';
import { fcntl, F_SETFD, F_GETFL, F_SETFL, FD_CLOEXEC, O_NONBLOCK } from './fcntl.js';

/** calf itself failed (Docker's `125`). */
export const EXIT_CALF_ERROR = 125;
/** The command exists but cannot be executed (`126`). */
export const EXIT_CANNOT_EXECUTE = 126;
/** The command was not found (`127`). */
export const EXIT_NOT_FOUND = 127;

/** What `calf run` was asked to do, parsed and checked. */
export interface RunOptions {
  /** the image reference as typed (`busybox`, `busybox:latest`, an id prefix) */
  image: string;
  /** COMMAND and ARGs; empty when the image's default command should run */
  command: string[];
  /** `KEY=VALUE` pairs from `--env-file` and `-e`, in order (later ones win) */
  env: string[];
  /** values of the options a level adds with {@link Level.options} */
  flags: Record<string, unknown>;
}

/** What a level file gives to {@link main}. */
export interface Level<Config> {
  /** Parent side: runs on the host, starts the container, returns the exit code for calf. */
  run(options: RunOptions): Promise<number>;
  /** Container side: the re-executed stage; ends in `execve`, so it never returns. */
  init(config: Config): never;
  /** Extra `calf run` options this level understands (`--hostname`, `--memory`…). */
  options?: Option[];
}

/** calf's own error message: one line on stderr, then Docker's exit code. */
export function fail(message: string, code = EXIT_CALF_ERROR): never {
  fs.writeSync(2, `calf: ${message}\n`);
  if (process.env.CALF_DEBUG) fs.writeSync(2, `${new Error('calf: failed here').stack}\n`);
  process.exit(code);
}

/** The exit code and message for an error thrown in the init stage. */
function initFailure(err: unknown): { code: number; message: string } {
  if (err instanceof CommandNotFoundError) return { code: EXIT_NOT_FOUND, message: err.message };
  if (err instanceof SyscallError && err.syscall === 'execve') {
    const code = err.code === 'ENOENT' || err.code === 'ENOTDIR' ? EXIT_NOT_FOUND : EXIT_CANNOT_EXECUTE;
    return { code, message: `exec: ${JSON.stringify(err.path)}: ${err.description.toLowerCase()}` };
  }
  return { code: EXIT_CALF_ERROR, message: errorMessage(err) };
}

/**
 * Mark every fd above stderr close-on-exec. Node's own fds already are, but whatever calf's
 * caller left open (a shell's, a CI runner's) would otherwise reach the container: runc's
 * CVE-2024-21626 was such a leaked fd.
 */
function closeInheritedFds(): void {
  for (const name of fs.readdirSync('/proc/self/fd')) {
    const fd = Number(name);
    if (fd <= 2) continue;
    try {
      fcntl(fd, F_SETFD, FD_CLOEXEC);
    } catch {
      // the directory handle readdirSync just closed: nothing to do
    }
  }
}

/**
 * Put stdin/stdout/stderr back in blocking mode. libuv (Node's I/O layer, and tsx through it)
 * makes a pipe non-blocking when it opens it as a stream; the flag belongs to the pipe, not to
 * the process, so a command that inherits it gets `EAGAIN` ("Resource temporarily unavailable")
 * as soon as its reader falls behind. libuv clears it for the children Node spawns; execve
 * does not.
 */
function blockingStdio(): void {
  for (const fd of [0, 1, 2]) {
    const flags = fcntl(fd, F_GETFL);
    if (flags & O_NONBLOCK) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  }
}

function errorMessage(err: unknown): string {
  if (process.env.CALF_DEBUG && err instanceof Error && err.stack) return err.stack;
  return err instanceof Error ? err.message : String(err);
}

/** Parse `--env-file` the way Docker does: `KEY=VALUE` lines, `#` comments, a bare `KEY` copies the host's value. */
export function readEnvFile(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    // Node's message already names the errno, its meaning and the path: ENOENT: no such file…
    throw new Error(`--env-file: ${(err as Error).message}`);
  }
  return text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).flatMap(envArg);
}

/** `-e KEY=VALUE` as given; `-e KEY` takes the host's value, or nothing when the host has none. */
function envArg(arg: string): string[] {
  if (arg.startsWith('=')) throw new Error(`invalid environment variable: ${arg}`);
  if (arg.includes('=')) return [arg];
  const value = process.env[arg];
  return value === undefined ? [] : [`${arg}=${value}`];
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/**
 * Parse the command line and run the level. Every failure ends in a one-line message on stderr
 * and a Docker exit code; nothing of calf's goes to stdout during `run`.
 */
export function main<Config>(level: Level<Config>): void {
  const program = new Command('calf')
    .description('a Docker-like container runtime, built one level at a time')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ outputError: (text) => fs.writeSync(2, `calf: ${text.replace(/^error: /, '')}`) });

  const runCommand = program.command('run')
    .description('run a command in a new container')
    .usage('[OPTIONS] IMAGE [COMMAND] [ARG...]')
    .argument('<image>', 'image name or id')
    .argument('[command...]', 'command and its arguments (default: the image\'s Cmd)')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable)', collect)
    .option('--env-file <file>', 'read environment variables from a file (repeatable)', collect)
    .option('-i, --interactive', 'accepted for Docker compatibility: stdin is always passed through')
    .option('-t, --tty', 'accepted for Docker compatibility: the terminal is always passed through')
    .option('--rm', 'accepted for Docker compatibility: containers are always removed')
    .passThroughOptions()
    .action(async (image: string, command: string[], opts: Record<string, unknown>) => {
      const env = [
        ...((opts.envFile as string[] | undefined) ?? []).flatMap(readEnvFile),
        ...((opts.env as string[] | undefined) ?? []).flatMap(envArg),
      ];
      process.exitCode = await level.run({ image, command, env, flags: opts });
    });
  for (const option of level.options ?? []) runCommand.addOption(option);

  program.command('init', { hidden: true })
    .argument('<config>', 'JSON from the parent side')
    .action((config: string) => {
      process.title = 'calf:[init]';
      try {
        closeInheritedFds();
        blockingStdio();
        level.init(JSON.parse(config) as Config);
      } catch (err) {
        const { code, message } = initFailure(err);
        fail(message, code);
      }
    });

  program.command('load')
    .description('load images from an OCI layout, an oci-archive or a docker-archive')
    .requiredOption('-i, --input <path>', 'archive file or layout directory')
    .action(async (opts: { input: string }) => {
      // Loaded on demand, like the other commands' modules: `run` and `init` start faster without them.
      const { loadImages } = await import('./image-load.js');
      for (const name of await loadImages(opts.input)) process.stdout.write(`Loaded image: ${name}\n`);
    });

  program.command('images')
    .description('list stored images')
    .action(async () => {
      const { listImages } = await import('./image-store.js');
      const rows = listImages().map((i) => {
        const at = i.name.lastIndexOf(':');
        const [repo, tag] = i.name.startsWith('sha256:') || at === -1 ? ['<none>', '<none>'] : [i.name.slice(0, at), i.name.slice(at + 1)];
        return [repo, tag, i.id.replace(/^sha256:/, '').slice(0, 12), i.created?.slice(0, 19).replace('T', ' ') ?? '', humanSize(i.size)];
      });
      printTable([['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'], ...rows]);
    });

  program.command('cleanup')
    .description('remove what calf left behind: container directories and the mounts under them')
    .option('-f, --force', 'also remove containers whose calf process is still running')
    .action(async (opts: { force?: boolean }) => {
      const { cleanup } = await import('./cleanup.js');
      for (const line of cleanup({ force: opts.force ?? false })) process.stdout.write(`${line}\n`);
    });

  program.parseAsync(process.argv).catch((err: unknown) => {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) process.exit(0);
      process.exit(EXIT_CALF_ERROR);
    }
    fail(errorMessage(err));
  });
}

function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB'];
  let n = bytes;
  let u = 0;
  while (n >= 1000 && u < units.length - 1) { n /= 1000; u++; }
  return `${n.toFixed(n < 10 && u ? 2 : n < 100 && u ? 1 : 0)}${units[u]}`;
}

function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const row of rows) process.stdout.write(`${row.map((cell, c) => cell.padEnd(widths[c]!)).join('   ').trimEnd()}\n`);
}
