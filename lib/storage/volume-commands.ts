/**
 * `calf volume create|ls|inspect|rm`, which level 14 adds to calf's command line, the way
 * level 08 adds `calf network`. As `docker volume` does, they exit 1 on failure.
 * @module
 */
import type { Command } from 'commander';
import { CalfError, exitingOne } from '../core/errors.js';
import { printTable } from '../core/table.js';
import { createVolume, findVolume, listVolumes, removeVolume, type VolumeUsers } from './volumes.js';

/**
 * The volume commands, given who uses a volume (lib/runtime knows the containers, lib/storage
 * does not): `calf volume rm` refuses a volume a container uses.
 */
export function volumeCommands(users: () => VolumeUsers): (program: Command) => void {
  return (program) => {
    const volume = program.command('volume').description('manage volumes: directories under the calf root that outlive containers');
    volume.command('create')
      .description('create a volume (a name it has already: nothing to do)')
      .argument('[name]', 'volume name (default: 64 random hex digits)')
      .action(exitingOne((name?: string) => {
        process.stdout.write(`${createVolume(name).volume.Name}\n`);
      }));
    volume.command('ls')
      .description('list volumes')
      .option('-q, --quiet', 'only the names')
      .action(exitingOne((opts: { quiet?: boolean }) => {
        const volumes = listVolumes();
        if (opts.quiet) for (const v of volumes) process.stdout.write(`${v.Name}\n`);
        else printTable([['DRIVER', 'VOLUME NAME'], ...volumes.map((v) => [v.Driver, v.Name])]);
      }));
    volume.command('inspect')
      .description('show volumes as JSON')
      .argument('<name...>', 'volume names')
      .action(exitingOne((names: string[]) => {
        const found = names.map((name) => findVolume(name) ?? name);
        const missing = found.filter((v) => typeof v === 'string');
        if (missing.length) throw new CalfError(`no such volume: ${missing[0]}`);
        process.stdout.write(`${JSON.stringify(found, null, 4)}\n`);
      }));
    volume.command('rm')
      .description('remove volumes, and what they hold; not one a container uses')
      .argument('<name...>', 'volume names')
      .action(exitingOne((names: string[]) => {
        const using = users();
        for (const name of names) {
          removeVolume(name, using);
          process.stdout.write(`${name}\n`);
        }
      }));
  };
}
