// Issue 20, walked in headless Chromium on the demo (中文): an admin brings in the directory
// a third-party app knew (Users → Import users → Upload a file: a dry run, then confirm),
// and the first sync switches to the self-built app, re-linking the people by
// batch/openuserid_to_userid and reporting who could not be re-linked.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startDemo } from './lib/product.js';
import { launch, newContext, shoot } from './lib/browser.js';

const NEW_PASSWORD = 'Demo-Admin-Passw0rd!';
// The demo org's third-party app (crates/wecom-sim/examples/acme.toml).
const PROVIDER_AGENTID = 2000011;
const PROVIDER_ID = 'wpAcmeLegacyProvider';

/** The simulator's open_userid of a member (wecom-sim model::open_userid). */
function openUserid(corpid, userid) {
  const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let out = 'wo';
  for (let counter = 0; out.length < 32; counter++) {
    const h = createHash('sha1');
    h.update(PROVIDER_ID);
    h.update(Buffer.from([0]));
    h.update(corpid.toLowerCase());
    h.update(Buffer.from([0]));
    h.update(userid.toLowerCase());
    h.update(Buffer.from([counter]));
    for (const b of h.digest()) if (out.length < 32) out += ALNUM[b % ALNUM.length];
  }
  return out;
}

describe('import an existing directory, then switch from the third-party app (中文)', { concurrency: 1 }, () => {
  let demo;
  let browser;
  let admin;
  let page;
  let broken = false;
  const step = (name, fn) =>
    test(name, async (t) => {
      if (broken) return t.skip('an earlier step failed');
      try {
        await fn(t);
        await admin.check();
      } catch (e) {
        broken = true;
        console.error(`--- bridge log (tail) ---\n${demo?.log().split('\n').slice(-30).join('\n')}`);
        throw e;
      }
    });

  before(async () => {
    demo = await startDemo({ edition: 'professional', name: 'import-zh' });
    browser = await launch();
    admin = await newContext(browser);
    page = await admin.newPage();
  });
  after(async () => {
    await browser?.close();
    await demo?.stop();
  });
  const url = (p) => new URL(p, demo.base).href;

  step('the admin signs in and sets up the self-built app', async () => {
    await page.goto(demo.consoleUrl);
    await page.fill('#username', demo.username);
    await page.fill('#password', demo.password);
    await page.click('button[type=submit]');
    await page.waitForURL('**/console/password');
    await page.fill('#current', demo.password);
    await page.fill('#password', NEW_PASSWORD);
    await page.fill('#confirm', NEW_PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForURL('**/console/login**');
    await page.fill('#username', demo.username);
    await page.fill('#password', NEW_PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForURL((u) => u.pathname === '/console');
    await page.goto(url('/console/setup/2'));
    await page.fill('#corpid', demo.corpid);
    await page.fill('#agentid', demo.agentid);
    await page.fill('#secret', demo.secret);
    await page.click('#step-2 button[type=submit]');
    await page.waitForURL('**/console/setup/3');
  });

  const people = () => [
    'id,name,open_userid,source_agentid,notes',
    ...['zhangsan', 'lisi', 'huangmin', 'tangli'].map(
      (u, i) => `${3001 + i},${openUserid(demo.corpid, u)},${openUserid(demo.corpid, u)},${PROVIDER_AGENTID},`,
    ),
    // Someone the third-party app knew who is not in the self-built app's scope.
    `3005,woGhost000000000000000000000001,woGhost000000000000000000000001,${PROVIDER_AGENTID},left in 2024`,
  ].join('\n');

  step('Users → Import users → Upload a file: a bad file is refused line by line, nothing written', async () => {
    await page.goto(url('/console/users'));
    await page.getByTestId('import-upload').click();
    await page.waitForURL('**/console/users/import');
    const bad = 'id,name,open_userid,source_agentid\n3001,张三,woA,\nx,李四,woB,2000011\n';
    await page.setInputFiles('[data-testid=import-file]', { name: 'people.csv', mimeType: 'text/csv', buffer: Buffer.from(bad) });
    await page.getByTestId('import-preview-button').click();
    const preview = page.getByTestId('import-preview');
    await preview.waitFor();
    assert.equal(await preview.getAttribute('data-valid'), 'false');
    const errors = page.getByTestId('import-errors');
    assert.match(await errors.locator('tr[data-line="2"]').innerText(), /source_agentid/);
    assert.match(await errors.locator('tr[data-line="3"]').innerText(), /id“x”不是正整数/);
    assert.equal(await page.getByTestId('import-confirm').count(), 0, 'no confirm while anything is invalid');
    await shoot(page, '09-import-errors', { doc: true });
    await page.goto(url('/console/users'));
    await page.getByTestId('empty').waitFor();
  });

  step('the good file: the dry run shows who would be created, the confirm writes them', async () => {
    await page.goto(url('/console/users/import'));
    await page.setInputFiles('[data-testid=import-file]', { name: 'people.csv', mimeType: 'text/csv', buffer: Buffer.from(people()) });
    await page.getByTestId('import-preview-button').click();
    const preview = page.getByTestId('import-preview');
    await preview.waitFor();
    assert.equal(await preview.getAttribute('data-valid'), 'true');
    assert.equal(await preview.getAttribute('data-created'), '5');
    await shoot(page, '09-import-preview', { doc: true });
    await page.getByTestId('import-confirm').click();
    const done = page.getByTestId('import-done');
    await done.waitFor();
    assert.equal(await done.getAttribute('data-created'), '5');
    await page.goto(url('/console/users'));
    assert.equal(await page.getByTestId('total').innerText(), '5');
  });

  step('the first sync re-links them by the old app and reports who could not be re-linked', async () => {
    await page.goto(url('/console/sync'));
    await page.getByTestId('sync-now').click();
    await page.waitForURL(/\/console\/sync\/runs\/\d+/);
    await page.getByTestId('counts').waitFor({ timeout: 60_000 });
    assert.equal(await page.getByTestId('status').getAttribute('data-status'), 'succeeded');
    const relink = page.getByTestId('relink');
    await relink.waitFor();
    const unlinked = await page.getByTestId('unlinked').innerText();
    assert.match(unlinked, /#3005/);
    assert.match(unlinked, /woGhost/);
    for (const id of ['#3001', '#3002', '#3003', '#3004']) assert.ok(!unlinked.includes(id), `${id} was re-linked`);
    await shoot(page, '09-switch-report', { doc: true });
    // The same people, with their real names and their ids kept.
    await page.goto(url('/console/users'));
    const row = page.locator('tr[data-userid="zhangsan"]');
    assert.match(await row.innerText(), /张三/);
    assert.equal(await row.locator('a').getAttribute('href'), '/console/users/3001');
  });
});
