/** Files the tests put on the host, to see whether a container can reach them. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

/** A file in the host's /tmp with random content; `remove()` deletes it. */
export function hostCanary(): { path: string; content: string; remove(): void } {
  const content = `calf canary ${randomBytes(8).toString('hex')}`;
  const file = path.join(os.tmpdir(), `calf-canary-${randomBytes(6).toString('hex')}`);
  fs.writeFileSync(file, `${content}\n`);
  return { path: file, content, remove: () => fs.rmSync(file, { force: true }) };
}

/** A random token for names and values nothing could have hard-coded. */
export function token(): string {
  return randomBytes(6).toString('hex');
}
