/**
 * `calf network create|ls|rm`, which level 08 adds to calf's command line. As `docker network`
 * does, they exit 1 on failure (`docker run` exits 125).
 * @module
 */
import type { Command } from 'commander';
import { exitingOne } from '../core/errors.js';
import { printTable } from '../core/table.js';
import { createNetwork, listNetworks, pruneNetworks, removeNetwork } from './networks.js';

/** Add `calf network …` to the program: pass it in `main({ commands: [networkCommand] })`. */
export function networkCommand(program: Command): void {
  const network = program.command('network').description('manage networks: a bridge and an address pool each');
  network.command('create')
    .description('create a network (a bridge with an address pool)')
    .argument('<name>', 'network name')
    .option('--subnet <cidr>', 'the address pool, e.g. 10.89.7.0/24 (default: a free /24 of 10.89.0.0/16)')
    .action(exitingOne((name: string, opts: { subnet?: string }) => {
      process.stdout.write(`${createNetwork(name, opts.subnet).id}\n`);
    }));
  network.command('ls')
    .description('list networks')
    .action(exitingOne(() => {
      const rows = listNetworks().map((n) => [n.id.slice(0, 12), n.name, 'bridge', n.subnet, n.gateway, n.bridge]);
      printTable([['NETWORK ID', 'NAME', 'DRIVER', 'SUBNET', 'GATEWAY', 'BRIDGE'], ...rows]);
    }));
  network.command('prune')
    .description('remove all networks no container uses (of calf0, only its bridge)')
    .action(exitingOne(() => {
      const pruned = pruneNetworks();
      if (pruned.length) process.stdout.write(`Deleted Networks:\n${pruned.map((n) => `${n}\n`).join('')}`);
    }));
  network.command('rm')
    .description('remove networks')
    .argument('<name...>', 'network names')
    .action(exitingOne((names: string[]) => {
      for (const name of names) {
        removeNetwork(name);
        process.stdout.write(`${name}\n`);
      }
    }));
}
