/**
 * `npm run slides`: renders every deck in slides/ (Marp Markdown) to one self-contained HTML file
 * each in build/slides/, with an index page. `npm run slides -- --watch` renders again on every
 * change under slides/. Marp CLI is a pinned dev dependency: nothing is fetched at run time.
 *
 * Self-contained: the SVG diagrams a deck uses (`![…](img/NAME.svg)`, relative to slides/) are
 * inlined as data: URLs, so one HTML file can be mailed or opened from a USB stick. The Markdown
 * keeps the relative paths, so the decks read fine on GitHub too.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { marpCli } from '@marp-team/marp-cli';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const slidesDir = path.join(repo, 'slides');
export const defaultOut = path.join(repo, 'build/slides');

/** A rendered deck. */
export interface Rendered {
  /** the Markdown source */
  deck: string;
  /** the HTML file */
  html: string;
  title: string;
}

/** The decks, in teaching order: prep.md first, then NN-name.md by level. */
export function deckFiles(dir = slidesDir): string[] {
  return fs.readdirSync(dir)
    .filter((f) => f.endsWith('.md') && f !== 'README.md')
    .sort((a, b) => (a === 'prep.md' ? -1 : b === 'prep.md' ? 1 : a.localeCompare(b)))
    .map((f) => path.join(dir, f));
}

/** The deck's `title:` front-matter, or its first heading. */
function titleOf(markdown: string, fallback: string): string {
  const front = /^---\n([\s\S]*?)\n---/.exec(markdown)?.[1] ?? '';
  const title = /^title:\s*"?(.*?)"?\s*$/m.exec(front)?.[1] ?? /^#\s+(.*)$/m.exec(markdown)?.[1];
  return title?.trim() || fallback;
}

const IMAGE = /(["'(])((?:\.\/)?img\/[\w.-]+\.svg)(?=["')])/g;

/** Replace the deck's relative img/*.svg references with data: URLs (a missing file stays as is: the browser check reports it). */
function inlineImages(html: string, deckDir: string): string {
  return html.replace(IMAGE, (all, quote: string, ref: string) => {
    const file = path.join(deckDir, ref);
    if (!fs.existsSync(file)) return all;
    return `${quote}data:image/svg+xml;base64,${fs.readFileSync(file).toString('base64')}`;
  });
}

/**
 * Render `decks` (Markdown files) into `out`, plus `out/index.html`. Throws when Marp fails;
 * returns what it rendered.
 */
export async function renderDecks(decks: readonly string[] = deckFiles(), out = defaultOut): Promise<Rendered[]> {
  fs.mkdirSync(out, { recursive: true });
  const rendered: Rendered[] = [];
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'slides-render-'));
  try {
    for (const deck of decks) {
      const name = path.basename(deck, '.md');
      const raw = path.join(scratch, `${name}.html`);
      const code = await quietly(() => marpCli([deck, '--output', raw, '--html', '--theme-set', path.join(slidesDir, 'theme')]));
      if (code !== 0 || !fs.existsSync(raw)) throw new Error(`marp failed to render ${path.relative(repo, deck)} (exit ${code})`);
      const html = path.join(out, `${name}.html`);
      // Links into the API site are written relative to slides/ (../docs/api/…, right on GitHub): point them at the same files from `out`.
      const api = path.relative(out, path.join(repo, 'docs/api')).split(path.sep).join('/');
      const page = inlineImages(fs.readFileSync(raw, 'utf8'), path.dirname(deck)).replaceAll('href="../docs/api/', `href="${api}/`);
      fs.writeFileSync(html, page);
      rendered.push({ deck, html, title: titleOf(fs.readFileSync(deck, 'utf8'), name) });
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  writeIndex(rendered, out);
  return rendered;
}

/** Marp CLI logs every file it converts on stderr (it has no quiet flag): keep its lines unless it fails. */
async function quietly(render: () => Promise<number>): Promise<number> {
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => (lines.push(String(chunk)), true)) as typeof process.stderr.write;
  try {
    const code = await render();
    if (code !== 0) write(lines.join(''));
    return code;
  } catch (err) {
    write(lines.join(''));
    throw err;
  } finally {
    process.stderr.write = write;
  }
}

const escape = (s: string) => s.replace(/[&<>"]/g, (c) => `&${({ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot' } as const)[c as '&']};`);

function writeIndex(rendered: readonly Rendered[], out: string): void {
  const api = path.relative(out, path.join(repo, 'docs/api/index.html'));
  const items = rendered.map((r) => `<li><a href="${escape(path.basename(r.html))}">${escape(r.title)}</a> <small>(${escape(path.relative(repo, r.deck))})</small></li>`).join('\n');
  fs.writeFileSync(path.join(out, 'index.html'), `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>calf — slides</title>
<style>body{font:18px/1.5 system-ui,sans-serif;max-width:44em;margin:3em auto;padding:0 1em}small{color:#666}</style></head>
<body><h1>calf — slides</h1>
<p>One deck per level, in teaching order. Arrow keys move, <kbd>f</kbd> full screen, <kbd>p</kbd> presenter view.</p>
<ol>
${items}
</ol>
<p>The lib API (syscall wrappers, image store): <a href="${escape(api)}">docs/api</a> (run <code>npm run docs</code> first).
The instructor guide: <code>docs/instructor.md</code>.</p>
</body></html>
`);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const watch = args.includes('--watch');
  const unknown = args.filter((a) => a !== '--watch');
  if (unknown.length) {
    console.error(`unknown arguments: ${unknown.join(' ')}\nusage: npm run slides [-- --watch]`);
    process.exit(2);
  }
  const once = async (): Promise<boolean> => {
    const started = Date.now();
    try {
      const rendered = await renderDecks();
      console.log(`slides: ${rendered.length} decks → ${path.relative(process.cwd(), defaultOut) || '.'}/index.html (${Date.now() - started} ms)`);
      return true;
    } catch (err) {
      console.error(`slides: ${(err as Error).message}`);
      return false;
    }
  };
  const ok = await once();
  if (!watch) process.exit(ok ? 0 : 1);
  console.log('slides: watching slides/ (Ctrl-C stops)');
  let timer: NodeJS.Timeout | undefined;
  // One watcher per directory: Node 20's recursive fs.watch on Linux misses changes to existing files.
  const dirs = [slidesDir, ...fs.readdirSync(slidesDir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => path.join(slidesDir, d.name))];
  for (const dir of dirs) {
    fs.watch(dir, () => {
      clearTimeout(timer);
      timer = setTimeout(() => void once(), 200);
    });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
