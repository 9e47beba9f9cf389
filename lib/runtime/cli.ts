/**
 * calf's command line, shared by every level: `run`, the image commands (lib/image/commands.ts),
 * `cleanup` and the hidden `init` stage (and, from level 15, the hidden `monitor` stage). A level
 * file supplies only its lesson — the parent side (`run`) and the container side (`init`) — and
 * calls {@link main}.
 *
 * Exit codes are Docker's: 125 for calf's own errors (bad flag, unknown image, a failed
 * syscall before the command starts), 126 command cannot be executed, 127 command not found,
 * otherwise the command's own status, 128+N when a signal N killed it.
 * @module
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import { CalfError, EXIT_CALF_ERROR, EXIT_ERROR, exitCodeOf, messageOf } from '../core/errors.js';
import { fail } from '../core/fail.js';
import { runInitStage, runMonitorStage, type MonitorMode } from './stage.js';
import { runtimeMain, type RuntimeCommands } from './oci.js';
import { prepareInitEntry } from './bundle.js';
import { imageCommands, type ImageUser } from '../image/commands.js';
import { mark } from '../core/timing.js';

/**
 * A `calf run` option a level adds (`--hostname`, `--memory`…): its spelling as Docker's, a help
 * line, and how its text becomes the value `run()` gets. A `parse` that throws is a bad value:
 * calf says so in one line and exits 125, as `docker run --memory 12XB` does.
 */
export interface Flag<T> {
  /** commander's spelling: `--hostname <name>`, `-p, --publish <ports>`, `--privileged` */
  spec: string;
  description: string;
  /** the value from its text; `previous` is the value so far, for a flag given more than once */
  parse?(text: string, previous: T | undefined): T; // a method: its parameters are bivariant, so any Flag<T> is a Flag<unknown>
}

/** Declare a level's flag; `T` is what `run()` gets (a string unless `parse` says otherwise). */
export function flag<T = string>(spec: string, description: string, parse?: (text: string, previous: T | undefined) => T): Flag<T> {
  return parse ? { spec, description, parse } : { spec, description };
}

/** The flags a level declares, by the name `run()` reads them under. */
export type Flags = Record<string, Flag<unknown>>;

/** The values of a level's flags: each one is undefined when it was not given. */
export type FlagValues<F extends Flags> = { [K in keyof F]?: F[K] extends Flag<infer T> ? T : never };

/** What `calf run` was asked to do, parsed and checked. */
export interface RunOptions<F extends Flags = Flags> {
  /** the image reference as typed (`busybox`, `busybox:latest`, an id prefix) */
  image: string;
  /** COMMAND and ARGs; empty when the image's default command should run */
  command: string[];
  /** `KEY=VALUE` pairs from `--env-file` and `-e`, in order (later ones win) */
  env: string[];
  /** the level's own flags, typed as it declared them */
  flags: FlagValues<F>;
  /** `-t`: a pseudo-terminal for the command (level 15; earlier levels ignore it) */
  tty: boolean;
  /** `-i`: keep stdin open (stdin is always passed through to an attached container) */
  interactive: boolean;
  /** `--rm`: remove the container when it stops (earlier levels always do; from level 15 it is kept without it) */
  rm: boolean;
}

/** What a container's start needs of `calf run`'s options, kept in its record for `calf start` (level 15). */
export type StartOptions<F extends Flags = Flags> = Pick<RunOptions<F>, 'flags' | 'tty' | 'interactive' | 'rm'>;
/** What `calf exec` was asked to do, parsed and checked (level 16). */
export interface ExecOptions {
  /** the container as typed: its id, a prefix of it, or (once containers have names) its name */
  container: string;
  /** COMMAND and ARGs: never empty */
  command: string[];
  /** `KEY=VALUE` pairs from `--env-file` and `-e`, in order: they go over the container's environment */
  env: string[];
  /** -i: the command reads calf's stdin; without it, /dev/null, as under `docker exec` */
  interactive: boolean;
  /** -t: the command gets a pseudo-terminal of the container's own */
  tty: boolean;
  /** -u: who it runs as instead of the container's user (`name|uid[:group|gid]`) */
  user?: string | undefined;
  /** -w: its working directory instead of the container's, a path in the container */
  workdir?: string | undefined;
}

/**
 * `calf exec [OPTIONS] CONTAINER COMMAND [ARG...]`, Docker's flags, for a level that gives the
 * parent side (`exec`, which returns calf's exit code): `commands: [containerExecCommand(exec)]`.
 */
