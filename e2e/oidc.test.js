// The bridge as an OpenID Connect provider, logged into by an independent, certified relying
// party: openid-client 6 (OpenID Certified), with ID-token signature checks on
// (enableNonRepudiationChecks) and plain http allowed for the loopback demo
// (allowInsecureRequests). It runs `wecom-bridge demo`, sets the tenant up over HTTP as an admin
// would (credentials, directory sync, WeCom sign-in on, an OIDC client), then logs 张三 in
// through the simulated WeCom: in the WeCom client and by QR, with a refresh and a logout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import * as client from 'openid-client';
import { startDemo } from './lib/product.js';

const WXWORK_UA = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 wxwork/4.1.20 MicroMessenger/7.0.1 Language/zh ColorScheme/Light';
const CHROME_UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36';
const REDIRECT = 'http://127.0.0.1:9/oidc/callback';
const AFTER_LOGOUT = 'http://127.0.0.1:9/signed-out';
const NEW_PASSWORD = 'correct horse battery staple';

/**
 * One HTTP request to a loopback server, whatever the URL's host name: the tenant lives on
 * `acme.localhost:<port>`, which this machine's resolver may not know, so the request goes to
 * 127.0.0.1 with the URL's host in the Host header (undici's fetch would replace it).
 * Returns a fetch `Response`, so it also serves as openid-client's customFetch.
 */
function loopback(url, init = {}) {
  const u = new URL(url);
  const headers = Object.fromEntries(new Headers(init.headers ?? {}));
  let body = init.body ?? null;
  if (body instanceof URLSearchParams) {
    headers['content-type'] ??= 'application/x-www-form-urlencoded;charset=UTF-8';
    body = body.toString();
  }
  headers.host = u.host;
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: u.port || 80, path: `${u.pathname}${u.search}`, method: init.method ?? 'GET', headers },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            for (const one of [v].flat()) if (one !== undefined) h.append(k, one);
          }
          const empty = [204, 205, 304].includes(res.statusCode);
          resolve(new Response(empty ? null : Buffer.concat(chunks), { status: res.statusCode, headers: h }));
        });
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error(`timeout: ${url}`)));
    req.on('error', reject);
    if (body !== null) req.write(body);
    req.end();
  });
}

