// The README's first command: `wecom-bridge demo` prints what a newcomer needs, Ctrl-C stops
// both servers cleanly, and a second run on the same --data-dir resumes it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startDemo } from './lib/product.js';

const refused = (port) =>
  new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(false); });
    s.once('error', () => resolve(true));
  });

test('demo prints the console, the one-time password, the app values and the simulator; Ctrl-C stops both; a second run resumes', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'wecom-bridge-e2e-demo-'));
  const dataDir = path.join(dir, 'data');
  try {
    const first = await startDemo({ name: 'demo-first', dataDir });
    assert.match(first.consoleUrl, /^http:\/\/acme\.localhost:\d+\/console$/);
    assert.match(first.password, /^[A-Za-z0-9]{4}(-[A-Za-z0-9]{4}){3}$/);
    assert.equal(first.corpid, 'ww7d1f3a2b9c4e5f60');
    assert.equal(first.agentid, '1000002');
    assert.ok(first.secret.length >= 32);
    assert.match(first.simUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    const r = await fetch(`${first.simUrl}/cgi-bin/gettoken?corpid=${first.corpid}&corpsecret=${first.secret}`);
    assert.equal((await r.json()).errcode, 0, 'the printed secret works against the simulator');
    const simPort = Number(new URL(first.simUrl).port);
    const samplePort = Number(new URL(first.sampleUrl).port);
    assert.match(first.sampleUrl, /^http:\/\/acme\.localhost:\d+\/$/);

    const exit = await first.stop({ signal: 'SIGINT', keepData: true });
    assert.deepEqual(exit, { code: 0, signal: null, killed: false }, 'Ctrl-C exits 0 within 10 s');
    assert.ok(await refused(first.port), 'the bridge port is closed');
    assert.ok(await refused(simPort), 'the simulator port is closed');
    assert.ok(await refused(samplePort), 'the sample app port is closed');

    const second = await startDemo({ name: 'demo-second', dataDir });
    assert.ok(second.resumed, `the second run resumes the data directory:\n${second.banner}`);
    assert.match(second.banner, /tenant reset-password default/);
    assert.doesNotMatch(second.banner, /one-time password [A-Za-z0-9]{4}-/);
    assert.deepEqual(await second.stop({ keepData: true }), { code: 0, signal: null, killed: false }, 'SIGTERM exits 0');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