export function containerExecCommand(exec: (options: ExecOptions) => Promise<number>): (program: Command) => void {
  return (program) => {
    program.command('exec')
      .description('run a command in a running container')
      .usage('[OPTIONS] CONTAINER COMMAND [ARG...]')
      .argument('<container>', 'container id (or a unique prefix of it)')
      .argument('<command...>', 'command and its arguments')
      .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable)', collect)
      .option('--env-file <file>', 'read environment variables from a file (repeatable)', collect)
      .option('-i, --interactive', 'keep stdin open: the command reads calf\'s')
      .option('-t, --tty', 'allocate a pseudo-terminal')
      .option('-u, --user <name|uid[:group|gid]>', 'who the command runs as (default: the container\'s user)')
      .option('-w, --workdir <dir>', 'working directory inside the container (default: the container\'s)')
      .passThroughOptions()
      .action(async (container: string, command: string[], opts: Record<string, unknown>) => {
        const env = envOf(opts);
        if (opts.tty === true && opts.interactive === true && !process.stdin.isTTY) {
          throw new CalfError('the input device is not a TTY', { exitCode: EXIT_ERROR }); // -it: raw keys need a terminal to come from
        }
        await prepareInitEntry(); // the exec stage runs the same bundle as init
        process.exitCode = await exec({
          container, command, env, interactive: opts.interactive === true, tty: opts.tty === true,
          user: opts.user as string | undefined, workdir: opts.workdir as string | undefined,
        });
      });
  };
}

/** A level's two stages, which it gives to {@link main}. */
export interface Stages<Config, F extends Flags> {
  /** Parent side: runs on the host, starts the container, returns the exit code for calf. */
  run(options: RunOptions<F>): Promise<number>;
  /** Container side: the re-executed stage; ends in `execve`, so it never returns. */
  init(config: Config): never;
  /** The `calf run` flags this level adds, e.g. `{ hostname: flag('--hostname <name>', …) }`. */
  flags?: F;
  /** Commands this level adds beside `run` (level 08: `calf network`), each adding itself to the program. */
  commands?: ((program: Command) => void)[];
  /**
   * The container's monitor, run as the hidden `monitor` stage (`calf monitor DIR run|start`, level
   * 15): the parent of the container's first process until it ends; returns its exit code.
   */
  monitor?(dir: string, mode: MonitorMode): Promise<number>;
  /**
   * Re-executed stages beside `init`, by the hidden command that starts one (level 16:
   * `exec-stage`): each gets its config as JSON, one argument, and is run as init is.
   */
  stages?: Record<string, (config: never) => never>;
  /** calf-runtime's subcommands (level 17): `calf runtime ARGS…`, runc's command line (bin/calf-runtime.cjs). */
  runtime?: RuntimeCommands;
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

/** `--env-file`'s variables, then `-e`'s (which win, as Docker's), as `KEY=VALUE` strings. */
function envOf(opts: Record<string, unknown>): string[] {
  return [
    ...((opts.envFile as string[] | undefined) ?? []).flatMap(readEnvFile),
    ...((opts.env as string[] | undefined) ?? []).flatMap(envArg),
  ];
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/**
 * Parse the command line and run the level. Every failure ends in a one-line message on stderr
 * and a Docker exit code; nothing of calf's goes to stdout during `run`.
 */
export function main<Config, F extends Flags = Record<never, never>>(stages: Stages<Config, F>): void {
  mark('main'); // CALF_TIMINGS: the modules are loaded (bench/breakdown.ts)
  // The init stage is on every container's critical path: it reads its one argument itself,
  // without loading commander (nor anything else the other commands need).
  const hidden = process.argv[2];
  if (hidden === 'init' || (hidden !== undefined && Object.hasOwn(stages.stages ?? {}, hidden))) {
    if (process.argv.length !== 4) fail(`${hidden}: expects exactly one argument, the config as JSON`);
    if (hidden === 'init') runInitStage(stages.init, process.argv[3]!);
    runInitStage(stages.stages![hidden]!, process.argv[3]!, `calf:[${hidden.replace(/-stage$/, '')}]`);
  }
  reportUncaught();
  if (process.argv[2] === 'runtime' && stages.runtime) { // calf-runtime: runc's command line, not Docker's
    const commands = stages.runtime;
    void runtimeMain(commands, process.argv.slice(3), prepareInitEntry).then(() => process.exit()); // process.exitCode: exec's command's
    return;
  }
  // The monitor too: it stands between `calf run -d` and "running" (level 15).
  if (process.argv[2] === 'monitor') {
    const [dir, mode] = process.argv.slice(3);
    if (!stages.monitor || !dir || (mode !== 'run' && mode !== 'start')) fail('monitor: expects a container directory, and run or start');
    void runMonitorStage(stages.monitor, dir, mode);
    return;
  }
  commandLine(stages).catch((err: unknown) => fail(messageOf(err), exitCodeOf(err)));
}

/**
 * An error nothing catches is one line too. Two places throw where no `catch` of ours can see:
 * a callback (a socket's, a timer's), and an exit handler (`cgroup.remove()` when the cgroup
 * stays busy). The first ends calf with 125, running its exit handlers. In the second, calf is
 * ending already: its exit code stays as it was, and the handlers registered after the one
 * that threw don't run (Node stops there); `calf cleanup` removes what they would have.
 */
function reportUncaught(): void {
  let exiting = false;
  process.on('exit', () => { exiting = true; }); // first: registered before any of the level's
  process.on('uncaughtException', (err) => {
    try {
      fs.writeSync(2, `calf: ${messageOf(err)}${exiting ? '; `calf cleanup` removes what is left' : ''}\n`);
    } catch {
      // stderr is closed: nothing left to tell anyone
    }
    if (!exiting) process.exit(exitCodeOf(err));
  });
}

async function commandLine<Config, F extends Flags>(stages: Stages<Config, F>): Promise<void> {
  const { Command, CommanderError, Option } = await import('commander');
  const program = new Command('calf')
    .description('a Docker-like container runtime, built one level at a time')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ outputError: (text) => fs.writeSync(2, `calf: ${text.replace(/^error: /, '')}`) });

