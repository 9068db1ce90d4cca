/**
 * The dashboard served by the manager at `/`, driven in headless Chromium (playwright-core, on
 * the system's Chromium) against a real manager and two services: sign in with a token, create
 * an observer through the form built from its kind's schema, see it reach Processing and move
 * off a killed service without a reload, pause, resume, edit its params, page through a long
 * list, and delete it. Each page is saved as a screenshot in test/screenshots/ (gitignored).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT, World, type ServiceHandle } from '@vigil/testkit';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOTS = path.join(ROOT, 'test', 'screenshots');
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

describe('dashboard', { timeout: 240_000 }, () => {
  let world: World;
  let browser: Browser;
  let page: Page;
  let base: string;
  let services: ServiceHandle[];
  let observerId: string;
  const requested: string[] = [];
  const pageErrors: string[] = [];

  const shot = (name: string) => page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
  const statusShown = (status: string) => page.locator(`[data-field=status] [data-status=${status}]`).waitFor();
  /** Navigates inside the page (a hash change), as a click on the dashboard's own links does. */
  const go = (hash: string) =>
    page.evaluate((target) => {
      (globalThis as unknown as { location: { hash: string } }).location.hash = target;
    }, hash);

  before(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `the dashboard test drives Chromium, and there is none at ${CHROMIUM}: install it with ` +
          '`apt-get install -y chromium` (Debian; .ci/run does so), or set CHROMIUM_PATH to a Chromium or Chrome binary',
      );
    }
    mkdirSync(SCREENSHOTS, { recursive: true });
    world = await World.create();
    await world.startManager();
    services = [
      await world.startService('dash-a', { CAPACITY: '80' }),
      await world.startService('dash-b', { CAPACITY: '80' }),
    ];
    base = world.apiUrl.replace(/\/api\/v1$/, '');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(20_000);
    page.on('request', (request) => requested.push(request.url()));
    page.on('pageerror', (err) => pageErrors.push(err.message));
  });

  after(async () => {
    await browser?.close();
    await world?.close();
  });

  it('serves the page without a token, and signs in with one kept in the tab only', async () => {
    const response = await page.goto(`${base}/`);
    assert.equal(response?.status(), 200);
    assert.match(response?.headers()['content-security-policy'] ?? '', /script-src 'self'/);
    await page.fill('#token', 'not-a-token');
    await page.click('#login button[type=submit]');
    await page.getByText('That token is not valid.').waitFor();

    await page.fill('#token', world.adminToken);
    await page.click('#login button[type=submit]');
    await page.locator('#counts a.tile[data-status=Processing]').waitFor();
    await page.locator('#service-cards [data-service-id]').nth(1).waitFor();
    await page.locator('#feed-state.live').waitFor();
    const kept = await page.evaluate(() =>
      (globalThis as unknown as { sessionStorage: { getItem(key: string): string | null } }).sessionStorage.getItem(
        'vigil.token',
      ),
    );
    assert.equal(kept, world.adminToken);
  });

  it('creates an observer through the form built from the kind schema, and shows it Processing live', async () => {
    await page.click('[data-nav=new]');
    await page.locator('#create-kind option[value=ticker]').waitFor({ state: 'attached' });
    // Nested objects get fields of their own, a secret a password field, an array JSON text.
    await page.selectOption('#create-kind', 'secretive');
    assert.equal(await page.locator('[id="params.auth.apiKey"]').getAttribute('type'), 'password');
    assert.equal(await page.locator('[id="params.accounts"]').inputValue(), '[]');
    await page.selectOption('#create-kind', 'ticker');
    const interval = page.locator('[id="params.intervalMs"]');
    assert.equal(await interval.getAttribute('type'), 'number');
    assert.equal(await interval.getAttribute('step'), '1');
    assert.equal(await interval.getAttribute('min'), '10');
    assert.equal(await interval.evaluate((el) => (el as unknown as { required: boolean }).required), true);
    await page.fill('#create-name', 'dash-ticker');
    await shot('create');

    // The form refuses an empty required field before anything is sent.
    await page.click('#create-submit');
    assert.match(page.url(), /#\/new/);
    await interval.fill('200');
    await page.click('#create-submit');
    await page.waitForURL(/#\/observers\/[0-9a-f-]{36}$/);
    observerId = UUID.exec(page.url())![0];
    assert.equal((await world.observer(observerId)).status !== undefined, true);
    await statusShown('Processing');
    await page.locator('#observations li code').first().waitFor();
    assert.match(await page.locator('#observations').innerText(), /"seq":\d+/);
    assert.match(await page.locator('#timeline').innerText(), /started/);
  });

  it('shows the observer moving off a killed service without a reload', async () => {
    await page.evaluate(() => {
      (globalThis as unknown as { sameDocument: boolean }).sameDocument = true;
    });
    const running = await world.waitForStatus(observerId, 'Processing');
    const victim = services.find((s) => s.id === running.serviceId)!;
    const survivor = services.find((s) => s.id !== running.serviceId)!;
    await page.locator(`[data-field=service] [data-service-id="${victim.id}"]`).waitFor();
    victim.process.signal('SIGKILL');

    await page.locator(`[data-field=service] [data-service-id="${survivor.id}"]`).waitFor({ timeout: 30_000 });
    await statusShown('Processing');
    assert.equal(await page.locator('[data-field=service]').innerText(), survivor.name);
    assert.equal(
      await page.evaluate(() => (globalThis as unknown as { sameDocument?: boolean }).sameDocument),
      true,
      'the page was not reloaded',
    );
    await shot('observer');

    await page.click('[data-nav=overview]');
    await page.locator('#feed .feed-service', { hasText: `service ${victim.name} died` }).waitFor();
    await page.locator('#feed .feed-observer', { hasText: 'dash-ticker' }).first().waitFor();
    await page.locator(`#service-cards [data-service-id="${survivor.id}"]`).waitFor();
    await page.locator(`#service-cards [data-service-id="${victim.id}"]`).waitFor({ state: 'detached' });
    assert.equal(await page.locator('#counts a.tile[data-status=Processing] .count').innerText(), '1');
    await shot('overview');
  });

  it('pauses, resumes and edits the params of the observer', async () => {
    await page.locator(`#feed a[href="#/observers/${observerId}"]`).first().click();
    await statusShown('Processing');

    await page.click('#action-pause');
    await statusShown('Paused');
    assert.equal(await page.locator('#action-pause').isDisabled(), true);
    assert.equal((await world.observer(observerId)).status, 'Paused');

    await page.click('#action-resume');
    await statusShown('Processing');
    assert.match(await page.locator('#timeline').innerText(), /resumed/);

    await page.click('#action-edit');
    const interval = page.locator('#edit-form [id="params.intervalMs"]');
    assert.equal(await interval.inputValue(), '200', 'the editor starts from the current params');
    await interval.fill('500');
    await page.click('#edit-form button[type=submit]');
    await page.locator('#observer-params', { hasText: '"intervalMs": 500' }).waitFor();
    await page.locator('#timeline', { hasText: 'params-changed' }).waitFor();
    const observer = (await world.api<{ params: { intervalMs: number } }>('GET', `/observers/${observerId}`)).body;
    assert.equal(observer.params.intervalMs, 500);
  });

  it('lists observers a page at a time, filtered', async () => {
    for (let i = 0; i < 55; i++) await world.createTicker(`bulk-${String(i).padStart(2, '0')}`, 60_000);
    await page.click('[data-nav=observers]');
    await page.fill('#filter-name', 'bulk-*');
    await page.locator('#observer-rows tr').first().filter({ hasText: 'bulk-00' }).waitFor();
    await page.locator('#page-info', { hasText: 'page 1 · 50 shown' }).waitFor();
    assert.equal(await page.locator('#observer-rows tr').count(), 50);
    assert.equal(await page.locator('#observer-rows', { hasText: 'dash-ticker' }).count(), 0);
    await page.click('#next-page');
    await page.locator('#page-info', { hasText: 'page 2 · 5 shown' }).waitFor();
    assert.equal(await page.locator('#next-page').isDisabled(), true);
    await page.click('#prev-page');
    await page.locator('#page-info', { hasText: 'page 1 · 50 shown' }).waitFor();

    await page.fill('#filter-name', '');
    await page.selectOption('#filter-kind', 'ticker');
    await page.selectOption('#filter-status', 'Processing');
    await page.locator(`#observer-rows tr[data-observer-id="${observerId}"]`).waitFor();
    assert.match(page.url(), /status=Processing/);
    await shot('observers');
  });

  it('stays quick with thousands of observers: one page of them, counts from the database', async () => {
    // Written as an outside party would, so that the fleet need not run them: paused, on no service.
    await world.sql(
      `INSERT INTO observers (id, name, kind, pool, params, status, created_at, updated_at)
       SELECT gen_random_uuid(), 'many-' || lpad(i::text, 4, '0'), 'ticker', 'default', '{"intervalMs":60000}',
              'Paused', now() + i * interval '1 millisecond', now()
       FROM generate_series(1, 2000) AS i`,
    );
    const counts = await world.api<{ byStatus: Record<string, number> }>('GET', '/observers/counts');
    assert.equal(counts.body.byStatus.Paused, 2000);
    await page.click('[data-nav=overview]');
    await page.locator('#counts a.tile[data-status=Paused] .count', { hasText: '2000' }).waitFor();

    const started = Date.now();
    await go('#/observers?status=Paused');
    await page.locator('#observer-rows tr').first().filter({ hasText: 'many-0001' }).waitFor();
    const took = Date.now() - started;
    assert.equal(await page.locator('#observer-rows tr').count(), 50);
    assert.equal(await page.locator('#next-page').isDisabled(), false);
    assert.ok(took < 3_000, `the first page of 2,000 took ${took} ms`);
  });

  it('shows services and kinds', async () => {
    await page.click('[data-nav=services]');
    const survivor = services.find((s) => s.process.running)!;
    const row = page.locator(`#service-rows tr[data-service-id="${survivor.id}"]`);
    await row.waitFor();
    assert.match(await row.innerText(), /Alive[\s\S]*80[\s\S]*MB/);
    assert.equal(await page.locator('#service-rows tr').count(), 1, 'the dead one only with "show dead"');
    await page.check('#show-dead');
    await page.locator('#service-rows [data-status=Dead]').waitFor();
    await shot('services');

    await page.click('[data-nav=kinds]');
    const ticker = page.locator('section[data-kind=ticker]');
    await ticker.waitFor();
    assert.match(await ticker.innerText(), /intervalMs/);
    await shot('kinds');
  });

  it('deletes the observer', async () => {
    await go(`#/observers/${observerId}`);
    await statusShown('Processing');
    page.once('dialog', (dialog) => void dialog.accept());
    await page.click('#action-delete');
    await statusShown('Deleted');
    assert.equal((await world.observer(observerId)).status, 'Deleted');
    assert.equal(await page.locator('#action-delete').isDisabled(), true);
  });

  it('never puts the token in a URL, and the page raised no error', () => {
    assert.deepEqual(pageErrors, []);
    assert.ok(requested.length > 20);
    assert.ok(!requested.some((url) => url.includes(world.adminToken)), 'the token appeared in a request URL');
  });
});
