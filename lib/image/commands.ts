/**
 * `calf load`, `calf images`, `calf rmi` and `calf image prune`: the store's commands, added to
 * calf's command line the way `calf network` is (lib/network/commands.ts). Each loads its
 * module when it runs: `calf run` and the init stage start faster without them.
 * @module
 */
import type { Command } from 'commander';
import { printTable } from '../core/table.js';

/** Which container (its short id) runs image `imageId`, if one does: `calf rmi` refuses then. */
export type ImageUser = (imageId: string) => string | undefined;

/** The image commands, given who uses an image (lib/runtime knows the containers; lib/image does not). */
export function imageCommands(inUse: () => Promise<ImageUser>): (program: Command) => void {
  return (program) => {
    program.command('load')
      .description('load images from an OCI layout, an oci-archive or a docker-archive')
      .requiredOption('-i, --input <path>', 'archive file or layout directory')
      .action(async (opts: { input: string }) => {
        const { loadImages } = await import('./load.js');
        for (const name of await loadImages(opts.input)) process.stdout.write(`Loaded image: ${name}\n`);
      });

    program.command('images')
      .description('list stored images')
      .action(async () => {
        const { listImages } = await import('./store.js');
        const { shortId } = await import('./digest.js');
        const rows = listImages().map((i) => {
          const at = i.name.lastIndexOf(':');
          const [repo, tag] = i.name.startsWith('sha256:') || at === -1 ? ['<none>', '<none>'] : [i.name.slice(0, at), i.name.slice(at + 1)];
          return [repo, tag, shortId(i.id), i.created?.slice(0, 19).replace('T', ' ') ?? '', humanSize(i.size)];
        });
        printTable([['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'], ...rows]);
        await noteLayers(); // level 04: the layer graph
      });

    // Level 04 (overlay): the layer graph's commands.
    program.command('rmi')
      .description('remove images by name or id, with the blobs and unpacked layers no other image uses')
      .usage('IMAGE [IMAGE...]')
      .argument('<images...>', 'image names or ids')
      .action(async (refs: string[]) => {
        const { removeImage } = await import('./remove.js');
        const user = await inUse();
        for (const ref of refs) for (const line of removeImage(ref, user)) process.stdout.write(`${line}\n`);
      });
    program.command('image')
      .description('manage images')
      .command('prune')
      .description('remove the blobs and unpacked layers that no image uses')
      .action(async () => {
        const { pruneStore } = await import('./remove.js');
        for (const diffId of pruneStore()) process.stdout.write(`Deleted: ${diffId}\n`);
      });
  };
}

/** Level 04: say on stderr (stdout stays `docker images`' table) how much the unpacked layers take, and what no image uses. */
async function noteLayers(): Promise<void> {
  const { layerUsage } = await import('./remove.js');
  const usage = layerUsage();
  if (usage.count === 0) return;
  const unused = usage.unused.count ? `; ${usage.unused.count} (${humanSize(usage.unused.size)}) used by no image: calf image prune removes them` : '';
  process.stderr.write(`unpacked layers: ${usage.count}, ${humanSize(usage.size)}${unused}\n`);
}

/** Docker's sizes: 1000-based, three significant digits. */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB'];
  let n = bytes;
  let u = 0;
  while (n >= 1000 && u < units.length - 1) { n /= 1000; u++; }
  return `${n.toFixed(n < 10 && u ? 2 : n < 100 && u ? 1 : 0)}${units[u]}`;
}
