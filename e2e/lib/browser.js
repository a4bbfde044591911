// Debian's Chromium driven by playwright-core (no browser download), plus the checks every
// step of the walk shares: no console error, no failed request, no unexpected HTTP error,
// no horizontal scrollbar at phone width, and a screenshot at desktop and phone width.
import { chromium } from 'playwright-core';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ARTIFACTS, ROOT } from './product.js';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };
export const SHOTS = path.join(ARTIFACTS, 'screenshots');
export const DOC_SHOTS = path.join(ROOT, 'docs', 'screenshots');
/** A WeCom in-client webview's User-Agent (Android); the bridge and the sim look for `wxwork/`. */
export const WXWORK_UA =
  'Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) ' +
  'Chrome/116.0.0.0 Mobile Safari/537.36 wxwork/4.1.22 MicroMessenger/7.0.1 Language/zh ColorScheme/Light';

/**
 * Playwright's launch() gives Chromium a fresh temporary --user-data-dir of its own (it refuses
 * the flag in `args`), removed on close. The other flags keep Chromium off the network this
 * machine refuses (it hangs otherwise).
 */
export async function launch() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--host-resolver-rules=MAP *.localhost 127.0.0.1',
    ],
  });
}

/**
 * A browser context (one person's browser) that records everything that goes wrong.
 * `ctx.expectStatus(status, urlPart)` allows one HTTP error the current step provokes on
 * purpose; `await ctx.check()` throws what went wrong since the last check.
 */
export async function newContext(browser, opts = {}) {
  const context = await browser.newContext({
    viewport: DESKTOP,
    locale: 'zh-CN',
    ...opts,
  });
  context.setDefaultTimeout(15_000);
  context.setDefaultNavigationTimeout(30_000);
  const problems = [];
  let allowed = [];
  const isAllowed = (status, url) => allowed.some((a) => a.status === status && url.includes(a.urlPart));
  context.on('console', (m) => {
    if (m.type() !== 'error') return;
    const text = m.text();
    const url = m.location()?.url || '';
    const st = text.match(/status of (\d{3})/);
    if (st && isAllowed(Number(st[1]), url)) return;
    problems.push(`console error: ${text} (${url})`);
  });
  context.on('weberror', (e) => problems.push(`uncaught error in page: ${e.error().message}`));
  context.on('requestfailed', (r) => {
    problems.push(`request failed: ${r.method()} ${r.url()} (${r.failure()?.errorText})`);
  });
  context.on('response', (r) => {
    if (r.status() >= 400 && !isAllowed(r.status(), r.url())) {
      problems.push(`unexpected HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
    }
  });
  context.expectStatus = (status, urlPart) => allowed.push({ status, urlPart });
  context.check = async () => {
    const p = problems.splice(0);
    allowed = [];
    if (p.length) throw new Error(`the browser saw problems:\n  ${p.join('\n  ')}`);
  };
  return context;
}

/** Elements wider than the phone screen, for a useful failure message. */
function overflowReport() {
  const de = document.documentElement;
  const over = de.scrollWidth > de.clientWidth;
  if (!over) return null;
  const culprits = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.right > de.clientWidth + 0.5 && culprits.length < 8) {
      culprits.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${el.className ? '.' + String(el.className).trim().replace(/\s+/g, '.') : ''} right=${Math.round(r.right)}`);
    }
  }
  return `scrollWidth ${de.scrollWidth} > clientWidth ${de.clientWidth}: ${culprits.join(', ')}`;
}

/**
 * Saves `<name>-desktop.png` (1280 wide) and `<name>-phone.png` (390 wide) under
 * artifacts/screenshots/, fails on a horizontal scrollbar at phone width, and with
 * UPDATE_DOCS_SCREENSHOTS=1 copies `doc` shots to docs/screenshots/ for the README.
 */
export async function shoot(page, name, { doc = false } = {}) {
  mkdirSync(SHOTS, { recursive: true });
  const original = page.viewportSize() || DESKTOP;
  const files = [];
  await page.setViewportSize(DESKTOP);
  await page.evaluate(() => document.fonts && document.fonts.ready);
  files.push(path.join(SHOTS, `${name}-desktop.png`));
  await page.screenshot({ path: files.at(-1), fullPage: true });
  await page.setViewportSize(PHONE);
  const overflow = await page.evaluate(overflowReport);
  files.push(path.join(SHOTS, `${name}-phone.png`));
  await page.screenshot({ path: files.at(-1), fullPage: true });
  await page.setViewportSize(original);
  if (doc && process.env.UPDATE_DOCS_SCREENSHOTS === '1') {
    mkdirSync(DOC_SHOTS, { recursive: true });
    for (const f of files) {
      const dest = path.join(DOC_SHOTS, path.basename(f));
      copyFileSync(f, dest);
      // Committed copies stay small: 256-colour PNG when pngquant is there (apt-get install pngquant).
      const q = spawnSync('pngquant', ['--quality', '60-85', '--speed', '1', '--strip', '--force', '--ext', '.png', dest]);
      if (q.error) console.error(`pngquant not found: ${path.basename(dest)} copied uncompressed`);
    }
  }
  if (overflow) throw new Error(`horizontal scrollbar at ${PHONE.width} px on ${page.url()}: ${overflow}`);
}
