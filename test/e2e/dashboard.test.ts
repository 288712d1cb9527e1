// The dashboard in a real headless browser (Debian chromium driven by playwright-core) against the
// service on 127.0.0.1 with a seeded world: sign in with a token, see the chart, filter discrepancies,
// drill down, approve one, export CSV; a screenshot of the overview goes to test-artifacts/.
// Skipped (with a message) only when /usr/bin/chromium is absent: `apt-get install -y chromium`.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { Browser } from 'playwright-core';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import { buildServer } from '../../src/service/server.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { seedWorld, testConfig, type Seeded } from '../service/seed.ts';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`[e2e] SKIPPED: ${CHROMIUM} not found — install it with: apt-get update && apt-get install -y chromium`);

const ARTIFACTS = path.resolve('test-artifacts');
const VIEWER = 'viewer-e2e-token-123456';
const OPERATOR = 'operator-e2e-token-123456';
const env: NodeJS.ProcessEnv = { VIEWER_TOKEN: VIEWER, OPERATOR_TOKEN: OPERATOR, PS_WEBHOOK_TOKEN: 'x-unused-token', STRIPE_API_KEY: 'sk_x', STRIPE_WEBHOOK_SECRET: 'whsec_x', CB_API_KEY: 'k', CB_WH_USER: 'u', CB_WH_PASS: 'p' };

