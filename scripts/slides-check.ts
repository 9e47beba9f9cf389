/**
 * `npm run slides:check [-- DECK.md…]`: renders the decks (all of slides/ by default) and opens
 * each in a real headless Chromium (Debian's `chromium` package, driven by playwright-core; no
 * browser is downloaded). Every slide must render without overflow — content taller or wider
 * than the slide, a code block cut off on the right — and without a broken image. Screenshots of
 * each deck's first slides, and of every slide with a diagram, go to build/slides/screenshots/.
 *
 * Exit 0: every slide is fine. Exit 1: a problem, named by deck and slide. Exit 3: skipped, no
 * Chromium found (only outside CI: with CI=true a missing Chromium is a failure, exit 1).
 * Options: --out DIR (default build/slides), --first N (screenshots per deck, default 3).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { renderDecks, deckFiles, defaultOut, type Rendered } from './slides.js';

/** One thing wrong with one slide. */
export interface SlideProblem {
  deck: string;
  slide: number;
  heading: string;
  what: string;
}

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'];

/** The Chromium to drive: $CHROMIUM, else the first of the usual paths (Ubuntu's chromium-browser is a snap wrapper and may not start). */
export function findChromium(): string | undefined {
  const env = process.env.CHROMIUM;
  if (env) return fs.existsSync(env) ? env : undefined;
  return CANDIDATES.find((p) => fs.existsSync(p));
}

/** What the page reports for each slide (runs in the browser). */
interface Measured {
  slide: number;
  heading: string;
  problems: string[];
  hasImage: boolean;
}

/**
 * Measures every slide of a Marp HTML page (bespoke template: each slide is a `section` in an
 * `svg > foreignObject` of 1280×720). A string, so that no transpiler helper ends up in it.
 * Overflow: the section's scroll size beyond its client size (the theme's padding included, so
 * text running into the margin counts); a `pre` whose lines are wider than the box.
 */
const MEASURE = `(() => {
  const px = (n) => Math.round(n) + 'px';
  return [...document.querySelectorAll('svg[data-marpit-svg] > foreignObject > section')].map((section, i) => {
    const problems = [];
    if (section.scrollHeight > section.clientHeight + 1) {
      problems.push('content is ' + px(section.scrollHeight - section.clientHeight) + ' taller than the slide');
    }
    if (section.scrollWidth > section.clientWidth + 1) {
      problems.push('content is ' + px(section.scrollWidth - section.clientWidth) + ' wider than the slide');
    }
    section.querySelectorAll('pre').forEach((pre, k) => {
      if (pre.scrollWidth > pre.clientWidth + 1) {
        problems.push('code block ' + (k + 1) + ' is cut off on the right by ' + px(pre.scrollWidth - pre.clientWidth));
      }
    });
    const images = [...section.querySelectorAll('img')];
    for (const img of images) {
      if (!img.complete || img.naturalWidth === 0) {
        const src = img.getAttribute('src') || '';
        problems.push('broken image ' + (src.startsWith('data:') ? '(' + src.slice(0, 30) + '…)' : src));
      }
    }
    const h = section.querySelector('h1, h2, h3');
    return { slide: i + 1, heading: h ? h.textContent.trim() : '', problems, hasImage: images.length > 0 };
  });
})()`;

/**
 * Open every rendered deck in Chromium at 1280×720, measure every slide, and save screenshots of
 * the first `first` slides and of every slide with an image into `shots` (when given).
 */
export async function checkDecks(rendered: readonly Rendered[], options: { chromium: string; shots?: string; first?: number }): Promise<{ problems: SlideProblem[]; slides: number; screenshots: string[] }> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'slides-chromium-'));
  const problems: SlideProblem[] = [];
  const screenshots: string[] = [];
  let slides = 0;
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: options.chromium,
    headless: true,
    viewport: { width: 1280, height: 720 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    // Nothing may leave this machine: only file: URLs (and data: URLs inside them) load.
    await browser.route((url) => !/^(file|data):/.test(url.protocol), (route) => route.abort());
    if (options.shots) fs.mkdirSync(options.shots, { recursive: true });
    for (const r of rendered) {
      const page = await browser.newPage();
      const deck = path.relative(process.cwd(), r.deck);
      try {
        const url = pathToFileURL(r.html).href;
        await page.goto(url, { waitUntil: 'load' });
        await page.evaluate('document.fonts.ready');
        const measured = await page.evaluate(MEASURE) as Measured[];
        if (measured.length === 0) problems.push({ deck, slide: 0, heading: '', what: 'no slides found in the rendered HTML' });
        slides += measured.length;
        for (const m of measured) for (const what of m.problems) problems.push({ deck, slide: m.slide, heading: m.heading, what });
        if (options.shots) {
          const wanted = measured.filter((m) => m.slide <= (options.first ?? 3) || m.hasImage);
          for (const m of wanted) {
            // Marp's bespoke template shows one slide at a time, chosen by the URL's hash.
            await page.goto(`${url}#${m.slide}`, { waitUntil: 'load' });
            await page.waitForFunction(`document.querySelector('svg.bespoke-marp-active > foreignObject > section[id="${m.slide}"]') !== null`, undefined, { timeout: 5000 })
              .catch(() => undefined);
            // The on-screen controller (page number, buttons) would cover the slide's bottom.
            await page.addStyleTag({ content: '.bespoke-marp-osc { display: none !important; }' });
            await page.waitForTimeout(150);
            const file = path.join(options.shots, `${path.basename(r.html, '.html')}-${String(m.slide).padStart(2, '0')}.png`);
            await page.screenshot({ path: file });
            screenshots.push(file);
          }
        }
      } finally {
        await page.close();
      }
    }
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  return { problems, slides, screenshots };
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  let out = defaultOut;
  let first = 3;
  const decks: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--out') out = path.resolve(args[++i] ?? '');
    else if (a === '--first') first = Number(args[++i]);
    else if (a.startsWith('-')) {
      console.error(`unknown option ${a}\nusage: npm run slides:check [-- [--out DIR] [--first N] [DECK.md…]]`);
      return 2;
    } else decks.push(path.resolve(a));
  }
  const started = Date.now();
  const browser = findChromium();
  if (!browser) {
    const why = 'no Chromium found (/usr/bin/chromium; set CHROMIUM=/path): the setup installs Debian\'s chromium package';
    if (process.env.CI === 'true') {
      console.error(`✗ slides: ${why}`);
      return 1;
    }
    console.log(`- slides: browser check skipped: ${why}`);
    return 3;
  }
  const rendered = await renderDecks(decks.length ? decks : deckFiles(), out);
  const { problems, slides, screenshots } = await checkDecks(rendered, { chromium: browser, shots: path.join(out, 'screenshots'), first });
  for (const p of problems) {
    console.log(`✗ ${p.deck} slide ${p.slide}${p.heading ? ` "${p.heading}"` : ''}: ${p.what}`);
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`${problems.length ? '✗' : '✓'} ${rendered.length} decks, ${slides} slides checked in Chromium (${seconds} s): ${problems.length} problems; ${screenshots.length} screenshots in ${path.relative(process.cwd(), path.join(out, 'screenshots'))}/`);
  return problems.length ? 1 : 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exit(await main());