  const levelFlags = Object.entries(stages.flags ?? {}).map(([name, f]) => {
    const option = new Option(f.spec, f.description);
    if (f.parse) option.argParser(f.parse);
    return { name, option };
  });
  const runCommand = program.command('run')
    .description('run a command in a new container')
    .usage('[OPTIONS] IMAGE [COMMAND] [ARG...]')
    .argument('<image>', 'image name or id')
    .argument('[command...]', 'command and its arguments (default: the image\'s Cmd)')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable)', collect)
    .option('--env-file <file>', 'read environment variables from a file (repeatable)', collect)
    .option('-i, --interactive', 'keep stdin open (an attached container always gets calf\'s stdin)')
    .option('-t, --tty', 'give the command a pseudo-terminal (level 15; before, the terminal is passed through)')
    .option('--rm', 'remove the container when it stops (before level 15 containers always are)')
    .passThroughOptions()
    .action(async (image: string, command: string[], opts: Record<string, unknown>) => {
      const env = envOf(opts);
      const flags = Object.fromEntries(levelFlags.map(({ name, option }) => [name, opts[option.attributeName()]])) as FlagValues<F>;
      await prepareInitEntry(); // esbuild's API is async, the level's spawn of the init stage is not
      const docker = { tty: opts.tty === true, interactive: opts.interactive === true, rm: opts.rm === true };
      mark('run');
      process.exitCode = await stages.run({ image, command, env, flags, ...docker });
    });
  for (const { option } of levelFlags) runCommand.addOption(option);

  imageCommands(runningImages, waiting)(program);
  for (const add of stages.commands ?? []) add(program);
  // `calf start` (level 15) spawns a monitor, which runs the level's bundle as run's init stage does
  program.hook('preAction', async (_, command) => {
    if (command.name() === 'start') await prepareInitEntry();
  });

  program.command('cleanup')
    .description('remove what calf left behind: container directories, the mounts under them, cgroups')
    .option('-f, --force', 'also remove containers whose calf process is still running')
    .action(async (opts: { force?: boolean }) => {
      const { cleanup } = await import('./cleanup.js');
      const report = cleanup({ force: opts.force ?? false });
      for (const line of report) process.stdout.write(`${line}\n`);
      if (report.some((line) => line.startsWith('could not remove'))) process.exitCode = 1; // the machine is not clean yet
    });

  await program.parseAsync(process.argv).catch((err: unknown) => {
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : EXIT_CALF_ERROR);
    throw err;
  });
}

/** Say on stderr that calf waits for the image store's lock (another calf pulls, loads or removes images). */
function waiting(what: string): void {
  process.stderr.write(`calf: ${what}\n`);
}

/** Level 04: which running container (its short id) uses an image, for `calf rmi`'s refusal. */
async function runningImages(): Promise<ImageUser> {
  const { listContainerDirs } = await import('./container.js');
  const { alive } = await import('../core/process.js');
  const running = listContainerDirs().filter((c) => c.owner !== undefined && alive(c.owner.pid, c.owner.startTime));
  return (id) => running.find((c) => c.state?.image?.id === id)?.state?.id.slice(0, 12);
}
