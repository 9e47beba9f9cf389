/**
 * `calf ps`, `logs`, `kill`, `wait`, `rm`, `inspect` and `commit` (level 15): Docker's commands on
 * containers that outlive `calf run`, added to calf's command line as `calf network` is. Policy
 * over the records the level's monitor keeps (lib/runtime/containers.ts); `calf start` and `calf
 * stop` are the level's own (its monitor.ts). As Docker's, they exit 1 on failure, after acting
 * on every container they could.
 * @module
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import { CalfError, messageOf } from '../core/errors.js';
import { printTable } from '../core/table.js';

/** Run `act` on each container named, as Docker does: an error is one line, the others go on; then exit 1 if any failed. */
export async function eachContainer(refs: string[], act: (found: import('./containers.js').Found, ref: string) => void | Promise<void>): Promise<void> {
  const { findContainer } = await import('./container.js');
  let failed: unknown;
  for (const ref of refs) {
    try {
      await act(findContainer(ref), ref);
    } catch (err) {
      if (failed !== undefined) fs.writeSync(2, `calf: ${messageOf(failed)}\n`);
      failed = err;
    }
  }
  if (failed !== undefined) throw failed instanceof CalfError ? failed : new CalfError(messageOf(failed), { exitCode: 1, cause: failed });
}

/** Add the container commands to the program: pass it in `main({ commands: [containerCommands] })`. */
export function containerCommands(program: Command): void {
  program.command('ps')
    .description('list containers (running ones; all with -a)')
    .option('-a, --all', 'show all containers, stopped ones too')
    .option('-q, --quiet', 'only their ids')
    .action(async (opts: { all?: boolean; quiet?: boolean }) => {
      const { psRows } = await import('./containers.js');
      const rows = psRows({ all: opts.all === true });
      if (opts.quiet) for (const row of rows.slice(1)) process.stdout.write(`${row[0]}\n`);
      else printTable(rows);
    });

  program.command('logs')
    .description('show what a container wrote on stdout and stderr (its log, Docker\'s json-file format)')
    .argument('<container>', 'id, id prefix or name')
    .option('-f, --follow', 'go on showing what it writes, until it stops')
    .option('--tail <n>', 'only the last n lines', (text: string) => {
      if (!/^\d+$/.test(text) && text !== 'all') throw new CalfError(`invalid --tail ${text}: a number of lines, or all`);
      return text === 'all' ? Infinity : Number(text);
    })
    .option('-t, --timestamps', 'show when each line was written')
    .action(async (ref: string, opts: { follow?: boolean; tail?: number; timestamps?: boolean }) => {
      await eachContainer([ref], async ({ dir }) => {
        const { showLog } = await import('./logs.js');
        showLog(dir, { follow: opts.follow === true, tail: opts.tail ?? Infinity, timestamps: opts.timestamps === true });
      });
    });

  program.command('kill')
    .description('send a signal to containers\' first process (default: SIGKILL)')
    .argument('<containers...>', 'ids, id prefixes or names')
    .option('-s, --signal <signal>', 'KILL, SIGTERM, 15…', 'KILL')
    .action(async (refs: string[], opts: { signal: string }) => {
      const { signalArg, signalContainer } = await import('./containers.js');
      const sig = signalArg(opts.signal);
      await eachContainer(refs, (found, ref) => {
        signalContainer(found, sig);
        process.stdout.write(`${ref}\n`);
      });
    });

  program.command('wait')
    .description('wait until containers stop, and print their exit codes')
    .argument('<containers...>', 'ids, id prefixes or names')
    .action(async (refs: string[]) => {
      const { waitForExit, exitCodeOf } = await import('./containers.js');
      await eachContainer(refs, ({ dir }) => {
        process.stdout.write(`${exitCodeOf(waitForExit(dir).state)}\n`);
      });
    });

  program.command('rm')
    .description('remove stopped containers (running ones too with -f): directory, writable layer, log, name')
    .argument('<containers...>', 'ids, id prefixes or names')
    .option('-f, --force', 'kill a running container first')
    .action(async (refs: string[], opts: { force?: boolean }) => {
      const { removeFound } = await import('./containers.js');
      await eachContainer(refs, (found, ref) => {
        removeFound(found, opts.force === true);
        process.stdout.write(`${ref}\n`);
      });
    });

  program.command('inspect')
    .description('show containers as JSON: State, Config, Mounts, NetworkSettings, and calf\'s config.json (OCIConfig)')
    .argument('<containers...>', 'ids, id prefixes or names')
    .action(async (refs: string[]) => {
      const { inspectContainer } = await import('./containers.js');
      const shown: Record<string, unknown>[] = [];
      try {
        await eachContainer(refs, (found) => { shown.push(inspectContainer(found)); });
      } finally {
        process.stdout.write(`${JSON.stringify(shown, null, 4)}\n`);
      }
    });

  program.command('commit')
    .description('make a new image of a container\'s image and its changes (its writable layer)')
    .argument('<container>', 'id, id prefix or name')
    .argument('<image>', 'the new image\'s name[:tag]')
    .action(async (ref: string, name: string) => {
      const { commitFound } = await import('./containers.js');
      await eachContainer([ref], async (found) => {
        process.stdout.write(`${await commitFound(found, name)}\n`);
      });
    });
}