describe.skipIf(!haveChromium)('dashboard in headless chromium', () => {
  let t: TestDb;
  let app: FastifyInstance;
  let base: string;
  let browser: Browser;
  let seeded: Seeded;

  beforeAll(async () => {
    t = await createTestDb();
    seeded = await seedWorld(t.db);
    ({ app } = await buildServer({ db: t.db, config: testConfig(), log: silentLogger, env }));
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    mkdirSync(ARTIFACTS, { recursive: true });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await t?.destroy();
  });

  it('signs in as operator, shows the chart, filters, drills down and approves; exports CSV', async () => {
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, acceptDownloads: true });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });

    await page.goto(`${base}/dashboard/`);
    await page.locator('#login').waitFor({ state: 'visible' });

    // a wrong token is refused with the server's message
    await page.fill('#token', 'wrong-token');
    await page.click('#login-form button[type=submit]');
    await expect.poll(() => page.textContent('#login-error')).toMatch(/invalid token/);

    await page.fill('#token', OPERATOR);
    await page.click('#login-form button[type=submit]');
    await page.locator('#overview-chart').waitFor({ state: 'visible' });
    expect(await page.textContent('#whoami')).toBe('operator');
    // the token lives in sessionStorage only
    expect(await page.evaluate(() => sessionStorage.getItem('commission-sync.token'))).toBe(OPERATOR);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);

    // chart: 2 months × 3 series bars; values carried on the bars
    const bars = page.locator('#overview-chart rect.bar[data-category]');
    expect(await bars.count()).toBe(6);
    // Feb owed: partnerstack 3000 + awin 500 = 3500 cents
    expect(await page.getAttribute('#overview-chart rect[data-series=owed][data-category="2025-02"]', 'data-value')).toBe('3500');
    expect(await page.textContent('#kpi-owed .kpi-value')).toBe('$55.00'); // 2000 + 3000 + 500 = 5500 cents
    expect(await page.locator('#overview-table tbody tr').count()).toBe(3);
    await page.screenshot({ path: path.join(ARTIFACTS, 'overview.png'), fullPage: true });

    // CSV export of the overview table
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=overview-table-csv]')]);
    const csvPath = path.join(ARTIFACTS, 'overview.csv');
    await download.saveAs(csvPath);
    const csv = readFileSync(csvPath, 'utf8');
    expect(csv.split('\r\n')[0]).toBe('period,network,reportedUsdMinor,owedUsdMinor,collectedUsdMinor,deltaUsdMinor');
    expect(csv).toContain('2025-02,partnerstack,0,3000,15000,-3000');

    // discrepancies: open by default (2), then filter by kind
    await page.click('a[data-nav=discrepancies]');
    await page.locator('#discrepancies-table').waitFor();
    expect(await page.locator('#discrepancies-table tbody tr').count()).toBe(2);
    await page.selectOption('[data-testid=filter-kind]', 'missing_in_network');
    await expect.poll(() => page.locator('#discrepancies-table tbody tr').count()).toBe(1);
    expect(await page.textContent('#discrepancy-total')).toBe('1 matching');
    expect(page.url()).toContain('kind=missing_in_network');

    // drill-down: billing facts, network record, rule explanation side by side
    await page.click('#discrepancies-table tbody tr');
    await page.locator('#rule-explanation').waitFor();
    expect(await page.textContent('#billing-facts')).toContain('in_feb');
    expect(await page.textContent('#billing-facts')).toContain('re_1');
    expect(await page.textContent('#network-record')).toContain('none');
    expect(await page.textContent('#rule-explanation')).toContain('20000 × 0.20000000 = 4000 USD');
    expect(await page.textContent('#detail-status')).toBe('open');

    await page.click('#approve');
    await expect.poll(() => page.textContent('#detail-status')).toBe('approved');
    await page.screenshot({ path: path.join(ARTIFACTS, 'discrepancy.png'), fullPage: true });
    const row = await t.db('discrepancies').where({ id: seeded.discrepancies.febMissing }).first();
    expect(row).toMatchObject({ status: 'approved', decided_by: 'token:OPERATOR_TOKEN' });

    // ignoring needs a reason
    await page.goto(`${base}/dashboard/#/discrepancies/${seeded.discrepancies.janMismatch}`);
    await page.locator('#ignore').waitFor();
    await page.click('#ignore');
    await expect.poll(() => page.textContent('#toast')).toMatch(/reason/);
    await page.fill('#decision-reason', 'network rounding, accepted');
    await page.click('#ignore');
    await expect.poll(() => page.textContent('#detail-status')).toBe('ignored');

    // partner page: tier over time chart, commissions, payouts
    await page.goto(`${base}/dashboard/#/partners/${seeded.alice}`);
    await page.locator('#tier-chart').waitFor();
    expect(await page.locator('#commissions-table tbody tr').count()).toBe(3);
    expect(await page.locator('#payouts-table tbody tr').count()).toBe(1);
    await page.screenshot({ path: path.join(ARTIFACTS, 'partner.png'), fullPage: true });

    // corrections: the next push (dry run) and the history
    await page.click('a[data-nav=corrections]');
    await page.locator('#corrections-table').waitFor();
    expect(await page.locator('#push-plan-table-wrap').count()).toBe(1);
    expect(await page.locator('#push-now').count()).toBe(1);

    // sync status with last errors
    await page.click('a[data-nav=sync]');
    await page.locator('#connections-table').waitFor();
    expect(await page.textContent('#connections-table')).toContain('HTTP 401 from Awin');

    // the only failed request is the deliberate wrong-token sign-in (401)
    expect(errors.filter((e) => !/status of 401/.test(e))).toEqual([]);
    await context.close();
  });

  it('a viewer sees data but no approve/ignore controls', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${base}/dashboard/`);
    await page.fill('#token', VIEWER);
    await page.click('#login-form button[type=submit]');
    await page.locator('#overview-chart').waitFor();
    await page.goto(`${base}/dashboard/#/discrepancies/${seeded.discrepancies.janMismatch}`);
    await page.locator('#rule-explanation').waitFor();
    expect(await page.locator('#approve').count()).toBe(0);
    expect(await page.textContent('#decision')).toMatch(/operator token/);
    await context.close();
  });

  it('pages through a list longer than a page and exports every page', async () => {
    // Three more partners (five in all), shown one per page.
    await t.db('partners').insert(['carol', 'dave', 'erin'].map((n) => ({ partner_key: `${n}@example.com`, name: n, email: `${n}@example.com`, email_normalized: `${n}@example.com` })));
    const total = Number((await t.db('partners').count<Array<{ n: string }>>('* as n'))[0]!.n);
    const context = await browser.newContext({ acceptDownloads: true });
    const page = await context.newPage();
    await page.goto(`${base}/dashboard/`);
    await page.fill('#token', VIEWER);
    await page.click('#login-form button[type=submit]');
    await page.locator('#overview-chart').waitFor();
    await page.goto(`${base}/dashboard/#/partners?limit=2`);
    await page.locator('#partners-table').waitFor();
    expect(await page.textContent('[data-testid=partners-table-range]')).toBe(`rows 1–2 of ${total}`);
    expect(await page.isDisabled('[data-testid=partners-table-prev]')).toBe(true);
    const firstPage = await page.locator('#partners-table tbody tr td:first-child').allTextContents();

    await page.click('[data-testid=partners-table-next]');
    await expect.poll(() => page.textContent('[data-testid=partners-table-range]')).toBe(`rows 3–4 of ${total}`);
    expect(page.url()).toMatch(/limit=2.*offset=2|offset=2.*limit=2/);
    const secondPage = await page.locator('#partners-table tbody tr td:first-child').allTextContents();
    expect(secondPage.some((id) => firstPage.includes(id))).toBe(false);

    await page.click('[data-testid=partners-table-next]');
    await expect.poll(() => page.textContent('[data-testid=partners-table-range]')).toBe(`rows 5–5 of ${total}`);
    expect(await page.isDisabled('[data-testid=partners-table-next]')).toBe(true);

    // "Export all" holds every partner, not only the page shown.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=partners-table-csv-all]')]);
    const csvPath = path.join(ARTIFACTS, 'partners-all.csv');
    await download.saveAs(csvPath);
    const lines = readFileSync(csvPath, 'utf8').trim().split('\r\n');
    expect(lines).toHaveLength(total + 1);
    expect(lines.slice(1).map((l) => l.split(',')[0]).sort()).toEqual((await t.db('partners').select('id')).map((r: { id: number | string }) => String(r.id)).sort());

    await page.click('[data-testid=partners-table-prev]');
    await expect.poll(() => page.textContent('[data-testid=partners-table-range]')).toBe(`rows 3–4 of ${total}`);
    await context.close();
  });
});
