// The page-by-page part of the dashboard test (run by dashboard.test.mjs): every page at 1440
// and 390 px no wider than the viewport (with screenshots), chart ticks distinct, a gap in the
// data left as a gap, no flat 0° line for a node without sensors, drag to zoom and reset, the
// tooltip showing the API's values, time zone and theme switches remembered, not-found states,
// the reason for "Unhealthy", keyboard navigation, the fleet view and the stored-series routes
// (feature-detected: a master without them must say "No stored series yet").

import assert from 'node:assert/strict';

export const DESKTOP = { width: 1440, height: 900 };
export const PHONE = { width: 390, height: 844 };

/** Whether the document is no wider than the viewport. */
async function noOverflow(page, what) {
  const [doc, view] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  assert.ok(doc <= view, what + ': document ' + doc + ' px wide in a ' + view + ' px viewport');
}

/** Tick labels of every drawn chart under `root`: [{id, y: [...], x: [...]}]. */
function ticks(page, root) {
  return page.$$eval(root + ' .chart', (cs) => cs.filter((c) => c.querySelector('svg text.yt')).map((c) => ({
    id: c.dataset.chart,
    y: [...c.querySelectorAll('svg text.yt')].map((t) => t.textContent),
    x: [...c.querySelectorAll('svg text.xt')].map((t) => t.textContent),
    unit: c.querySelector('svg text.unit')?.textContent || '',
  })));
}

async function ticksDistinct(page, root, what) {
  const all = await ticks(page, root);
  assert.ok(all.length > 0, 'charts drawn on ' + what);
  for (const c of all) {
    assert.equal(new Set(c.y).size, c.y.length, what + ' ' + c.id + ': repeated y labels ' + c.y.join(', '));
    assert.equal(new Set(c.x).size, c.x.length, what + ' ' + c.id + ': repeated time labels ' + c.x.join(', '));
    assert.ok(c.y.length >= 2 && c.x.length >= 2, what + ' ' + c.id + ': at least two ticks per axis');
    // The unit is written once, on the axis, not on every label.
    assert.ok(c.y.every((l) => /^-?[\d.]+$/.test(l)), what + ' ' + c.id + ': bare numbers on the y axis, got ' + c.y.join(', '));
  }
  return all;
}

/** The vertices of a chart's line paths, per segment (M starts one), in SVG x. */
function segments(page, sel) {
  return page.$eval(sel, (svg) => [...svg.querySelectorAll('path.line')].map((p) => {
    const out = [];
    for (const m of p.getAttribute('d').matchAll(/([ML])([\d.-]+) ([\d.-]+)/g)) {
      if (m[1] === 'M') out.push([]);
      out[out.length - 1].push(Number(m[2]));
    }
    return out;
  }));
}

function geometry(page, sel) {
  return page.$eval(sel, (svg) => ({ from: Number(svg.dataset.from), to: Number(svg.dataset.to), x0: Number(svg.dataset.x0), x1: Number(svg.dataset.x1), points: Number(svg.dataset.points) }));
}

/**
 * Presses Tab (from `start`, a selector) until the focused element matches `selector`; returns
 * whether it got there within `max` presses, and checks the focus ring is visible.
 */
async function tabTo(page, start, selector, what, max = 60) {
  if (start) await page.focus(start);
  for (let i = 0; i < max; i++) {
    if (await page.evaluate((s) => !!document.activeElement?.matches(s), selector)) {
      const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
      assert.notEqual(outline, 'none', what + ': the focused element has a visible outline');
      return;
    }
    await page.keyboard.press('Tab');
  }
  assert.fail(what + ': Tab never reached ' + selector);
}

/** The missing-data gap of a node chart: the line breaks, no point inside [gapStart, gapEnd). */
async function checkGap(page, svgSel, gapStart, gapEnd, what) {
  const g = await geometry(page, svgSel);
  const xOf = (ms) => g.x0 + (ms - g.from) / (g.to - g.from) * (g.x1 - g.x0);
  const segs = (await segments(page, svgSel))[0];
  assert.ok(segs.length >= 2, what + ': the line breaks (' + segs.length + ' segment)');
  const gx0 = xOf(gapStart), gx1 = xOf(gapEnd);
  const inside = segs.flat().filter((x) => x > gx0 + 0.5 && x < gx1 - 0.5);
  assert.deepEqual(inside, [], what + ': no point drawn inside the gap');
  assert.ok(segs.some((s, i) => i > 0 && segs[i - 1][segs[i - 1].length - 1] <= gx0 + 1 && s[0] >= gx1 - 1), what + ': one segment ends before the gap and the next starts after it');
  return g;
}

