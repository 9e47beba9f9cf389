/**
 * `calf load`, `calf images`, `calf rmi` and `calf image prune`: the store's commands, added to
 * calf's command line the way `calf network` is (lib/network/commands.ts). Each loads its
 * module when it runs: `calf run` and the init stage start faster without them.
 * @module
 */
import type { Command } from 'commander';
import { printTable } from '../core/table.js';
import { CalfError, exitingOne } from '../core/errors.js';
import type { OnWait } from './lock.js';
import { pullOutput, type PullOutput } from './pull-progress.js';
import { tagReference } from './tag.js';

/** Which container (its short id) runs image `imageId`, if one does: `calf rmi` refuses then. */
export type ImageUser = (imageId: string) => string | undefined;

/** The image commands, given who uses an image (lib/runtime knows the containers; lib/image does not). */
export function imageCommands(inUse: () => Promise<ImageUser>, waiting?: OnWait): (program: Command) => void {
  return (program) => {
    program.command('load')
      .description('load images from an OCI layout, an oci-archive or a docker-archive')
      .requiredOption('-i, --input <path>', 'archive file or layout directory')
      .action(async (opts: { input: string }) => {
        const { loadImages } = await import('./load.js');
        for (const name of await loadImages(opts.input, undefined, waiting)) process.stdout.write(`Loaded image: ${name}\n`);
      });

    program.command('images')
      .description('list stored images')
      .option('--digests', 'show each image\'s digest: of the manifest (or index) its name points to, as pulled by name@digest')
      .action(async (opts: { digests?: boolean }) => {
        const { listImages } = await import('./store.js');
        const { shortId } = await import('./digest.js');
        const rows = listImages().map((i) => {
          const at = i.name.lastIndexOf(':');
          const [repo, tag] = i.name.startsWith('sha256:') || at === -1 ? ['<none>', '<none>'] : [i.name.slice(0, at), i.name.slice(at + 1)];
          // a name@sha256:… entry: its repository, no tag, and the digest it was pulled by
          const [r, t] = repo.includes('@') ? [repo.slice(0, repo.indexOf('@')), '<none>'] : [repo, tag];
          return [r, t, ...(opts.digests ? [i.digest] : []), shortId(i.id), i.created?.slice(0, 19).replace('T', ' ') ?? '', humanSize(i.size)];
        });
        printTable([['REPOSITORY', 'TAG', ...(opts.digests ? ['DIGEST'] : []), 'IMAGE ID', 'CREATED', 'SIZE'], ...rows]);
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
        for (const ref of refs) for (const line of removeImage(ref, user, undefined, waiting)) process.stdout.write(`${line}\n`);
      });
    program.command('image')
      .description('manage images')
      .command('prune')
      .description('remove the blobs and unpacked layers that no image uses')
      .action(async () => {
        const { pruneStore } = await import('./remove.js');
        for (const diffId of pruneStore(undefined, waiting)) process.stdout.write(`Deleted: ${diffId}\n`);
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

// ── Level 13 (pull): `calf pull [-q] IMAGE`, `calf tag`, and `calf run --pull`. The registry client
// is the level's lesson (its pull.ts), so `pull` is given to pullCommand rather than imported.

/** When `calf run` pulls its image: `missing` (Docker's default), `always`, or `never`. */
export type PullPolicy = 'missing' | 'always' | 'never';

/** `--pull`'s value, checked: a bad one is one line and exit 125, as `docker run --pull sometimes`. */
export function parsePullPolicy(text: string): PullPolicy {
  if (text === 'missing' || text === 'always' || text === 'never') return text;
  throw new CalfError(`invalid pull policy "${text}": it must be missing, always or never`);
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
