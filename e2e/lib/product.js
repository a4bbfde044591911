// Starts the product the way a newcomer does: `wecom-bridge demo`, on free ports, in a fresh
// data directory, and reads what it prints (console URL, one-time password, CorpID/AgentId/
// Secret, simulator URL). Also runs the operator CLI against the same data directory.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ARTIFACTS = path.join(ROOT, 'artifacts');
const TARGET = process.env.CARGO_TARGET_DIR ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR) : path.join(ROOT, 'target');
const BIN = path.join(TARGET, 'debug', 'wecom-bridge');

let built = false;

/** `cargo build -p wecom-bridge` once per test process (a no-op when nothing changed). */
export function buildOnce() {
  if (built || process.env.E2E_SKIP_BUILD === '1') return;
  const r = spawnSync('cargo', ['build', '--quiet', '-p', 'wecom-bridge'], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`cargo build -p wecom-bridge failed (exit ${r.status})`);
  built = true;
}

/**
 * Runs `wecom-bridge demo --port 0 --sim-port 0 --data-dir <tmp>` and waits for its banner.
 * @param {{edition?: string, name?: string}} opts
 */
export async function startDemo({ edition = 'professional', name = 'demo', dataDir: given } = {}) {
  buildOnce();
  const dir = given ? path.dirname(given) : mkdtempSync(path.join(tmpdir(), 'wecom-bridge-e2e-'));
  const dataDir = given || path.join(dir, 'data');
  const args = ['demo', '--port', '0', '--sim-port', '0', '--data-dir', dataDir, '--edition', edition];
  const child = spawn(BIN, args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, WECOM_BRIDGE_LOG: process.env.WECOM_BRIDGE_LOG || 'info,sqlx=warn' },
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { err += d; });
  const banner = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`demo did not print its banner within 90 s\nstdout:\n${out}\nstderr:\n${err}`));
    }, 90_000);
    child.stdout.on('data', (d) => {
      out += d;
      if (/Simulated WeCom:.*\n/.test(out)) { clearTimeout(timer); resolve(out); }
    });
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`demo exited early (${code ?? sig})\nstdout:\n${out}\nstderr:\n${err}`));
    });
  });
  const grab = (re, what) => {
    const m = banner.match(re);
    if (!m) throw new Error(`demo banner has no ${what}:\n${banner}`);
    return m[1];
  };
  const consoleUrl = grab(/Admin console:\s+(\S+)/, 'console URL');
  const resumed = /\(resumed:/.test(banner);
  const base = new URL(consoleUrl).origin;
  const demo = {
    dir,
    dataDir,
    consoleUrl,
    base,
    port: Number(new URL(base).port),
    resumed,
    username: resumed ? 'admin' : grab(/username (\S+)\s+one-time password/, 'username'),
    password: resumed ? null : grab(/one-time password (\S+)/, 'one-time password'),
    corpid: grab(/CorpID\s+(\S+)/, 'CorpID'),
    agentid: grab(/AgentId\s+(\S+)/, 'AgentId'),
    secret: grab(/Secret\s+(\S+)/, 'Secret'),
    simUrl: grab(/Simulated WeCom:\s+(\S+)/, 'simulator URL'),
    sampleUrl: grab(/Sample app \(forward auth[^)]*\):\s+(\S+)/, 'sample app URL'),
    banner,
    /** What the demo printed so far (its log goes to stdout). */
    log: () => `${out}${err}`,
    /** `wecom-bridge <args>` against the demo's data directory (SQLite WAL allows this live). */
    operator(...cliArgs) {
      // Not WECOM_BRIDGE_LOG: the config loader reads every WECOM_BRIDGE_* variable as a
      // setting and refuses `log` (reported; the demo does not load the config).
      const env = { ...process.env, WECOM_BRIDGE_DATA_DIR: dataDir };
      delete env.WECOM_BRIDGE_LOG;
      const r = spawnSync(BIN, cliArgs, { cwd: ROOT, encoding: 'utf8', env });
      if (r.status !== 0) {
        throw new Error(`wecom-bridge ${cliArgs.join(' ')} failed (${r.status}):\n${r.stdout}${r.stderr}`);
      }
      return r.stdout;
    },
    /**
     * Stops the demo (SIGTERM, or `signal`: SIGINT is Ctrl-C) and returns how it exited;
     * SIGKILL after 10 s. The data directory is removed unless `keepData`.
     */
    async stop({ signal = 'SIGTERM', keepData = false } = {}) {
      let exit = { code: child.exitCode, signal: child.signalCode, killed: false };
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', (code, sig) => r({ code, signal: sig })));
        child.kill(signal);
        let killed = false;
        const t = setTimeout(() => { killed = true; child.kill('SIGKILL'); }, 10_000);
        exit = { ...(await exited), killed };
        clearTimeout(t);
      }
      try {
        mkdirSync(ARTIFACTS, { recursive: true });
        writeFileSync(path.join(ARTIFACTS, `${name}.log`), `${out}\n--- stderr ---\n${err}`);
      } catch { /* artifacts are best effort */ }
      if (!keepData) rmSync(dir, { recursive: true, force: true });
      return exit;
    },
  };
  return demo;
}