/** A chart's first legend button hides its series and shows it again. */
async function checkLegendToggle(page, chartSel, what) {
  const legend = page.locator(chartSel + ' .legend button').first();
  const lines = () => page.locator(chartSel + ' path.line').count();
  const all = await lines();
  assert.ok(all >= 2, what + ': several series');
  await legend.click();
  assert.equal(await legend.getAttribute('aria-pressed'), 'false');
  assert.equal(await lines(), all - 1, what + ': a toggled-off series is not drawn');
  await legend.click();
  assert.equal(await legend.getAttribute('aria-pressed'), 'true');
  assert.equal(await lines(), all, what + ': toggled on again');
}

/**
 * t: { page, api, ok, report, shot, main, big, gapNode, gapHours: [from, to] hours ago,
 *      noSensorNode, pct, unhealthyReasons }
 */
export async function checkPages(t) {
  const { page, api, ok, shot, main } = t;
  const enc = encodeURIComponent;
  const go = (hash) => page.evaluate((h) => { location.hash = h; }, hash);
  const chartsReady = (root) => page.waitForFunction((r) => {
    const svgs = [...document.querySelectorAll(r + ' .chart svg')];
    // Drawn, or a final message (no data, no sensors), not "Loading…".
    return svgs.length > 0 && svgs.every((s) => {
      const msg = s.closest('.chart').querySelector('.msg');
      return Number(s.dataset.points) > 0 || (!msg.hidden && !/Loading/.test(msg.textContent));
    });
  }, root, { timeout: 20000 });

  // ---- the fleet view equals the API ----
  const fleetRes = await t.apiRaw('/api/v2/fleet');
  const clusters = (await api('/api/v2/clusters')).clusters.map((c) => c.clusterId).sort();
  await go('#v=fleet');
  const fleetRows = () => page.$$eval('#fleet tbody tr', (trs) => trs.map((tr) => ({ id: tr.dataset.cluster, cpu: tr.cells[4].firstChild.textContent, spark: !!tr.cells[4].querySelector('svg path') })));
  // What the fleet should show per cluster: the fleet route's CPU, or each summary's average.
  let want;
  if (fleetRes.status === 200) {
    want = new Map((await fleetRes.json()).clusters.map((c) => {
      const cpu = typeof c.cpu === 'number' ? c.cpu : c.cpu?.avg;
      return [c.cluster_id, Number.isFinite(cpu) ? t.pct(cpu) : '—'];
    }));
  } else {
    assert.equal(fleetRes.status, 404, 'GET /api/v2/fleet');
    want = new Map();
    for (const id of clusters) want.set(id, t.pct((await api('/api/v2/clusters/' + enc(id) + '/node-metrics')).summary.avg_cpu_usage));
  }
  // The view may first show the figures it had, then its refresh: wait for the API's.
  await t.until(async () => {
    const rows = await fleetRows();
    assert.deepEqual(rows.map((r) => r.id), clusters, 'one fleet row per cluster');
    for (const r of rows) assert.equal(r.cpu, want.get(r.id), 'fleet CPU of ' + r.id);
  }, 15000);
  if (fleetRes.status === 200) {
    assert.ok((await fleetRows()).some((r) => r.spark), 'sparklines drawn from /api/v2/fleet');
    ok('fleet view: one row per cluster, CPU and sparklines from /api/v2/fleet');
  } else {
    assert.match(await page.locator('#fleet-note').innerText(), /No stored series yet/);
    ok('fleet view without /api/v2/fleet: one row per cluster from the summaries, "No stored series yet"');
  }

  // ---- keyboard on the fleet: Tab reaches a cluster link, Enter opens the cluster ----
  {
    await tabTo(page, '#home', '#fleet tbody a', 'fleet');
    const cluster = await page.evaluate(() => document.activeElement.textContent);
    await page.keyboard.press('Enter');
    await page.waitForFunction((c) => new URLSearchParams(location.hash.slice(1)).get('c') === c, cluster, { timeout: 10000 });
    await page.locator('#nodes tbody tr').first().waitFor({ timeout: 15000 });
    ok('keyboard: Tab reaches a fleet row\'s cluster link (focus visible), Enter opens ' + cluster);
  }

  // ---- the reason for "Unhealthy" ----
  await go('#c=' + enc(main));
  await page.locator('#nodes tbody tr').first().waitFor({ timeout: 15000 });
  const data = await api('/api/v2/clusters/' + enc(main) + '/node-metrics');
  const offline = new Set(Object.entries(data.node_status || {}).filter(([, s]) => s.state === 'offline').map(([n]) => n));
  const whys = await page.$$eval('#nodes tbody tr', (trs) => trs.map((tr) => [tr.dataset.node, tr.querySelector('.why')?.textContent || '']));
  let reasoned = 0;
  for (const [name, why] of whys) {
    const n = data.nodes.find((x) => x.node_name === name);
    const want = offline.has(name) ? '' : t.unhealthyReasons(n).join(', ');
    assert.equal(why, want, 'reason shown for ' + name);
    if (want) reasoned++;
  }
  assert.ok(reasoned > 0, 'an unhealthy node with its reason');
  ok('"Unhealthy" says which figure crossed which limit (' + reasoned + ' nodes)');

  // ---- keyboard: a column header sorts with Enter ----
  {
    await tabTo(page, '#status-filter', '#nodes th[data-k=cpu]', 'node table header');
    const cpus = () => page.$$eval('#nodes tbody tr', (trs) => trs.map((tr) => parseFloat(tr.cells[2].textContent)));
    await page.keyboard.press('Enter');
    const down = await cpus();
    assert.deepEqual(down, [...down].sort((a, b) => b - a), 'Enter sorts by CPU, highest first');
    await page.keyboard.press('Enter');
    const up = await cpus();
    assert.deepEqual(up, [...up].sort((a, b) => a - b), 'Enter again: lowest first');
    await page.click('#nodes th[data-k=name]');
    ok('keyboard: Tab reaches a column header, Enter sorts by it both ways');
  }

  // ---- keyboard: Tab reaches a node link, Enter opens it, focus is visible ----
  await page.focus('#status-filter');
  for (let i = 0; i < 40 && !(await page.evaluate(() => !!document.activeElement.closest('#nodes tbody'))); i++) await page.keyboard.press('Tab');
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(outline, 'none', 'focused link has a visible outline');
  const focused = await page.evaluate(() => document.activeElement.textContent);
  await page.keyboard.press('Enter');
  await page.waitForFunction((n) => new URLSearchParams(location.hash.slice(1)).get('n') === n, focused, { timeout: 10000 });
  await page.locator('#detail-body').waitFor({ state: 'visible', timeout: 10000 });
  ok('keyboard: a node link takes focus with a visible outline and Enter opens ' + focused);

  // ---- charts on the gap node: ticks, gap, tooltip, crosshair, zoom ----
  const [gapFromH, gapToH] = t.gapHours;
  const history = await api('/api/v2/clusters/' + enc(main) + '/node-metrics/' + enc(t.gapNode) + '/history?hours=24');
  const pts = history.data.map((p) => ({ t: Date.parse(p.timestamp), cpu: p.cpu_usage }));
  // The gap is [now - from h, now - to h) of the fixture's clock.
  const gapStart = t.fixtureNow - gapFromH * 3600e3, gapEnd = t.fixtureNow - gapToH * 3600e3;
  assert.ok(pts.length > 0 && !pts.some((p) => p.t >= gapStart && p.t < gapEnd), 'the API has the gap of ' + t.gapNode);
  await go('#c=' + enc(main) + '&n=' + enc(t.gapNode) + '&r=24h');
  await page.waitForFunction(() => Number(document.querySelector('#charts .chart[data-chart=cpu] svg')?.dataset.points) > 0, null, { timeout: 20000 });
  await chartsReady('#charts');
  await ticksDistinct(page, '#charts', 'node page');
  ok('node page: every chart\'s tick labels are distinct, the unit written once per axis');

  const cpuSvg = '#charts .chart[data-chart=cpu] svg';
  {
    const g = await checkGap(page, cpuSvg, gapStart, gapEnd, 'node CPU');
    // (The page asked a moment apart from the test: the 24 h window may have moved by a point.)
    assert.ok(Math.abs(g.points - pts.length) <= 1, 'every API point drawn, none invented: ' + g.points + ' of ' + pts.length);
    ok('missing data leaves a gap: the line breaks between ' + gapFromH + ' h and ' + gapToH + ' h ago, no point inside');
  }
  {
    await page.locator(cpuSvg).scrollIntoViewIfNeeded();
    const box = await page.locator(cpuSvg).boundingBox();
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
    const tip = page.locator('#charts .chart[data-chart=cpu] .tip');
    await tip.waitFor({ state: 'visible', timeout: 5000 });
    const at = Number(await tip.getAttribute('data-t'));
    const p = pts.find((x) => x.t === at);
    assert.ok(p, 'the tooltip names a time the API has: ' + at);
    assert.equal(Number(await tip.locator('.row').first().getAttribute('data-avg')), p.cpu, 'tooltip value equals the API');
    assert.ok((await tip.innerText()).includes(t.pct(p.cpu)), 'tooltip shows ' + t.pct(p.cpu));
    const crosses = await page.$$eval('#charts line.cross', (ls) => ls.filter((l) => l.getAttribute('visibility') === 'visible').length);
    const drawn = await page.$$eval('#charts .chart svg', (ss) => ss.filter((s) => Number(s.dataset.points) > 0).length);
    assert.equal(crosses, drawn, 'the crosshair shows on every chart of the page');
    ok('tooltip at ' + new Date(at).toISOString() + ' shows the API\'s CPU ' + t.pct(p.cpu) + '; crosshair on all ' + drawn + ' charts');
    await shot('node-tooltip', false);

    const before = await geometry(page, cpuSvg);
    // With the stored series route, a zoom asks the stored figures again for its window.
    const stored = (await t.apiRaw('/api/v2/clusters/' + enc(main) + '/node-metrics/' + enc(t.gapNode) + '/series')).status === 200;
    const requery = stored
      ? page.waitForResponse((r) => /\/series\?figure=/.test(r.url()) && Number(new URL(r.url()).searchParams.get('from')) > before.from + 3600e3, { timeout: 15000 })
      : null;
    // The headline charts ask their history again for the zoomed window.
    const headlineRequery = page.waitForResponse((r) => /\/history\?from=/.test(r.url()) && Number(new URL(r.url()).searchParams.get('from')) > before.from + 3600e3, { timeout: 15000 });
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.45, box.y + box.height / 2, { steps: 4 });
    await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2, { steps: 4 });
    await page.mouse.up();
    await page.locator('#zoom-reset').waitFor({ state: 'visible', timeout: 5000 });
    const zoomed = await geometry(page, cpuSvg);
    assert.ok(zoomed.from > before.from && zoomed.to < before.to, 'the view narrows: ' + JSON.stringify([before, zoomed]));
    const mem = await geometry(page, '#charts .chart[data-chart=memory] svg');
    assert.deepEqual([mem.from, mem.to], [zoomed.from, zoomed.to], 'every chart of the page zooms together');
    if (requery) {
      const r = await requery;
      assert.equal(r.status(), 200);
      const q = new URL(r.url()).searchParams;
      assert.ok(Math.abs(Number(q.get('from')) - zoomed.from) < 2000 && Math.abs(Number(q.get('to')) - zoomed.to) < 2000, 'the stored figures are asked for the zoomed window: ' + r.url());
      ok('zoom asks the stored series for the zoomed window (' + q.get('from') + '..' + q.get('to') + ', step ' + q.get('step') + ' s)');
    }
    {
      const r = await headlineRequery;
      assert.equal(r.status(), 200);
      const q = new URL(r.url()).searchParams;
      assert.ok(Math.abs(Number(q.get('from')) - zoomed.from) < 2000 && Math.abs(Number(q.get('to')) - zoomed.to) < 2000, 'the headline history is asked for the zoomed window: ' + r.url());
      const body = await r.json();
      assert.ok(body.data.length > 0 && body.data.every((p) => Date.parse(p.timestamp) >= zoomed.from - 1000 && Date.parse(p.timestamp) <= zoomed.to + 1000), 'the zoomed answer holds only the window');
      // The drawing follows the new answer: every point of the window, none invented.
      await page.waitForFunction(([sel, n]) => Math.abs(Number(document.querySelector(sel).dataset.points) - n) <= 2, [cpuSvg, body.data.length], { timeout: 10000 });
      ok('zoom asks the headline history for the zoomed window (from=' + q.get('from') + '&to=' + q.get('to') + ', ' + body.data.length + ' points)');
    }
    await shot('node-zoomed', false);
    const resetQuery = page.waitForResponse((r) => /\/history\?hours=24/.test(r.url()), { timeout: 15000 });
    await page.click('#zoom-reset');
    assert.equal((await resetQuery).status(), 200, 'reset asks the headline history for the whole range again');
    await page.locator('#zoom-reset').waitFor({ state: 'hidden', timeout: 5000 });
    const reset = await geometry(page, cpuSvg);
    // (Reset asks the stored figures again for the range up to now: it may have moved a step.)
    assert.ok(Math.abs(reset.from - before.from) <= 600e3 && Math.abs(reset.to - before.to) <= 600e3,
      'reset returns to the full range: ' + JSON.stringify([before, reset]));
    ok('drag to zoom narrows every chart to ' + ((zoomed.to - zoomed.from) / 3600e3).toFixed(1) + ' h; reset restores ' + ((before.to - before.from) / 3600e3).toFixed(1) + ' h');
  }

  // ---- the x range fits the data; legends toggle series ----
  {
    const g = await geometry(page, cpuSvg);
    assert.ok(Math.abs(g.from - pts[0].t) <= 601e3 && Math.abs(g.to - pts[pts.length - 1].t) < 1000, 'x range = the data\'s extent');
    await checkLegendToggle(page, '#charts .chart[data-chart=network]', 'network legend');
    ok('the time axis spans exactly the data; a legend button hides and shows its series');
  }

  // ---- keyboard on the node page: legend, chart tooltip, zoom, Escape, range buttons ----
  {
    const legendSel = '#charts .chart[data-chart=network] .legend button';
    await tabTo(page, '#back', legendSel, 'legend button');
    await page.keyboard.press('Enter');
    assert.equal(await page.getAttribute(legendSel, 'aria-pressed'), 'false', 'Enter toggles a legend button');
    await page.keyboard.press('Space');
    assert.equal(await page.getAttribute(legendSel, 'aria-pressed'), 'true', 'Space toggles it back');
    await tabTo(page, '#back', cpuSvg, 'CPU chart');
    const tip = page.locator('#charts .chart[data-chart=cpu] .tip');
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('ArrowLeft');
    await tip.waitFor({ state: 'visible', timeout: 5000 });
    const at = Number(await tip.getAttribute('data-t'));
    const p = pts[pts.length - 2];
    assert.equal(at, p.t, 'two steps left of the latest point');
    assert.equal(Number(await tip.locator('.row').first().getAttribute('data-avg')), p.cpu, 'keyboard tooltip value equals the API');
    const before = await geometry(page, cpuSvg);
    await page.keyboard.press('+');
    await page.locator('#zoom-reset').waitFor({ state: 'visible', timeout: 5000 });
    const zoomed = await geometry(page, cpuSvg);
    assert.ok(zoomed.to - zoomed.from < (before.to - before.from) * 0.6, '+ zooms in: ' + JSON.stringify([before, zoomed]));
    await page.keyboard.press('Escape');
    assert.ok(await tip.isHidden(), 'Escape closes the tooltip');
    assert.ok(await page.locator('#zoom-reset').isVisible(), 'the first Escape keeps the zoom');
    await page.keyboard.press('Escape');
    await page.locator('#zoom-reset').waitFor({ state: 'hidden', timeout: 5000 });
    // A tooltip opened by the pointer closes with Escape too (the focus elsewhere).
    await page.locator('#back').focus();
    await page.locator(cpuSvg).scrollIntoViewIfNeeded();
    const box = await page.locator(cpuSvg).boundingBox();
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
    await tip.waitFor({ state: 'visible', timeout: 5000 });
    await page.keyboard.press('Escape');
    await tip.waitFor({ state: 'hidden', timeout: 5000 });
    await page.mouse.move(0, 0);
    // Range buttons: Tab and Enter change the range (and the URL).
    await tabTo(page, '#back', '#ranges button[data-r="7d"]', 'range button');
    const req = page.waitForResponse((r) => /\/history\?hours=168/.test(r.url()), { timeout: 15000 });
    await page.keyboard.press('Enter');
    assert.equal((await req).status(), 200);
    assert.ok((await page.evaluate(() => location.hash)).includes('r=7d'), 'Enter on a range button');
    await go('#c=' + enc(main) + '&n=' + enc(t.gapNode) + '&r=24h');
    await page.waitForFunction(() => Number(document.querySelector('#charts .chart[data-chart=cpu] svg')?.dataset.points) > 0, null, { timeout: 20000 });
    ok('keyboard on the node page: legend toggles with Enter and Space; arrows open the tooltip with the API value; + zooms; Escape closes the tooltip, then the zoom (also a pointer\'s tooltip); Enter on a range button');
  }

  // ---- time zone: local or UTC, remembered ----
  {
    // Text with position: ticks sit on whole local hours, so the texts alone can coincide
    // (06:00 12:00 in both zones at some times of day); at +05:30 their positions never do.
    const labels = () => page.$$eval('#charts .chart[data-chart=cpu] svg text.xt', (ts) => ts.map((t) => t.textContent + '@' + t.getAttribute('x')).join(' '));
    const local = await labels();
    const button = page.locator('#zone');
    const was = await button.innerText();
    assert.notEqual(was, 'Times: UTC', 'the test browser runs in a zone other than UTC');
    await button.click();
    assert.equal(await button.innerText(), 'Times: UTC');
    const utc = await labels();
    assert.notEqual(utc, local, 'the time labels move with the zone');
    await page.reload();
    await page.waitForFunction(() => Number(document.querySelector('#charts .chart[data-chart=cpu] svg')?.dataset.points) > 0, null, { timeout: 20000 });
    assert.equal(await page.locator('#zone').innerText(), 'Times: UTC', 'the zone is remembered');
    assert.equal(await labels(), utc);
    await page.locator('#zone').click();
    assert.equal(await page.locator('#zone').innerText(), was);
    ok('time zone shown (' + was + '), switched to UTC (labels ' + local + ' -> ' + utc + ') and remembered');
  }

  // ---- light/dark switch, remembered ----
  {
    const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const light = await bg();
    for (let i = 0; i < 3 && (await page.evaluate(() => document.documentElement.dataset.theme)) !== 'dark'; i++) await page.click('#theme');
    const dark = await bg();
    assert.notEqual(dark, light, 'dark theme');
    await page.reload();
    await page.locator('#detail-body').waitFor({ state: 'visible', timeout: 10000 });
    assert.equal(await bg(), dark, 'theme remembered');
    await shot('node-dark-theme');
    while ((await page.evaluate(() => document.documentElement.dataset.theme || 'auto')) !== 'auto') await page.click('#theme');
    ok('theme switch: dark (' + dark + ') remembered across a reload, back to auto');
  }

  // ---- a node without sensors: no 0° line ----
  await go('#c=' + enc(main) + '&n=' + enc(t.noSensorNode) + '&r=24h');
  await page.waitForFunction(() => /No temperature sensors/.test(document.querySelector('#charts .chart[data-chart=temperature] .msg')?.textContent || ''), null, { timeout: 20000 });
  assert.equal(await page.locator('#charts .chart[data-chart=temperature] path.line').count(), 0, 'no temperature line');
  ok(t.noSensorNode + ' has no sensors: the temperature chart says so instead of a 0° line');

  // ---- not found ----
  await go('#c=no-such-cluster');
  await page.locator('#cluster-missing').waitFor({ state: 'visible', timeout: 10000 });
  assert.ok(await page.locator('#cards').isHidden(), 'no cards of another cluster');
  assert.equal(await page.inputValue('#cluster'), '', 'the picker does not claim another cluster');
  await shot('not-found-cluster');
  await go('#c=' + enc(main) + '&n=no-such-node');
  await page.waitForFunction(() => document.querySelector('#d-status')?.textContent === 'Not found', null, { timeout: 10000 });
  assert.match(await page.getAttribute('#d-status', 'class'), /notfound/);
  await shot('not-found-node');
  ok('an unknown cluster or node in the URL says "not known", never another cluster or a green badge');

  // ---- stored series: the routes, or "No stored series yet" ----
  const figuresRes = await t.apiRaw('/api/v2/clusters/' + enc(main) + '/node-metrics/' + enc(t.gapNode) + '/series');
  await go('#c=' + enc(main) + '&n=' + enc(t.gapNode) + '&r=24h');
  if (figuresRes.status === 404) {
    await page.waitForFunction(() => /No stored series yet/.test(document.querySelector('#series-note')?.textContent || ''), null, { timeout: 15000 });
    ok('node page without the series route: "No stored series yet", the rest of the page works');
  } else {
    assert.equal(figuresRes.status, 200);
    const figures = (await figuresRes.json()).figures;
    await page.waitForFunction((n) => document.querySelectorAll('#series-charts .chart').length >= n, figures.length, { timeout: 15000 });
    await chartsReady('#series-charts');
    await ticksDistinct(page, '#series-charts', 'stored figures');
    ok('node page: ' + figures.length + ' stored figures drawn from the series route, ticks distinct');
    // The tooltip of a stored figure shows the route's avg, min and max at that step.
    const chart = '#series-charts .chart[data-chart="f-cpu.usage"]';
    const body = await api('/api/v2/clusters/' + enc(main) + '/node-metrics/' + enc(t.gapNode) + '/series?figure=cpu.usage&from=' +
      (await page.$eval(chart + ' svg', (s) => s.dataset.from)) + '&to=' + Date.now());
    await page.locator(chart + ' svg').scrollIntoViewIfNeeded();
    const box = await page.locator(chart + ' svg').boundingBox();
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
    const tip = page.locator(chart + ' .tip');
    await tip.waitFor({ state: 'visible', timeout: 5000 });
    const at = Number(await tip.getAttribute('data-t'));
    const point = body.series[0].points.find((p) => p[0] === at);
    assert.ok(point, 'the tooltip names a step the route has: ' + at);
    assert.equal(Number(await tip.locator('.row').first().getAttribute('data-avg')), point[2], 'tooltip avg equals the route');
    const tipText = await tip.innerText();
    for (const v of point.slice(1)) assert.ok(tipText.includes(t.pct(v)), 'tooltip shows ' + t.pct(v) + ': ' + tipText);
    assert.ok(await page.locator(chart + ' path.band').count() > 0, 'a min..max band where min and max differ');
    if (figures.some((f) => f.figure === 'cpu.mode')) {
      assert.ok(await page.locator('#series-charts .chart[data-chart="f-cpu.mode"] path.stack').count() >= 2, 'CPU modes stacked');
    }
    await shot('node-stored-figure-tooltip', false);
    await page.mouse.move(0, 0);
    ok('stored CPU: the tooltip shows the route\'s min, avg and max (' + point.slice(1).map(t.pct).join(' / ') + '), a band, CPU modes stacked');
  }
  const clusterRes = await t.apiRaw('/api/v2/clusters/' + enc(main) + '/series?figure=cpu.usage&from=' + (Date.now() - 86400e3) + '&to=' + Date.now() + '&step=300');
  await go('#c=' + enc(main) + '&r=24h');
  if (clusterRes.status === 404) {
    await page.waitForFunction(() => /No stored series yet/.test(document.querySelector('#cluster-series-note')?.textContent || ''), null, { timeout: 15000 });
    ok('cluster page without the cluster series route: "No stored series yet"');
  } else {
    await chartsReady('#cluster-charts');
    await ticksDistinct(page, '#cluster-charts', 'cluster trends');
    const lines = await page.$$eval('#cluster-charts .chart[data-chart="k-cpu.usage"] path.line', (ps) => ps.map((p) => p.dataset.device));
    assert.deepEqual(lines, ['avg', 'max'], 'average and busiest node');
    await shot('page-cluster-trends');
    ok('cluster page: average and busiest-node trends from the cluster series route, ticks distinct');
  }

  // ---- every page at both widths: no sideways scroll, screenshots ----
  const pages = [
    ['fleet', '#v=fleet', '#fleet tbody tr'],
    ['cluster', '#c=' + enc(main), '#nodes tbody tr'],
    ['node', '#c=' + enc(main) + '&n=' + enc(t.gapNode) + '&r=24h', '#charts .chart svg[data-points]:not([data-points="0"])'],
    ['node-no-sensors', '#c=' + enc(main) + '&n=' + enc(t.noSensorNode) + '&r=7d', '#charts .chart svg[data-points]:not([data-points="0"])'],
    ['cluster-1000-nodes', '#c=' + enc(t.big), '#nodes tbody tr'],
    ['alerts', '#v=alerts', '#alerts-now-panel'],
    ['not-found-cluster', '#c=no-such-cluster', '#cluster-missing'],
    ['not-found-node', '#c=' + enc(main) + '&n=no-such-node', '#d-status.notfound'],
  ];
  // What each page must show at every width, beyond fitting in it.
  const widthChecked = new Map();
  async function perWidthChecks(name, width) {
    const did = [];
    // The switches stay reachable: inside the viewport.
    for (const b of ['#zone', '#theme']) {
      const r = await page.locator(b).boundingBox();
      assert.ok(r && r.x >= 0 && r.x + r.width <= width + 0.5, name + ' at ' + width + ' px: ' + b + ' inside the viewport');
    }
    if (name === 'cluster' || name === 'cluster-1000-nodes') {
      // The node names are in view without scrolling the table sideways (a long reason wraps).
      const rights = await page.$$eval('#nodes tbody tr', (trs) => trs.map((tr) => tr.cells[1].getBoundingClientRect().right));
      assert.ok(rights.length > 0 && rights.every((r) => r <= width), name + ' at ' + width + ' px: every node name in view, right edges ' + Math.max(...rights).toFixed(0));
      did.push('names in view');
    }
    if (name === 'cluster') {
      await chartsReady('#cluster-charts');
      await ticksDistinct(page, '#cluster-charts', name + ' at ' + width + ' px');
      await checkLegendToggle(page, '#cluster-charts .chart[data-chart="k-cpu.usage"]', name + ' at ' + width + ' px');
      did.push('ticks', 'legend');
    }
    if (name === 'node' || name === 'node-no-sensors') {
      await chartsReady('#charts');
      await ticksDistinct(page, '#charts', name + ' at ' + width + ' px');
      await checkLegendToggle(page, '#charts .chart[data-chart=network]', name + ' at ' + width + ' px');
      // The time axis spans the data, not the whole range asked for.
      const g = await geometry(page, cpuSvg);
      const hist = await api('/api/v2/clusters/' + enc(main) + '/node-metrics/' + enc(name === 'node' ? t.gapNode : t.noSensorNode) + '/history?hours=' + (name === 'node' ? 24 : 168));
      const ts = hist.data.map((p) => Date.parse(p.timestamp));
      // The stored-series charts share the axis; their buckets start on their step (5 min at
      // 24 h, 30 min at 7 days), so the axis may begin up to one step before the first point.
      const slack = (name === 'node' ? 300e3 : 1800e3) + 301e3;
      assert.ok(Math.abs(g.from - ts[0]) <= slack && Math.abs(g.to - ts[ts.length - 1]) <= slack, name + ' at ' + width + ' px: x range = the data\'s extent (chart ' + new Date(g.from).toISOString() + '..' + new Date(g.to).toISOString() + ', data ' + new Date(ts[0]).toISOString() + '..' + new Date(ts[ts.length - 1]).toISOString() + ')');
      did.push('ticks', 'legend', 'range fits');
    }
    if (name === 'node') {
      await checkGap(page, cpuSvg, t.fixtureNow - gapFromH * 3600e3, t.fixtureNow - gapToH * 3600e3, name + ' at ' + width + ' px');
      await page.waitForFunction(() => document.querySelectorAll('#series-charts .chart[data-chart="f-cpu.mode"] path.stack').length >= 2, null, { timeout: 15000 });
      did.push('gap', 'stacked modes');
    }
    if (name === 'node-no-sensors') {
      assert.equal(await page.locator('#charts .chart[data-chart=temperature] path.line').count(), 0, 'no 0° line at ' + width + ' px');
      did.push('no sensor line');
    }
    widthChecked.set(name, did);
  }

  for (const size of [DESKTOP, PHONE]) {
    await page.setViewportSize(size);
    for (const [name, hash, ready] of pages) {
      await go(hash);
      await page.locator(ready).first().waitFor({ state: 'visible', timeout: 20000 });
      // Every chart drawn or with its final message before the picture.
      await page.waitForFunction(() => ![...document.querySelectorAll('.chart .msg')].some((m) => !m.hidden && m.offsetParent && /Loading/.test(m.textContent)), null, { timeout: 30000 });
      await page.waitForTimeout(300);
      await noOverflow(page, name + ' at ' + size.width + ' px');
      await perWidthChecks(name, size.width);
      await shot('page-' + name + '-' + size.width);
    }
    if (size === PHONE) {
      await go('#c=' + enc(t.big));
      await page.locator('#nodes tbody tr').first().waitFor();
      const mids = await page.$$eval('.pager > *', (es) => es.map((e) => { const r = e.getBoundingClientRect(); return r.top + r.height / 2; }));
      assert.ok(Math.max(...mids) - Math.min(...mids) < 4, 'the pagination arrows stay on one line: ' + mids.join(', '));
    }
    ok('every page at ' + size.width + ' px is no wider than the viewport (' + pages.length + ' pages, screenshots page-*-' + size.width + '.png); per page: ' +
      [...widthChecked].filter(([, d]) => d.length).map(([n, d]) => n + ' ' + d.join('+')).join(', '));
  }
  await page.setViewportSize(t.restoreViewport);
}

