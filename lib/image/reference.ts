/**
 * Image references as Docker reads them: `alpine` is `docker.io/library/alpine:latest`,
 * `localhost:5000/tools:1.0` names its registry, `alpine@sha256:…` pins one manifest.
 *
 * ```
 *   [registry/]repository[:tag][@sha256:digest]
 *    │          │ path components of lower-case letters and digits, joined by . _ __ or -
 *    │          └ on docker.io, a one-component name is an official image: library/NAME
 *    └ only if the first component looks like a host: a dot, a :port, or "localhost"
 * ```
 * @see https://github.com/distribution/reference/blob/main/reference.go
 * @module
 */
import { CalfError } from '../core/errors.js';
import { normalizeName } from './store.js';

/** One path component of a repository name. */
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const REPOSITORY = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG = /^[\w][\w.-]{0,127}$/;
/** A whole reference, as `docker tag` checks its target. */
const REFERENCE = new RegExp(`^(?:[a-zA-Z0-9.-]+(?::\\d+)?/)?${COMPONENT}(?:/${COMPONENT})*(?::[\\w][\\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$`);

/** Where an image lives: `docker.io` + `library/busybox` + `latest`, or + a digest that pins it. */
export interface Reference {
  /** `docker.io`, `ghcr.io`, `localhost:5000` */
  registry: string;
  /** `library/busybox`, `calf/tools` */
  repository: string;
  /** `latest` when neither a tag nor a digest was given */
  tag?: string;
  /** `sha256:…`: this exact manifest, whatever the tags say now */
  digest?: string;
  /** no tag was given: Docker then says "Using default tag: latest" */
  defaultTag: boolean;
}

/** Parse a reference as Docker does (see the module's diagram). */
export function parseReference(text: string): Reference {
  const [name, digest] = text.split('@') as [string, string | undefined];
  if (digest !== undefined && !/^sha256:[0-9a-f]{64}$/.test(digest)) throw new CalfError(`invalid reference format: "${text}" (a digest is sha256: and 64 hex digits)`);
  const slash = name.indexOf('/');
  const first = slash === -1 ? '' : name.slice(0, slash);
  const hasRegistry = first.includes('.') || first.includes(':') || first === 'localhost';
  const registry = hasRegistry ? first : 'docker.io';
  let path = hasRegistry ? name.slice(slash + 1) : name;
  let tag: string | undefined;
  const colon = path.lastIndexOf(':');
  if (colon !== -1) [path, tag] = [path.slice(0, colon), path.slice(colon + 1)];
  if (registry === 'docker.io' && !path.includes('/')) path = `library/${path}`;
  if (!REPOSITORY.test(path)) {
    throw new CalfError(`invalid reference format: "${text}"${path !== path.toLowerCase() ? ' (repository name must be lowercase)' : ''}`);
  }
  if (tag !== undefined && !TAG.test(tag)) throw new CalfError(`invalid reference format: "${text}" (bad tag "${tag}")`);
  const defaultTag = tag === undefined && digest === undefined;
  return { registry, repository: path, ...(digest ? { digest } : { tag: tag ?? 'latest' }), defaultTag };
}

/** The whole name, as `docker pull` ends with it: `docker.io/library/busybox:latest`. */
export function fullName(ref: Reference): string {
  return `${ref.registry}/${ref.repository}${ref.digest ? `@${ref.digest}` : `:${ref.tag}`}`;
}

/** The name the store (and `calf images`) shows: `busybox:latest`, `localhost:5000/tools@sha256:…`. */
export function storeName(ref: Reference): string {
  return normalizeName(fullName(ref));
}

/** Throw Docker's one line unless `ref` is a valid image reference. */
export function checkReference(ref: string, exitCode?: number): void {
  if (REFERENCE.test(ref)) return;
  const why = ref !== ref.toLowerCase() && REFERENCE.test(ref.toLowerCase()) ? 'repository name must be lowercase' : `"${ref}"`;
  throw new CalfError(`invalid reference format: ${why}`, exitCode === undefined ? undefined : { exitCode });
}
