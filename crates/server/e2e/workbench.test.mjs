// End-to-end in headless Chromium (Debian's chromium, driven by playwright-core): a village
// information officer signs in on a phone, sees the follow-up visit waiting and records it;
// the room leader sees the case move and closes it. Screenshots of the to-do list and the
// case page are written to $CASEFLOW_E2E_OUT (default: target/e2e) as test artefacts.
//
// Needs: CASEFLOW_BIN (the `caseflow` binary) and CASEFLOW_FIXTURE (the fixture example's
// binary). Run with `node --test` from this directory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const BIN = process.env.CASEFLOW_BIN;
const FIXTURE = process.env.CASEFLOW_FIXTURE;
const OUT = resolve(process.env.CASEFLOW_E2E_OUT || '../../../target/e2e');
const PASSWORD = 'correct horse battery';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let server, base, caseId, browser;

// A port the OS says is free (a random guess could collide with another job's server).
function freePort() {
  return new Promise((ok, fail) => {
    const probe = createServer();
    probe.on('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => ok(port));
    });
  });
}

// Polls /readyz until the server says it caught up; fails at once if the server exits.
async function waitReady(url, child) {
  let exited = null;
  child.once('exit', (code) => { exited = code; });
  for (let i = 0; i < 600; i++) {
    if (exited !== null) throw new Error(`caseflow serve exited with ${exited}`);
    try {
      const r = await fetch(url + '/readyz');
      if (r.status === 200) return;
    } catch (e) { /* not listening yet */ }
    await new Promise((ok) => setTimeout(ok, 100));
  }
  throw new Error('caseflow serve never became ready');
}

before(async () => {
  assert.ok(BIN && FIXTURE, 'set CASEFLOW_BIN and CASEFLOW_FIXTURE');
  mkdirSync(OUT, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'caseflow-e2e-'));
  caseId = execFileSync(FIXTURE, [dir], { encoding: 'utf8' }).trim();
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(BIN, ['serve', '--db', join(dir, 'e2e.db'), '--listen', `127.0.0.1:${port}`], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      CASEFLOW_WATCHER_INTERVAL_SECONDS: '0',
      CASEFLOW_LOG: 'warn',
      CASEFLOW_MASTER_KEY_FILE: join(dir, 'e2e.master.key'),
    },
  });
  await waitReady(base, server);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ARGS });
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill('SIGTERM');
});

async function signIn(page, user) {
  await page.goto(base + '/login');
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', PASSWORD);
  await page.click('button[type=submit]');
  await page.waitForURL(/\/todo/);
}

test('the village officer records the site visit; the room leader closes the case', async () => {
  // The village officer, on a phone.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true });
  const village = await phone.newPage();
  await signIn(village, 'wang.renmin');
  const item = village.locator(`article[data-case="${caseId}"]`).filter({ hasText: '实地回访' });
  await assert.doesNotReject(item.waitFor(), 'the site visit waits on the village officer');
  await village.screenshot({ path: join(OUT, 'todo-village-officer-phone.png'), fullPage: true });
  await item.locator('summary[data-command=RecordFollowUpVisit]').click();
  const visitForm = item.locator('details:has(summary[data-command=RecordFollowUpVisit]) form');
  await visitForm.locator('select[name="f/result"]').selectOption('held');
  await visitForm.locator('textarea[name="f/notes"]').fill('现场查看，路灯已修复，夜间照明正常。');
  await visitForm.locator('button[type=submit]').click();
  await village.waitForURL(/done=/);
  assert.match(await village.locator('.flash.good').innerText(), /记录回访/);
  // Its satisfaction question, asked of the reporter, is on the same list.
  const ask = village.locator(`article[data-case="${caseId}"]`).filter({ hasText: '征询满意度' });
  await ask.locator('summary[data-command=RecordSatisfaction]').click();
  const satForm = ask.locator('details:has(summary[data-command=RecordSatisfaction]) form');
  await satForm.locator('select[name="f/satisfaction"]').selectOption('satisfied');
  await satForm.locator('textarea[name="f/comment"]').fill('反映人表示满意。');
  await satForm.locator('button[type=submit]').click();
  await village.waitForURL(/done=/);
  assert.equal(await village.locator(`article[data-case="${caseId}"]`).count(), 0, 'nothing left for the village officer');
  await village.screenshot({ path: join(OUT, 'todo-village-officer-after.png'), fullPage: true });

  // The room leader, at a desk.
  const desk = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const leader = await desk.newPage();
  await signIn(leader, 'li.room1');
  await leader.screenshot({ path: join(OUT, 'todo-room-leader.png'), fullPage: true });
  // The zone's overview shows the case moved on: the visit is recorded and closing waits.
  await leader.click('nav a[href="/overview"]');
  await leader.waitForURL(/\/overview/);
  await leader.screenshot({ path: join(OUT, 'overview-room-leader.png'), fullPage: true });
  const row = leader.locator(`tr[data-case="${caseId}"]`);
  await assert.doesNotReject(row.waitFor({ timeout: 5000 }), 'the overview lists the case');
  assert.match(await row.innerText(), /办结/, 'closing is what the case waits for');
  assert.match(await row.innerText(), /2026-\d{4}/, 'under its human number');
  await row.locator('a').click();
  await leader.waitForURL(new RegExp(`/cases/${caseId}`));
  const timeline = await leader.locator('section:has(h2:text("办理记录"))').innerText();
  assert.match(timeline, /记录回访/, 'the timeline shows the visit');
  assert.match(timeline, /满意度/, 'and the satisfaction');
  assert.match(timeline, /人民社区/, 'by the village, named');
  await leader.screenshot({ path: join(OUT, 'case-before-close.png'), fullPage: true });
  await leader.locator('summary[data-command=CloseCase]').click();
  const close = leader.locator('details:has(summary[data-command=CloseCase]) form');
  await close.locator('textarea[name="f/summary"]').fill('路灯已修复，回访属实，群众满意，予以办结。');
  await close.locator('button[type=submit]').click();
  await leader.waitForURL(/done=/);
  assert.match(await leader.locator('.summary .badge.stage').innerText(), /已办结/);
  assert.match(await leader.locator('section:has(h2:text("当前在办"))').innerText(), /无人在办/);
  await leader.screenshot({ path: join(OUT, 'case-closed.png'), fullPage: true });
  const text = await leader.content();
  assert.ok(!text.includes('13800000000'), 'no page shows the reporter contact');
});
