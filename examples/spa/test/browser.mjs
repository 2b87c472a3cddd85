// Drives Debian's Chromium through one case of the SPA example and prints what the page showed,
// as one JSON line. The Go end-to-end test (e2e/spa_test.go) starts LiveKit, token-service and a
// static server for the page, runs this once per case, and checks LiveKit's side.
//
// Environment: PAGE_URL (the page, with its query), SCREENSHOT (a .png path), EXPECT (the
// data-state the case ends in). Exit status 1 when the page did not reach EXPECT in time.
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const { PAGE_URL, SCREENSHOT, EXPECT } = process.env;
const profile = mkdtempSync(join(tmpdir(), 'spa-chromium-'));
// Before launch: WebRTC may only use the default interface, never the machine's other addresses.
mkdirSync(join(profile, 'Default'));
writeFileSync(join(profile, 'Default', 'Preferences'),
  JSON.stringify({ webrtc: { ip_handling_policy: 'default_public_interface_only' } }));

// The whole command line, since Chromium honours only the last --disable-features and Playwright
// adds its own; these keep it quiet and local.
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  ignoreDefaultArgs: true,
  timeout: 30000,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
    '--disable-features=WebRtcHideLocalIpsWithMdns',
    '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
    `--user-data-dir=${profile}`, '--remote-debugging-pipe', 'about:blank',
  ],
});
const consoleErrors = [];
const pageErrors = [];
let state = '';
let error = '';
try {
  const page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(PAGE_URL);
  await page.waitForFunction((want) => document.body.dataset.state === want || document.body.dataset.state === 'error',
    EXPECT, { timeout: 20000 }).catch(() => {});
  state = await page.evaluate(() => document.body.dataset.state || '');
  error = await page.evaluate(() => document.body.dataset.error || '');
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify({ state, error, consoleErrors, pageErrors }));
process.exit(state === EXPECT ? 0 : 1);
