// The guide's steps walked in headless Chromium as a new admin and new members would, on the
// demo (`wecom-bridge demo`), in Chinese (the default for a WeCom tenant). Each step saves a
// screenshot at desktop and phone width and fails on a console error, a failed request, an
// HTTP error it did not provoke, or a horizontal scrollbar at 390 px.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startDemo } from './lib/product.js';
import { launch, newContext, shoot, SHOTS } from './lib/browser.js';
import path from 'node:path';

const NEW_PASSWORD = 'Demo-Admin-Passw0rd!';

describe('guide steps 1-6 on the demo (中文)', { concurrency: 1 }, () => {
  let demo;
  let browser;
  let admin; // the admin's browser
  let page;
  let broken = false;

  /** A step of the walk: later steps are skipped once one fails (the run fails anyway). */
  const step = (name, fn) =>
    test(name, async (t) => {
      if (broken) return t.skip('an earlier step failed');
      try {
        await fn(t);
        await admin.check();
      } catch (e) {
        broken = true;
        await page?.screenshot({ path: path.join(SHOTS, `FAILED-${name.replace(/\W+/g, '_')}.png`), fullPage: true }).catch(() => {});
        console.error(`--- bridge log (tail) ---\n${demo?.log().split('\n').slice(-30).join('\n')}`);
        throw e;
      }
    });

  before(async () => {
    demo = await startDemo({ edition: 'basic', name: 'walk-zh' });
    browser = await launch();
    admin = await newContext(browser, { permissions: ['clipboard-read', 'clipboard-write'] });
    page = await admin.newPage();
  });
  after(async () => {
    await browser?.close();
    await demo?.stop();
  });

  const url = (p) => new URL(p, demo.base).href;

  step('1a admin signs in with the one-time password and sets a new one', async () => {
    await page.goto(demo.consoleUrl);
    assert.match(new URL(page.url()).pathname, /^\/console\/login/);
    assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
    await shoot(page, '01-sign-in', { doc: true });

    // A wrong password first: the error shows and the username stays.
    admin.expectStatus(401, '/console/login');
    await page.fill('#username', demo.username);
    await page.fill('#password', 'not-the-password');
    await page.click('button[type=submit]');
    await page.getByRole('alert').getByText('用户名或密码错误').waitFor();
    assert.equal(await page.inputValue('#username'), demo.username);
    await admin.check();

    await page.fill('#password', demo.password);
    await page.click('button[type=submit]');
    await page.waitForURL('**/console/password');
    await shoot(page, '01-new-password');

    // Too short is refused beside the form, then a good one is accepted.
    admin.expectStatus(400, '/console/password');
    await page.fill('#password', 'short');
    await page.fill('#confirm', 'short');
    await page.locator('#password').evaluate((e) => e.removeAttribute('minlength'));
    await page.locator('#confirm').evaluate((e) => e.removeAttribute('minlength'));
    await page.click('button[type=submit]');
    await page.getByRole('alert').getByText('至少 12 个字符').waitFor();
    await admin.check();

    await page.fill('#password', NEW_PASSWORD);
    await page.fill('#confirm', NEW_PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForURL('**/console/login**');

    // Sign in again with the keyboard only; the focused field shows a visible outline.
    await page.locator('body').focus();
    let focused = '';
    for (let i = 0; i < 30 && focused !== 'username'; i++) {
      await page.keyboard.press('Tab');
      focused = await page.evaluate(() => document.activeElement?.id || '');
    }
    assert.equal(focused, 'username', 'Tab reaches the username field');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, 'none', 'keyboard focus is visible');
    await page.keyboard.type(demo.username);
    await page.keyboard.press('Tab');
    await page.keyboard.type(NEW_PASSWORD);
    await page.keyboard.press('Enter');
    await page.waitForURL((u) => u.pathname === '/console');
    await page.getByRole('heading', { level: 1 }).waitFor();
    // The first Tab shows a "skip to content" link past the navigation.
    await page.locator('body').focus();
    await page.keyboard.press('Tab');
    const skip = page.locator('a.skip:focus');
    assert.equal(await skip.innerText(), '跳到正文');
    const box = await skip.boundingBox();
    assert.ok(box && box.x >= 0 && box.y >= 0, 'the focused skip link is on screen');
    await shoot(page, '01-overview');
  });

  step('1b a Basic tenant is refused the WeCom integration; the operator upgrades it', async () => {
    await page.goto(url('/console/setup/1'));
    const refused = page.getByTestId('edition-refused');
    await refused.waitFor();
    assert.match(await refused.innerText(), /企业微信集成需要专业版或更高版本，当前租户为基础版/);
    await shoot(page, '01-edition-refused', { doc: true });

    const out = demo.operator('tenant', 'set-edition', 'default', 'professional');
    assert.match(out, /professional/);
    await page.reload();
    await page.getByTestId('edition-ok').waitFor();
    assert.equal(await page.getByTestId('edition-refused').count(), 0);
    await shoot(page, '01-edition-ok');
  });

  step('2a a wrong secret is explained and the other fields keep what was typed', async () => {
    await page.getByRole('link', { name: '下一步：填写应用信息' }).click();
    await page.waitForURL('**/console/setup/2');
    await shoot(page, '02-app-details');
    await page.fill('#corpid', demo.corpid);
    await page.fill('#agentid', demo.agentid);
    await page.fill('#secret', `${demo.secret.slice(0, -1)}X`);
    admin.expectStatus(400, '/console/setup/2');
    await page.click('#step-2 button[type=submit]');
    const box = page.getByTestId('wecom-error');
    await box.waitFor();
    assert.match(await box.innerText(), /Secret/i);
    assert.equal(await page.inputValue('#corpid'), demo.corpid);
    assert.equal(await page.inputValue('#agentid'), demo.agentid);
    await shoot(page, '02-wrong-secret', { doc: true });
  });

  step('2b the right secret: step 3 shows the values and the copy buttons copy them', async () => {
    await page.fill('#secret', demo.secret);
    await page.click('#step-2 button[type=submit]');
    await page.waitForURL('**/console/setup/3');
    const rows = page.locator('table.values tbody tr');
    assert.ok((await rows.count()) >= 4, 'step 3 lists the values for the WeCom admin console');
    const text = await page.locator('table.values').innerText();
    assert.ok(text.includes(`acme.localhost:${demo.port}`), 'the values name the tenant domain');
    await page.getByTestId('scope').waitFor();
    await shoot(page, '03-console-values', { doc: true });

    const buttons = page.locator('button.copy[data-copy]');
    const n = await buttons.count();
    assert.ok(n >= 4, `copy buttons: ${n}`);
    for (let i = 0; i < n; i++) {
      const b = buttons.nth(i);
      const want = await b.getAttribute('data-copy');
      const shown = await b.locator('xpath=preceding-sibling::code[1]').innerText();
      assert.equal(shown, want, 'the button copies the value it stands beside');
      await page.evaluate(() => navigator.clipboard.writeText(''));
      await b.click();
      await page.waitForFunction(async (w) => (await navigator.clipboard.readText()) === w, want);
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), want);
    }
  });

  step('2c doctor and audit log after set-up', async () => {
    await page.goto(url('/console/doctor'));
    await page.getByRole('heading', { level: 1 }).waitFor();
    await shoot(page, '03-doctor', { doc: true });
    await page.goto(url('/console/audit'));
    await page.getByRole('heading', { level: 1 }).waitFor();
    const log = await page.locator('main').innerText();
    assert.ok(/admin\.login|登录/.test(log), 'the audit log records the sign-in');
    await shoot(page, '03-audit');
  });

  step('English: the key pages read in English', async () => {
    const pages = [
      ['/console?lang=en', 'en-overview'],
      ['/console/setup/1?lang=en', 'en-01-edition-ok'],
      ['/console/setup/2?lang=en', 'en-02-app-details'],
      ['/console/setup/3?lang=en', 'en-03-console-values'],
      ['/console/doctor?lang=en', 'en-03-doctor'],
      ['/console/audit?lang=en', 'en-03-audit'],
    ];
    for (const [p, name] of pages) {
      await page.goto(url(p));
      assert.equal(await page.getAttribute('html', 'lang'), 'en', p);
      const chrome = await page.locator('header, h1, h2, label, button, th').allInnerTexts();
      const cjk = chrome.map((s) => s.replaceAll('中文', '')).filter((s) => /[\u4e00-\u9fff]/.test(s));
      assert.deepEqual(cjk, [], `${p}: Chinese left in the English page's headings, labels and buttons`);
      await shoot(page, name, { doc: name === 'en-03-console-values' });
    }
    // Back to Chinese.
    await page.goto(url('/console?lang=zh'));
    assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
  });

  test.todo('3 directory sync: dry run diff, real sync with progress, report (counts, API calls, withheld fields) — /console/sync not served yet');
  test.todo('3 Users page lists the synced people with departments and tags; Users → Import users → Sync from WeCom — /console/users not served yet');
  test.todo('4 the admin ticks WeCom in the workbench login configuration — not served yet');
  test.todo('5 a member opens the workbench in the simulated WeCom client (wxwork UA) and lands signed in without a click — /login, /auth/wecom/callback not served yet');
  test.todo('5 another member signs in by QR login from a desktop browser — not served yet');
  test.todo('6 an unauthorized member sees the FAQ message; the admin authorizes them on Users; the next try gets in — not served yet');
  test.todo('6 a redirect to a host that is not the trusted domain shows the trusted-domain explanation — not served yet');
});
