// Debian's Chromium driven by playwright-core (no browser download), plus the checks every
// step of the walk shares: no console error, no failed request, no unexpected HTTP error,
// no horizontal scrollbar at phone width, and a screenshot at desktop and phone width.
import { chromium } from 'playwright-core';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
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
  const ignoredFavicons = new Set();
  const isAllowed = (status, url) =>
    ignoredFavicons.has(url) || allowed.some((a) => a.status === status && url.includes(a.urlPart));
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
  /** Another origin's pages are not under test, e.g. the simulator's (it stands for WeCom). */
  context.ignoreFaviconOf = (origin) => { ignoredFavicons.add(`${origin}/favicon.ico`); };
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

/**
 * A member's phone with the WeCom client: WeCom's in-client User-Agent at 390 px, and the
 * client's identity. The real client knows who is signed in to it; the simulated WeCom learns
 * it from `sim_userid` on its in-client authorize URL (else it shows a picker). So when the
 * bridge sends this browser to that URL, `sim_userid` is added to the redirect: the member
 * never clicks. (Playwright cannot route a redirect's follow-up request, hence the rewrite of
 * the bridge's redirect response itself.)
 */
export async function wecomClient(browser, { base, simUrl }, userid) {
  const context = await newContext(browser, {
    viewport: PHONE,
    userAgent: WXWORK_UA,
    isMobile: true,
    hasTouch: true,
  });
  const authorize = `${simUrl}/connect/oauth2/authorize?`;
  await context.route(
    (u) => u.origin === base,
    async (route) => {
      const req = route.request();
      if (!req.isNavigationRequest() || req.method() !== 'GET') return route.continue();
      // Fetched here (Node does not resolve *.localhost, so to 127.0.0.1 with the Host header).
      const { status, headers, body } = await loopbackGet(req.url(), await req.allHeaders());
      const location = headers.location;
      if (status >= 300 && status < 400 && location?.startsWith(authorize) && !location.includes('sim_userid=')) {
        const [href, fragment] = location.split('#');
        const who = `&sim_userid=${encodeURIComponent(userid)}`;
        headers.location = `${href}${who}${fragment === undefined ? '' : `#${fragment}`}`;
      }
      return route.fulfill({ status, headers, body });
    },
  );
  return context;
}

/** GET `url` from 127.0.0.1 with the browser's headers; no redirect is followed. */
function loopbackGet(url, headers) {
  const u = new URL(url);
  const h = { ...headers, host: u.host };
  for (const k of Object.keys(h)) if (k.startsWith(':')) delete h[k];
  return new Promise((resolve, reject) => {
    const r = http.get({ host: '127.0.0.1', port: u.port || 80, path: u.pathname + u.search, headers: h }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const out = {};
        for (const [k, v] of Object.entries(res.headers)) {
          if (['transfer-encoding', 'connection', 'keep-alive', 'content-encoding', 'content-length'].includes(k)) continue;
          out[k] = Array.isArray(v) ? v.join('\n') : v; // Playwright splits set-cookie on \n
        }
        resolve({ status: res.statusCode, headers: out, body: Buffer.concat(chunks) });
      });
      res.on('error', reject);
    });
    r.on('error', reject);
  });
}

/** The simulator's admin API (the "WeCom admin console" of the demo org, and its knobs). */
export async function simAdmin(simUrl, method, p, body) {
  const r = await fetch(`${simUrl}/sim/admin${p}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`sim admin ${method} ${p}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}
