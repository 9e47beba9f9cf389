/**
 * Where the fuzzer works, and the canary tree around it. Every case writes only under `target`,
 * `root` (a calf root), `input` and `tmp`; everything else under the sandbox is the canary: files
 * beside and above the target, and an `outside` directory that hostile symlinks and hard links
 * aim at. Its fingerprint must not change, whatever a case did.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Sandbox {
  dir: string;
  /** where layers are unpacked and archives extracted */
  target: string;
  /** a calf root: images loaded, layers unpacked into the graph */
  root: string;
  /** where a case writes its input (a layer, a layout, an archive) */
  input: string;
  /** TMPDIR for calf while fuzzing: `calf load` extracts archives there, and must leave nothing */
  tmp: string;
  /** the directory hostile links point at */
  outside: string;
  /** a token in every canary file: nothing calf stores may contain it */
  token: string;
}

/** Directories of the sandbox that cases may write into (their contents, never themselves). */
const SCRATCH = ['work/target', 'work/root', 'work/input', 'tmp'];

/** Make a sandbox with its canary tree under `parent` (the system temp directory by default). */
export function makeSandbox(parent = os.tmpdir()): Sandbox {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(parent, 'calf-fuzz-')));
  // The same in every sandbox: a case that links at a canary file (its digest in a manifest) is the same case each time.
  const token = 'calf-fuzz-canary-5eed';
  const put = (rel: string, content: string, mode = 0o644): void => {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), `${token} ${rel}\n${content}`, { mode });
  };
  put('above.txt', 'a file above the target');
  put('above-dir/file', 'a file in a directory above the target');
  put('outside/secret', 'what a hard link or a symlink from a layer must never reach', 0o600);
  put('outside/passwd', 'root:x:0:0::/root:/bin/sh\n');
  put('outside/sub/deep', 'deeper');
  put('work/beside.txt', 'a file beside the target');
  put('work/beside-dir/file', 'a file in a directory beside the target');
  fs.symlinkSync(path.join(dir, 'outside'), path.join(dir, 'outside-link'));
  fs.symlinkSync('../outside', path.join(dir, 'work/beside-link'));
  for (const rel of SCRATCH) fs.mkdirSync(path.join(dir, rel), { recursive: true });
  return {
    dir,
    target: path.join(dir, 'work/target'),
    root: path.join(dir, 'work/root'),
    input: path.join(dir, 'work/input'),
    tmp: path.join(dir, 'tmp'),
    outside: path.join(dir, 'outside'),
    token,
  };
}

/**
 * Everything a write, link, chmod or chown could change in the canary tree, one line per path:
 * type, mode, owner, size, link count, device, mtime, ctime, and the content or link target.
 * (A hard link made to a canary file and removed again still shows: its ctime moved.)
 */
export function canaryPrint(box: Sandbox): Map<string, string> {
  const print = new Map<string, string>();
  const skip = new Set(SCRATCH.map((rel) => path.join(box.dir, rel)));
  const walk = (dir: string): void => {
    for (const name of fs.readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      const st = fs.lstatSync(p, { bigint: true });
      const rel = path.relative(box.dir, p);
      if (skip.has(p)) {
        // A scratch directory must stay where it is, a directory; its mode, owner and contents are the cases'.
        print.set(rel, `scratch ${st.isDirectory() ? 'directory' : 'NOT A DIRECTORY'} ${st.ino}`);
        continue;
      }
      let line = `${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.nlink} ${st.rdev} ${st.size} ${st.mtimeNs} ${st.ctimeNs}`;
      if (st.isFile()) line += ` ${fs.readFileSync(p).toString('base64')}`;
      else if (st.isSymbolicLink()) line += ` -> ${fs.readlinkSync(p)}`;
      print.set(rel, line);
      if (st.isDirectory()) walk(p);
    }
  };
  print.set('.', (() => {
    const st = fs.lstatSync(box.dir, { bigint: true });
    return `${st.mode.toString(8)} ${st.uid}:${st.gid}`;
  })());
  walk(box.dir);
  return print;
}

/** What differs between two canary prints: `path: before → after`, one per path. */
export function canaryDiff(before: Map<string, string>, after: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [p, line] of before) {
    const now = after.get(p);
    if (now === undefined) out.push(`${p} is gone`);
    else if (now !== line) out.push(`${p} changed`);
  }
  for (const p of after.keys()) if (!before.has(p)) out.push(`${p} appeared`);
  return out;
}

/** Empty a scratch directory (as root, read-only modes don't matter); the directory itself stays. */
export function emptyDir(dir: string): void {
  for (const name of fs.readdirSync(dir)) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
}

/** Remove the sandbox. */
export function removeSandbox(box: Sandbox): void {
  fs.rmSync(box.dir, { recursive: true, force: true });
}