/** The 1000-node cluster page loaded in a fresh tab: ms from script start to the table filled. */
export async function measureBigCluster(t) {
  const runs = [];
  for (let i = 0; i < 5; i++) {
    const p = await t.context.newPage();
    await p.goto(t.base.href + '#c=' + encodeURIComponent(t.big));
    await p.waitForFunction(() => performance.getEntriesByName('atlhyper:script-to-interactive').length > 0 &&
      document.querySelectorAll('#nodes tbody tr').length > 0, null, { timeout: 20000 });
    runs.push(await p.evaluate(() => {
      const script = performance.getEntriesByName('atlhyper:script')[0].startTime;
      const total = performance.getEntriesByName('atlhyper:script-to-interactive')[0].duration;
      const overview = performance.getEntriesByType('resource').find((r) => r.name.includes('/node-metrics?view=overview'));
      // The page's own work: parsing the answer, deriving the rows, drawing the first page.
      const work = performance.getEntriesByName('atlhyper:refresh')[0].duration;
      return { total, work, answered: overview.responseEnd - script, bytes: overview.encodedBodySize, decoded: overview.decodedBodySize };
    }));
    await p.close();
  }
  const med = (k) => runs.map((r) => r[k]).sort((a, b) => a - b)[runs.length >> 1];
  t.report('big_cluster_1000_nodes_script_to_interactive_ms_each', runs.map((r) => Number(r.total.toFixed(1))));
  t.report('big_cluster_1000_nodes_script_to_interactive_ms_median', med('total'));
  t.report('big_cluster_1000_nodes_overview_answered_after_script_ms_median', med('answered'));
  t.report('big_cluster_1000_nodes_page_work_parse_derive_render_ms_each', runs.map((r) => Number(r.work.toFixed(1))));
  t.report('big_cluster_1000_nodes_page_work_parse_derive_render_ms_median', med('work'));
  t.report('big_cluster_1000_nodes_overview_bytes_transferred_decoded', [runs[0].bytes, runs[0].decoded]);
  t.ok('1000-node cluster page: interactive ' + med('total').toFixed(0) + ' ms after its script started (median of ' + runs.length + '; the answer arrived after ' +
    med('answered').toFixed(0) + ' ms, the page\'s own work ' + med('work').toFixed(0) + ' ms)');
}
