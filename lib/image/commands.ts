/**
 * The commands level 13 adds to calf's command line: `calf pull [-q] IMAGE`, `calf tag SOURCE
 * TARGET`, and the `--pull` policy of `calf run`. The registry client itself is the level's
 * lesson (its `pull.ts`), so `pull` is given to {@link pullCommand} rather than imported:
 * `main({ …, commands: [networkCommand, pullCommand(pull), tagCommand] })`.
 *
 * Like `docker pull` and `docker tag`, they exit 1 on failure (`docker run` exits 125).
 * @module
 */
import type { Command } from 'commander';
import { CalfError, messageOf } from '../runtime/errors.js';
import { pullOutput, type PullOutput } from './pull-progress.js';
import { tagReference } from './tag.js';

/** `docker pull`'s and `docker tag`'s exit code for any failure. */
const EXIT_PULL = 1;

/** When `calf run` pulls its image: `missing` (Docker's default), `always`, or `never`. */
export type PullPolicy = 'missing' | 'always' | 'never';

/** `--pull`'s value, checked: a bad one is one line and exit 125, as `docker run --pull sometimes`. */
export function parsePullPolicy(text: string): PullPolicy {
  if (text === 'missing' || text === 'always' || text === 'never') return text;
  throw new Error(`invalid pull policy "${text}": it must be missing, always or never`);
}

/** Give every error of a command `docker pull`'s exit code: 1. */
function exitingOne<A extends unknown[]>(action: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args) => {
    try {
      await action(...args);
    } catch (err) {
      throw new CalfError(messageOf(err), { exitCode: EXIT_PULL, cause: err });
    }
  };
}

/** `calf pull [-q] IMAGE`, running the level's `pull`. Pass `pullCommand(pull)` in `main({ commands })`. */
export function pullCommand(pull: (ref: string, out: PullOutput) => Promise<unknown>): (program: Command) => void {
  return (program) => {
    program.command('pull')
      .description('download an image from a registry (docker.io unless the name says another)')
      .usage('[-q] NAME[:TAG|@DIGEST]')
      .argument('<image>', 'busybox, busybox:1.36, localhost:5000/tools@sha256:…')
      .option('-q, --quiet', 'print only the image\'s full name')
      .action(exitingOne(async (image: string, opts: { quiet?: boolean }) => {
        await pull(image, pullOutput(process.stdout, { quiet: opts.quiet ?? false }));
      }));
  };
}

/** `calf tag SOURCE TARGET`: another name for an image. Pass `tagCommand` in `main({ commands })`. */
export function tagCommand(program: Command): void {
  program.command('tag')
    .description('give an image another name (moving that name from any image that had it)')
    .usage('SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]')
    .argument('<source>', 'an image name or id')
    .argument('<target>', 'the new name')
    .action(exitingOne((source: string, target: string) => {
      tagReference(source, target);
    }));
}