/** A browser stand-in: its own cookies for the tenant's host, a User-Agent, no auto-redirects. */
class Browser {
  constructor(ua) {
    this.ua = ua;
    this.jar = new Map();
  }
  async request(url, { method = 'GET', form } = {}) {
    const headers = { 'user-agent': this.ua };
    const cookies = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    if (cookies) headers.cookie = cookies;
    let body;
    if (form) {
      body = new URLSearchParams(form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    const r = await loopback(url, { method, headers, body });
    for (const c of r.headers.getSetCookie()) {
      const [kv, ...attrs] = c.split(';');
      const i = kv.indexOf('=');
      const name = kv.slice(0, i).trim();
      if (attrs.some((a) => a.trim() === 'Max-Age=0')) this.jar.delete(name);
      else this.jar.set(name, kv.slice(i + 1));
    }
    const location = r.headers.get('location');
    return { status: r.status, location: location ? new URL(location, url).href : null, body: await r.text() };
  }
  get(url) { return this.request(url); }
  post(url, form) { return this.request(url, { method: 'POST', form }); }
}

const hidden = (body, name) => body.match(new RegExp(`name="${name}" value="([^"]*)"`))?.[1];
const testid = (body, id) => body.match(new RegExp(`data-testid="${id}">([^<]*)<`))?.[1];

let demo;
let issuer;
let rp; // { id, secret }

/** The admin's set-up, over HTTP as the console's forms send it. */
async function setUp() {
  demo = await startDemo({ name: 'oidc' });
  issuer = demo.base;
  const admin = new Browser(CHROME_UA);
  const login = async (password) => {
    const page = await admin.get(`${issuer}/console/login`);
    return admin.post(`${issuer}/console/login`, {
      csrf: hidden(page.body, 'csrf'), username: demo.username, password, next: '/console',
    });
  };
  let r = await login(demo.password);
  assert.equal(r.status, 303, r.body);
  const pw = await admin.get(`${issuer}/console/password`);
  r = await admin.post(`${issuer}/console/password`, {
    csrf: hidden(pw.body, 'csrf'), current: demo.password, password: NEW_PASSWORD, confirm: NEW_PASSWORD,
  });
  assert.equal(r.status, 303, r.body);
  r = await login(NEW_PASSWORD);
  assert.equal(r.status, 303, r.body);
  const csrf = hidden((await admin.get(`${issuer}/console`)).body, 'csrf');
  assert.ok(csrf, 'signed in to the console');
  r = await admin.post(`${issuer}/console/setup/2`, {
    csrf, corpid: demo.corpid, agentid: demo.agentid, secret: demo.secret,
  });
  assert.equal(r.status, 303, r.body);
  // New members are authorized on arrival, then the directory is synced.
  r = await admin.post(`${issuer}/console/sync/policy`, {
    csrf, new_user_status: 'authorized', max_disable_percent: '20', reconcile_minutes: '60',
  });
  assert.equal(r.status, 303, r.body);
  r = await admin.post(`${issuer}/console/sync/run`, { csrf });
  assert.equal(r.status, 303, r.body);
  const run = r.location;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const p = await loopback(`${run}/progress`, { headers: { cookie: [...admin.jar].map(([k, v]) => `${k}=${v}`).join('; ') } });
    const progress = await p.json();
    if (progress.finished) {
      assert.equal(progress.status, 'succeeded', JSON.stringify(progress));
      break;
    }
    assert.ok(Date.now() < deadline, 'the directory sync finishes within 60 s');
    await new Promise((res) => setTimeout(res, 200));
  }
  r = await admin.post(`${issuer}/console/settings/login`, { csrf, wecom: 'on' });
  assert.equal(r.status, 303, r.body);
  r = await admin.post(`${issuer}/console/oidc/clients`, {
    csrf, name: 'Certified RP', kind: 'confidential', redirect_uris: REDIRECT,
    post_logout_redirect_uris: AFTER_LOGOUT, id_token_alg: 'RS256',
  });
  assert.equal(r.status, 200, r.body);
  rp = { id: testid(r.body, 'new-client-id'), secret: testid(r.body, 'new-client-secret') };
  assert.ok(rp.id && rp.secret, 'the client id and its secret are shown once');
}

before(setUp, { timeout: 180_000 });
after(async () => { if (demo) await demo.stop(); });

/** openid-client's view of the tenant, with every ID token's signature checked. */
async function relyingParty(alg) {
  const config = await client.discovery(new URL(issuer), rp.id, rp.secret, client.ClientSecretBasic(rp.secret), {
    execute: [client.allowInsecureRequests],
    [client.customFetch]: loopback,
  });
  config[client.customFetch] = loopback;
  client.enableNonRepudiationChecks(config);
  assert.equal(config.serverMetadata().issuer, issuer);
  assert.ok(config.serverMetadata().id_token_signing_alg_values_supported.includes(alg));
  return config;
}

/**
 * The member's side of a login: opens the authorization URL, signs in at the simulated WeCom
 * as `userid` when sent there, and returns the URL the bridge finally redirects to (the RP's
 * callback, with code, state and iss).
 */
async function memberLogsIn(browser, authorizationUrl, userid = 'zhangsan') {
  let r = await browser.get(authorizationUrl.href);
  const seen = [];
  for (let hops = 0; hops < 6 && r.location; hops++) {
    seen.push(r.location);
    if (r.location.startsWith(REDIRECT)) return { url: new URL(r.location), seen };
    let next = r.location;
    if (next.startsWith(demo.simUrl)) next = `${next.split('#')[0]}&sim_userid=${userid}`;
    r = await browser.get(next);
  }
  assert.fail(`the login did not come back to the client: ${r.status} ${seen.join(' -> ')}\n${r.body.slice(0, 500)}`);
}

async function fullLogin(config, browser) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: 'openid profile email groups',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const { url: back, seen } = await memberLogsIn(browser, url);
  assert.equal(back.searchParams.get('iss'), issuer, 'RFC 9207 iss in the response');
  const tokens = await client.authorizationCodeGrant(config, back, {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
  });
  return { tokens, seen };
}

