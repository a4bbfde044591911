// The guide's steps walked in headless Chromium as a new admin and new members would, on the
// demo (`wecom-bridge demo`), in Chinese (the default for a WeCom tenant). Each step saves a
// screenshot at desktop and phone width and fails on a console error, a failed request, an
// HTTP error it did not provoke, or a horizontal scrollbar at 390 px.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startDemo } from './lib/product.js';
import { launch, newContext, shoot, simAdmin, wecomClient, SHOTS } from './lib/browser.js';
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
        // Every open page of every browser in the walk, to see where each person got stuck.
        const pages = (browser?.contexts() || []).flatMap((c) => c.pages());
        for (const [i, p] of pages.entries()) {
          console.error(`open page ${i}: ${p.url()}`);
          await p.screenshot({ path: path.join(SHOTS, `FAILED-${name.replace(/\W+/g, '_')}-${i}.png`), fullPage: true }).catch(() => {});
        }
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
    await page.fill('#current', demo.password);
    await page.fill('#password', 'short');
    await page.fill('#confirm', 'short');
    await page.locator('#password').evaluate((e) => e.removeAttribute('minlength'));
    await page.locator('#confirm').evaluate((e) => e.removeAttribute('minlength'));
    await page.click('button[type=submit]');
    await page.getByRole('alert').getByText('至少 12 个字符').waitFor();
    await admin.check();

    await page.fill('#current', demo.password);
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

  const sim = (method, p, body) => simAdmin(demo.simUrl, method, p, body);
  /** Waits for a sync run page to finish (it polls and reloads itself) and returns its status. */
  const runFinished = async (p = page) => {
    await p.waitForURL(/\/console\/sync\/runs\/\d+/);
    await p.getByTestId('counts').waitFor({ timeout: 60_000 });
    return p.getByTestId('status').getAttribute('data-status');
  };
  const members = []; // member browsers, closed at the end

  step('3a directory sync: the dry run shows the diff and changes nothing', async () => {
    await page.goto(url('/console/setup/4'));
    await shoot(page, '04-wizard-sync');
    await page.getByTestId('sync-link').click();
    await page.waitForURL('**/console/sync**');
    await page.getByTestId('dry-run').waitFor();
    await shoot(page, '04-sync');
    await page.getByTestId('dry-run').click();
    assert.equal(await runFinished(), 'succeeded');
    assert.match(await page.locator('main').innerText(), /预览：未做任何修改/);
    const added = await page.getByTestId('added').innerText();
    for (const who of ['zhangsan', 'lisi', 'huangmin', 'tangli']) assert.ok(added.includes(who), `the diff adds ${who}`);
    assert.ok(!added.includes('fengtao'), 'people outside the visible scope are not added');
    await shoot(page, '04-dry-run', { doc: true });
    await page.goto(url('/console/users'));
    await page.getByTestId('empty').waitFor();
  });

  step('3b the real sync shows a progress bar, then the report (counts, API calls, withheld fields)', async () => {
    // Slow the simulated WeCom down so the progress bar is there to see.
    await sim('POST', '/latencies', { path: '*', ms: 1500 });
    try {
      await page.goto(url('/console/sync'));
      await page.getByTestId('sync-now').click();
      await page.waitForURL(/\/console\/sync\/runs\/\d+/);
      await page.locator('progress#bar').waitFor();
      // One percentage for the whole run (not one per phase).
      assert.match(await page.locator('#overall').innerText(), /^\d+%$/);
      await shoot(page, '04-sync-progress', { doc: true });
    } finally {
      await sim('DELETE', '/latencies');
    }
    assert.equal(await runFinished(), 'succeeded');
    const counts = await page.getByTestId('counts').innerText();
    assert.match(counts, /新增成员\s+14\b/, counts);
    const calls = await page.getByTestId('api-calls').innerText();
    assert.match(calls, /user\/list|user\/get/);
    assert.match(calls, /下限/);
    await page.getByTestId('withheld').waitFor();
    await shoot(page, '04-sync-report', { doc: true });
  });

  step('3c the Users page lists the synced people with departments and tags', async () => {
    await page.getByRole('link', { name: '用户', exact: true }).click();
    await page.waitForURL('**/console/users');
    const table = page.getByTestId('users');
    assert.equal(await table.locator('tbody tr').count(), 14);
    const row = table.locator('tr[data-userid="zhangsan"]');
    assert.match(await row.innerText(), /张三/);
    assert.match(await row.innerText(), /后端组/);
    assert.equal(await row.getAttribute('data-status'), 'unauthorized', 'new users wait for an admin');
    await shoot(page, '04-users', { doc: true });
    // Tags: filter by 项目A.
    await page.selectOption('select[name=tag]', { label: '项目A' });
    await page.click('form[role=search] button[type=submit]');
    await page.waitForURL(/tag=\d+/);
    const tagged = await table.locator('tbody tr').evaluateAll((rs) => rs.map((r) => r.dataset.userid));
    for (const who of ['zhangsan', 'xuting', 'maliang']) assert.ok(tagged.includes(who), `项目A lists ${who}: ${tagged}`);
    assert.ok(!tagged.includes('huangmin'), `项目A does not list huangmin: ${tagged}`);
    // One person: departments (two) and tags.
    await page.goto(url('/console/users'));
    await table.locator('tr[data-userid="zhangsan"] a').click();
    const facts = await page.getByTestId('user').innerText();
    assert.match(facts, /后端组/);
    assert.match(facts, /数据平台组/);
    assert.match(facts, /项目A/);
    await shoot(page, '04-user-detail');
  });

  step('3d Users → Import users → Sync from WeCom runs the sync again (nothing new)', async () => {
    await page.goto(url('/console/users'));
    await page.getByTestId('import').click();
    await page.waitForURL('**/console/sync');
    await page.getByTestId('sync-now').click();
    assert.equal(await runFinished(), 'succeeded');
    assert.match(await page.getByTestId('counts').innerText(), /新增成员\s+0\b/);
    await page.goto(url('/console/sync'));
    assert.ok((await page.getByTestId('runs').locator('tbody tr').count()) >= 3, 'the history lists the runs');
    await shoot(page, '04-sync-history');
  });

  step('4 the admin ticks WeCom in the workbench login configuration', async () => {
    await page.goto(url('/console/setup/5'));
    await shoot(page, '05-wizard-login');
    await page.getByTestId('login-config-link').click();
    await page.waitForURL('**/console/settings/login');
    const wecom = page.locator('input[type=checkbox][name=wecom]');
    assert.equal(await wecom.isChecked(), false, 'WeCom is off until the admin turns it on');
    await wecom.check();
    await page.click('[data-testid=login-config] button[type=submit]');
    await page.getByTestId('saved').waitFor();
    assert.equal(await page.locator('input[type=checkbox][name=wecom]').isChecked(), true);
    await shoot(page, '05-login-config', { doc: true });
  });

  step('4b the admin authorizes the first members on the Users page (with a confirmation)', async () => {
    await page.goto(url('/console/users'));
    for (const who of ['zhangsan', 'lisi', 'zhengwei']) {
      await page.check(`tr[data-userid="${who}"] input[type=checkbox]`);
    }
    await page.selectOption('#bulk-action', 'authorize');
    await page.getByRole('button', { name: '继续…' }).click();
    const confirm = page.getByTestId('confirm');
    await confirm.waitFor();
    assert.match(await confirm.innerText(), /张三/);
    await shoot(page, '05-authorize-confirm');
    await confirm.locator('button[type=submit]').click();
    await page.getByTestId('done').waitFor();
    for (const who of ['zhangsan', 'lisi', 'zhengwei']) {
      assert.equal(await page.getAttribute(`tr[data-userid="${who}"]`, 'data-status'), 'authorized', who);
    }
    assert.equal(await page.getAttribute('tr[data-userid="huangmin"]', 'data-status'), 'unauthorized');
  });

  step('5a a member opens the workbench inside WeCom and lands signed in without a click', async () => {
    const phone = await wecomClient(browser, demo, 'zhangsan');
    members.push(phone);
    const p = await phone.newPage();
    await p.goto(url('/wecom/home')); // the app's home page, as WeCom's workbench opens it
    await p.getByTestId('workbench').waitFor();
    assert.equal(new URL(p.url()).pathname, '/');
    assert.equal((await p.getByTestId('member-name').innerText()).trim(), '张三');
    assert.match(await p.getByTestId('member-department').innerText(), /后端组/);
    await shoot(p, '05-workbench-in-wecom', { doc: true });
    await phone.check();
  });

  step('5b another member signs in by QR login from a desktop browser', async () => {
    const desk = await newContext(browser);
    desk.ignoreFaviconOf(demo.simUrl); // the simulator's QR page has no icon; WeCom's is not ours to test
    members.push(desk);
    const p = await desk.newPage();
    await p.goto(demo.base + '/');
    await p.waitForURL('**/login**');
    const login = p.getByTestId('member-login');
    await login.waitFor();
    assert.equal(await login.getAttribute('data-client'), 'browser');
    await shoot(p, '05-member-login', { doc: true });
    await p.locator('[data-source=wecom] a').click();
    await p.waitForURL((u) => u.href.startsWith(`${demo.simUrl}/wwlogin/sso/login`));
    await shoot(p, '05-qr-login-sim');
    // Scanning the QR code with lisi's WeCom: the simulator's picker stands for the phone.
    await p.locator('button.who[value="lisi"]').click();
    await p.getByTestId('workbench').waitFor();
    assert.equal((await p.getByTestId('member-name').innerText()).trim(), '李四');
    await shoot(p, '05-workbench-qr');
    await desk.check();
  });

  step('6a an unauthorized member sees the FAQ message; the admin authorizes them; the next try gets in', async () => {
    const phone = await wecomClient(browser, demo, 'huangmin');
    members.push(phone);
    const p = await phone.newPage();
    phone.expectStatus(403, '/auth/wecom/callback');
    await p.goto(url('/wecom/home'));
    const outcome = p.getByTestId('login-outcome');
    await outcome.waitFor();
    assert.equal(await outcome.getAttribute('data-outcome'), 'unauthorized');
    assert.ok(
      (await p.getByTestId('message').innerText()).includes('抱歉，您未在授权范围内，因此无法使用，如需使用请联系企业管理员授权'),
      'the guide\'s FAQ message',
    );
    // Whom to ask and "try again"; no admin instructions or console link for a member.
    assert.match(await p.getByTestId('ask').innerText(), /企业微信管理员.*huangmin/);
    await p.getByTestId('try-again').waitFor();
    assert.equal(await p.locator('a[href^="/console"]').count(), 0, 'no console link on a member\'s page');
    await shoot(p, '06-unauthorized', { doc: true });
    await phone.check();

    // The admin finds them on the Users page and authorizes them.
    await page.goto(url('/console/users?q=huangmin'));
    await page.check('tr[data-userid="huangmin"] input[type=checkbox]');
    await page.selectOption('#bulk-action', 'authorize');
    await page.getByRole('button', { name: '继续…' }).click();
    await page.getByTestId('confirm').locator('button[type=submit]').click();
    await page.getByTestId('done').waitFor();
    assert.equal(await page.getAttribute('tr[data-userid="huangmin"]', 'data-status'), 'authorized');

    // Their next try gets in.
    await p.goto(url('/wecom/home'));
    await p.getByTestId('workbench').waitFor();
    assert.equal((await p.getByTestId('member-name').innerText()).trim(), '黄敏');
    await shoot(p, '06-authorized-workbench');
    await phone.check();
  });

  step('6b a trusted domain that is not this host shows the trusted-domain explanation', async () => {
    const app = `/corps/${demo.corpid}/apps/${demo.agentid}`;
    const domain = `acme.localhost:${demo.port}`;
    await sim('PATCH', app, { redirect_domain: 'wrong.example.com' });
    try {
      // The admin sees it in set-up step 3 (which re-reads the app from WeCom)…
      await page.goto(url('/console/setup/3'));
      await page.getByTestId('domain-warning').first().waitFor();
      await shoot(page, '06-domain-warning');
      // …and a member opening the app gets the explanation instead of WeCom's error page.
      const phone = await wecomClient(browser, demo, 'zhengwei');
      members.push(phone);
      const p = await phone.newPage();
      phone.expectStatus(409, '/wecom/home');
      await p.goto(url('/wecom/home'));
      const outcome = p.getByTestId('login-outcome');
      await outcome.waitFor();
      assert.equal(await outcome.getAttribute('data-outcome'), 'trusted_domain_mismatch');
      const text = await outcome.innerText();
      assert.match(text, /redirect uri需使用应用可信域名/);
      assert.ok(text.includes('wrong.example.com') && text.includes(domain), text);
      await shoot(p, '06-trusted-domain', { doc: true });
      await phone.check();
    } finally {
      await sim('PATCH', app, { redirect_domain: domain });
    }
    await page.goto(url('/console/setup/3'));
    assert.equal(await page.getByTestId('domain-warning').count(), 0, 'fixed in WeCom: no warning');
  });

  step('7 apps: the admin adds an app for one member; 张三 opens the sample app (forward auth, then OpenID Connect), is refused the other, and finds his frequent app', async () => {
    // The admin adds 报销 for 李四 only, with whom to ask.
    await page.goto(url('/console/apps'));
    assert.ok(await page.locator('tr[data-slug="hello"]').count(), 'the demo ships the sample app');
    await page.getByTestId('new-app').click();
    await page.fill('input[name=name_zh]', '报销');
    await page.fill('input[name=name_en]', 'Expenses');
    await page.fill('input[name=slug]', 'expenses');
    await page.fill('input[name=url]', 'https://expenses.example.com/');
    await page.fill('input[name=category]', '办公');
    await page.fill('input[name=contact]', '财务部 王芳');
    await page.check('input[name=icon][value=money]');
    await page.check('input[name=access][value=chosen]');
    await page.fill('textarea[name=members]', 'lisi');
    await shoot(page, '07-app-edit');
    await page.getByTestId('save-app').click();
    await page.locator('tr[data-slug="expenses"]').waitFor();
    await shoot(page, '07-apps', { doc: true });

    // 张三 in WeCom: the workbench shows the sample app, not 报销.
    const phone = await wecomClient(browser, demo, 'zhangsan');
    members.push(phone);
    const p = await phone.newPage();
    await p.goto(url('/wecom/home'));
    await p.getByTestId('workbench').waitFor();
    const slugs = await p.locator('[data-testid=app-tile]').evaluateAll((els) => els.map((e) => e.dataset.slug));
    assert.deepEqual(slugs, ['hello']);
    await shoot(p, '07-workbench-apps', { doc: true });

    // Opening the sample app: forward auth hands it his identity.
    await p.locator('[data-testid=app-tile][data-slug=hello]').click();
    await p.getByTestId('sample-app').waitFor();
    assert.equal(new URL(p.url()).origin, new URL(demo.sampleUrl).origin);
    assert.equal((await p.getByTestId('sample-name').innerText()).trim(), '张三');
    assert.equal((await p.getByTestId('sample-user').innerText()).trim(), 'zhangsan');
    assert.match(await p.getByTestId('sample-groups').innerText(), /后端组/);
    await shoot(p, '07-sample-app', { doc: true });

    // The same app signs him in through OpenID Connect: code flow with PKCE, no second WeCom trip.
    await p.getByTestId('sample-oidc-login').click();
    await p.getByTestId('sample-oidc').waitFor();
    assert.equal(new URL(p.url()).origin, new URL(demo.sampleUrl).origin);
    assert.equal((await p.locator('[data-claim=name]').innerText()).trim(), '张三');
    assert.equal((await p.locator('[data-claim=iss]').innerText()).trim(), demo.base);
    assert.equal((await p.locator('[data-userinfo=preferred_username]').innerText()).trim(), 'zhangsan');
    await shoot(p, '07-sample-app-oidc', { doc: true });

    // 报销 is not his: a page naming the app and whom to ask.
    phone.expectStatus(403, '/apps/expenses/open');
    await p.goto(url('/apps/expenses/open'));
    const denied = p.getByTestId('app-denied');
    await denied.waitFor();
    assert.match(await denied.innerText(), /报销/);
    assert.match(await p.getByTestId('ask').innerText(), /财务部 王芳/);
    await shoot(p, '07-app-denied', { doc: true });

    // Back on the workbench the sample app is under frequently used.
    await p.goto(url('/'));
    const frequent = p.getByTestId('frequent');
    await frequent.waitFor();
    assert.equal(await frequent.locator('[data-slug=hello]').count(), 1);
    await shoot(p, '07-frequent-apps');
    await phone.check();
  });

  step('7b apps: 数据看板 is bound to its own WeCom app (1000003); a too-wide app is refused by name; 张三 opens it from its WeCom entry', async () => {
    // An app whose visible scope someone set to 数据平台组 and all of 市场部 (in WeCom's console).
    await sim('POST', `/corps/${demo.corpid}/apps`, {
      agentid: 1000009, name: '市场周报', secret: 'AcmeTooWideSecret000000000000000000000001',
      trusted_ips: ['127.0.0.1', '::1'], scope: { parties: [5, 7] },
    });
    // The admin adds 数据看板, opening the demo's sample app, for every authorized member.
    await page.goto(url('/console/apps/new'));
    await page.fill('input[name=name_zh]', '数据看板');
    await page.fill('input[name=name_en]', 'Dashboard');
    await page.fill('input[name=slug]', 'dashboard');
    await page.fill('input[name=url]', new URL('/', demo.sampleUrl).href);
    await page.fill('input[name=category]', '数据');
    await page.check('input[name=icon][value=chart]');
    await page.check('input[name=access][value=everyone]');
    await page.getByTestId('save-app').click();
    await page.locator('tr[data-slug="dashboard"]').waitFor();
    await page.locator('tr[data-slug="dashboard"] a').first().click();
    await page.getByTestId('bind-form').waitFor();

    // Binding the too-wide app is refused, naming what lies outside the workbench's scope.
    await page.fill('[data-testid=bind-form] input[name=agentid]', '1000009');
    await page.fill('[data-testid=bind-form] input[name=secret]', 'AcmeTooWideSecret000000000000000000000001');
    admin.expectStatus(422, '/wecom');
    await page.getByTestId('bind-app').click();
    const refusal = page.getByTestId('bind-error');
    await refusal.waitFor();
    const why = await refusal.innerText();
    assert.match(why, /市场周报/);
    assert.match(why, /市场部/, 'a department outside the main scope is named');
    assert.match(why, /缩小/, 'with the fix');
    assert.equal(await page.inputValue('[data-testid=bind-form] input[name=secret]'), '', 'the Secret is not sent back');
    await page.getByTestId('app-wecom').scrollIntoViewIfNeeded();
    await shoot(page, '07-bind-refused', { doc: true });

    // 数据看板's own app (数据平台组 and 徐婷, inside the main scope) is accepted.
    await page.fill('[data-testid=bind-form] input[name=agentid]', '1000003');
    await page.fill('[data-testid=bind-form] input[name=secret]', 'AcmeDashboardSecret00000000000000000000001');
    await page.getByTestId('bind-app').click();
    const bound = page.getByTestId('bound');
    await bound.waitFor();
    assert.match(await bound.innerText(), /数据看板/);
    assert.equal((await page.getByTestId('app-home-url').innerText()).trim(), `${demo.base}/apps/dashboard`);
    await page.getByTestId('app-wecom').scrollIntoViewIfNeeded();
    await shoot(page, '07-bind-accepted', { doc: true });

    // 张三 (数据平台组) opens 数据看板 from its own entry in WeCom: signed in silently through
    // agentid 1000003 and landed in the app.
    const phone = await wecomClient(browser, demo, 'zhangsan');
    members.push(phone);
    const p = await phone.newPage();
    const asked = [];
    p.on('request', (r) => { if (r.url().startsWith(`${demo.simUrl}/connect/oauth2/authorize`)) asked.push(r.url()); });
    await p.goto(url('/apps/dashboard'));
    await p.getByTestId('sample-app').waitFor();
    assert.equal(asked.length, 1);
    assert.equal(new URL(asked[0]).searchParams.get('agentid'), '1000003');
    assert.equal((await p.getByTestId('sample-name').innerText()).trim(), '张三');
    await shoot(p, '07-dashboard-from-wecom', { doc: true });
    await phone.check();
  });

  step('8 the overview reads as a health summary; the audit log filters and exports', async () => {
    await page.goto(url('/console'));
    const health = page.getByTestId('health');
    await health.waitFor();
    assert.match(await health.innerText(), /上次同步/);
    assert.ok(Number(await page.getByTestId('signed-in-today').innerText()) >= 1, 'members signed in today');
    // Steps 1, 2, 4, 5 and 6 are done by now (step 3 waits on doctor's last verdict).
    const ticks = await page.locator('[data-testid=next-step] li[data-done=true]').count();
    assert.ok(ticks >= 5, `ticks: ${ticks}`);
    await shoot(page, '08-overview', { doc: true });
    await page.goto(url('/console/audit'));
    await page.selectOption('#audit-action', { value: 'member.login' });
    await page.click('form[role=search] button[type=submit]');
    await page.waitForURL(/action=member.login/);
    // The language switch keeps the filter.
    await page.getByRole('link', { name: 'English', exact: true }).click();
    await page.waitForURL(/lang=en/);
    assert.match(page.url(), /action=member\.login/);
    await page.getByRole('link', { name: '中文', exact: true }).click();
    await page.waitForURL(/lang=zh/);
    assert.match(page.url(), /action=member\.login/);
    const actions = await page.locator('table.audit tbody tr').evaluateAll((rs) => rs.map((r) => r.dataset.action));
    assert.ok(actions.length > 0 && actions.every((a) => a === 'member.login'), `${actions}`);
    assert.match(await page.getByTestId('audit-export').getAttribute('href'), /export\.csv\?action=member\.login/);
    await shoot(page, '08-audit', { doc: true });
  });

  step('English: the key pages read in English', async () => {
    const pages = [
      ['/console?lang=en', 'en-overview'],
      ['/console/setup/1?lang=en', 'en-01-edition-ok'],
      ['/console/setup/2?lang=en', 'en-02-app-details'],
      ['/console/setup/3?lang=en', 'en-03-console-values'],
      ['/console/doctor?lang=en', 'en-03-doctor'],
      ['/console/audit?lang=en', 'en-03-audit'],
      ['/console/sync?lang=en', 'en-04-sync'],
      ['/console/users?lang=en', 'en-04-users'],
      ['/console/settings/login?lang=en', 'en-05-login-config'],
      ['/console/setup/6?lang=en', 'en-06-open-in-wecom'],
      ['/console/apps?lang=en', 'en-07-apps'],
    ];
    for (const [p, name] of pages) {
      await page.goto(url(p));
      assert.equal(await page.getAttribute('html', 'lang'), 'en', p);
      const chrome = await page.locator('header, h1, h2, label, button, th').allInnerTexts();
      // '中文' is the language switch and 示例科技 the tenant's own name: data, not chrome.
      const cjk = chrome.map((s) => s.replaceAll('中文', '').replaceAll('示例科技', '')).filter((s) => /[\u4e00-\u9fff]/.test(s));
      assert.deepEqual(cjk, [], `${p}: Chinese left in the English page's headings, labels and buttons`);
      await shoot(page, name, { doc: name === 'en-03-console-values' });
    }
    // Back to Chinese.
    await page.goto(url('/console?lang=zh'));
    assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
    // A member's pages in English too.
    const desk = await newContext(browser);
    members.push(desk);
    const p = await desk.newPage();
    await p.goto(url('/login?lang=en'));
    assert.equal(await p.getAttribute('html', 'lang'), 'en');
    assert.match(await p.getByTestId('member-login').innerText(), /Sign in to the workbench/);
    await shoot(p, 'en-05-member-login');
    await desk.check();
  });



  step('Language: an English browser gets English until the person picks 中文; a bilingual 404 with the way back', async () => {
    const en = await newContext(browser, { locale: 'en-US' });
    members.push(en);
    const p = await en.newPage();
    await p.goto(url('/console/login'));
    assert.equal(await p.getAttribute('html', 'lang'), 'en', 'Accept-Language: en-US');
    await p.locator('.lang a', { hasText: '中文' }).click();
    await p.waitForURL('**/console/login?lang=zh');
    assert.equal(await p.getAttribute('html', 'lang'), 'zh-CN');
    await p.goto(url('/console/login'));
    assert.equal(await p.getAttribute('html', 'lang'), 'zh-CN', 'the choice sticks');
    en.expectStatus(404, '/no-such-page');
    await p.goto(url('/no-such-page'));
    const err = p.getByTestId('error-page');
    await err.waitFor();
    const text = await err.innerText();
    assert.match(text, /找不到此页面/);
    assert.match(text, /Page not found/);
    await shoot(p, 'not-found');
    await p.getByTestId('error-nav').locator('a[href="/console"]').click();
    await p.waitForURL('**/console/login**');
    await en.check();
  });

  step('Profile menu: the admin finds "change password" and the time zone', async () => {
    await page.goto(url('/console'));
    const menu = page.getByTestId('profile-menu');
    await menu.locator('summary').click();
    assert.equal((await page.getByTestId('profile-username').innerText()).trim(), demo.username);
    await shoot(page, 'profile-menu');
    await page.getByTestId('change-password').click();
    await page.waitForURL('**/console/password');
    assert.match(await page.getByTestId('change-password-title').innerText(), /修改密码/);
    await page.goto(url('/console'));
    await page.getByTestId('profile-menu').locator('summary').click();
    await page.getByTestId('time-zone-link').click();
    await page.waitForURL('**/console/settings/time-zone');
    assert.equal(await page.locator('#time_zone').inputValue(), 'Asia/Shanghai');
    assert.match(await page.getByTestId('now').innerText(), /\+08:00/);
  });

  after(async () => {
    for (const m of members) await m.close().catch(() => {});
  });
});