test('in-client login, userinfo, a refresh and a logout, checked by openid-client', async () => {
  const config = await relyingParty('RS256');
  const member = new Browser(WXWORK_UA);
  const { tokens, seen } = await fullLogin(config, member);
  assert.ok(seen.some((u) => u.includes('/connect/oauth2/authorize')), `silent in-client authorize: ${seen}`);
  const claims = tokens.claims();
  assert.equal(claims.iss, issuer);
  assert.equal(claims.aud, rp.id);
  assert.equal(claims.preferred_username, 'zhangsan');
  assert.equal(claims.name, '张三');
  assert.match(claims.sub, /^\d+$/, 'sub is the internal user id, not the WeCom userid');
  // The demo app is a post-2022-06-20 app: WeCom withholds email, and none is made up.
  assert.equal(claims.email, undefined);

  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.equal(info.preferred_username, 'zhangsan');
  assert.ok(Array.isArray(info.groups) && info.groups.length > 0, `groups: ${JSON.stringify(info.groups)}`);

  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token, 'refresh tokens rotate');
  assert.equal(refreshed.claims().sub, claims.sub);
  // The new pair works (replays of the old one are covered by crates/bridge/tests/oidc_e2e.rs).
  await client.fetchUserInfo(config, refreshed.access_token, claims.sub);

  const logout = client.buildEndSessionUrl(config, {
    id_token_hint: refreshed.id_token, post_logout_redirect_uri: AFTER_LOGOUT, state: 'bye',
  });
  const r = await member.get(logout.href);
  assert.equal(r.status, 303, r.body);
  assert.equal(r.location, `${AFTER_LOGOUT}?state=bye`);
  // Signed out: a silent authorization now answers login_required.
  const silent = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT, scope: 'openid', prompt: 'none', state: 's2',
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
  });
  const answer = await member.get(silent.href);
  const err = new URL(answer.location);
  assert.equal(err.searchParams.get('error'), 'login_required');
  await assert.rejects(
    client.authorizationCodeGrant(config, err, { expectedState: 's2', pkceCodeVerifier: 'x'.repeat(43) }),
    (e) => e.error === 'login_required',
  );
});

test('QR login in a browser, checked by openid-client', async () => {
  const config = await relyingParty('RS256');
  const { tokens, seen } = await fullLogin(config, new Browser(CHROME_UA));
  assert.ok(seen.some((u) => u.includes('/wwlogin/sso/login')), `QR login: ${seen}`);
  assert.equal(tokens.claims().preferred_username, 'zhangsan');
});

test('the relying party really checks ID-token signatures: a tampered one is refused', async () => {
  const config = await relyingParty('RS256');
  // The token response passes through a fetch that alters the ID token's claims.
  config[client.customFetch] = async (url, init) => {
    const r = await loopback(url, init);
    if (!String(url).endsWith('/oidc/token')) return r;
    const body = await r.json();
    const [h, p, sig] = body.id_token.split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url'));
    claims.name = 'Mallory';
    body.id_token = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${sig}`;
    return new Response(JSON.stringify(body), { status: r.status, headers: r.headers });
  };
  await assert.rejects(fullLogin(config, new Browser(WXWORK_UA)), (e) => /signature/i.test(`${e.message} ${e.cause ?? ''}`));
});
