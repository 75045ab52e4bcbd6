// The Alerts part of the dashboard browser test (run from dashboard.test.mjs): alert rules
// created through the API with an operator token, fired and resolved by the master's real alert
// engine, then checked in Chromium: the firing badges of the cluster picker, the node table and
// the node page, the Alerts view's tabs (now, history, silences), a one-click silence checked
// through GET /api/v2/silences, expiring it from the view, a viewer token shown read-only from its
// role (GET /api/v2/auth/whoami), and the view at desktop and phone widths without sideways
// scrolling.

import assert from 'node:assert/strict';

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
/** Page refreshes come every 5 s; give a change three of them to show. */
const SHOWN_WITHIN_MS = 20000;
const AUTHOR = 'e2e-operator';
/** The dashboard's one-click silence lasts this long. */
const SILENCE_MS = 2 * 3600 * 1000;

const escapeRegex = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Runs `check` until it passes (it throws while the page or the API is not there yet), at most
 * `timeout` ms; then throws its last error.
 */
async function until(check, timeout = SHOWN_WITHIN_MS) {
  const started = Date.now();
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() - started > timeout) throw e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * `t`: { page, base, viewerToken, operatorToken, mainCluster, bigCluster, shot, ok, report }.
 * Leaves the page at the desktop size it found, on the main cluster's overview.
 */
export async function checkAlertsView(t) {
  const { page, base, ok, shot } = t;
  const main = t.mainCluster;
  const clustersInScope = [main, t.bigCluster].filter(Boolean);

  async function call(token, method, path, body) {
    const headers = { Accept: 'application/json', Authorization: 'Bearer ' + token };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(new URL(path, base), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }
  async function read(path) {
    const r = await call(t.viewerToken, 'GET', path);
    assert.equal(r.status, 200, 'GET ' + path + ' -> ' + r.status);
    return r.body;
  }
  const firingNow = async () => (await read('/api/v2/alerts')).filter((a) => a.state === 'firing');
  function counts(alerts) {
    const byCluster = new Map(), byNode = new Map();
    for (const a of alerts) {
      byCluster.set(a.labels.cluster, (byCluster.get(a.labels.cluster) || 0) + 1);
      if (a.labels.node) {
        const k = a.labels.cluster + '/' + a.labels.node;
        byNode.set(k, (byNode.get(k) || 0) + 1);
      }
    }
    return { byCluster, byNode, total: alerts.length };
  }
  async function noSidewaysScroll(what) {
    const widths = await page.evaluate(() => ({ doc: document.documentElement.scrollWidth, body: document.body.scrollWidth, view: window.innerWidth }));
    assert.ok(widths.doc <= widths.view && widths.body <= widths.view,
      what + ': the page scrolls sideways (' + JSON.stringify(widths) + ')');
  }
  const rowCells = (table, key) => page.$$eval('#' + table + ' tbody tr', (trs, k) => {
    const tr = trs.find((r) => r.dataset.key === k);
    return tr ? Object.fromEntries([...tr.cells].map((c) => [c.dataset.label, c.textContent])) : null;
  }, key);

  // ---- rules through the API: a viewer is refused, an operator creates them ----
  const hotCpu = {
    name: 'E2eHotCpu', figure: 'cpu.usage_percent', op: '>', threshold: 50, for: '0s', severity: 'critical',
    scope: { clusters: clustersInScope.map(escapeRegex).join('|'), nodes: 'worker-.*|node-00[0-2][0-9]' },
    annotations: { summary: 'CPU of {{node}} at {{value}}%' },
  };
  const busyMemory = {
    name: 'E2eBusyMemory', figure: 'memory.usage_percent', op: '>', threshold: 60, for: '0s', severity: 'warning',
    scope: { clusters: escapeRegex(main) }, annotations: { summary: 'Memory of {{node}} at {{value}}%' },
  };
  assert.equal((await call(t.viewerToken, 'POST', '/api/v2/alert-rules', hotCpu)).status, 403, 'a viewer may not create rules');
  for (const rule of [hotCpu, busyMemory]) {
    const r = await call(t.operatorToken, 'POST', '/api/v2/alert-rules', rule);
    assert.equal(r.status, 201, 'creating ' + rule.name + ': ' + JSON.stringify(r.body));
  }

  // What the engine must fire, worked out from the node figures: every online node in scope
  // over the threshold (an offline node is not evaluated).
  const expected = new Set();
  for (const cluster of clustersInScope) {
    const data = await read('/api/v2/clusters/' + encodeURIComponent(cluster) + '/node-metrics');
    for (const n of data.nodes) {
      if (data.node_status?.[n.node_name]?.state === 'offline') continue;
      if (/^(worker-.*|node-00[0-2][0-9])$/.test(n.node_name) && n.cpu.usage_percent > 50) expected.add('E2eHotCpu ' + cluster + ' ' + n.node_name);
      if (cluster === main && n.memory.usage_percent > 60) expected.add('E2eBusyMemory ' + cluster + ' ' + n.node_name);
    }
  }
  assert.ok(expected.size >= 4, 'the fixture puts several nodes over the thresholds');
  const created = Date.now();
  await until(async () => {
    const ours = (await firingNow()).filter((a) => a.rule.startsWith('E2e'))
      .map((a) => a.labels.alertname + ' ' + a.labels.cluster + ' ' + a.labels.node).sort();
    assert.deepEqual(ours, [...expected].sort(), 'firing alerts of the new rules');
  }, 15000);
  t.report('alert_rule_created_to_firing_in_api_ms', Date.now() - created);
  ok('alert rules created by an operator (a viewer gets 403); the engine fires ' + expected.size + ' alerts on exactly the nodes over the thresholds');

  // ---- badges at desktop width: cluster picker, header, node table, node page ----
  await page.setViewportSize(DESKTOP);
  await page.evaluate((c) => { location.hash = '#c=' + encodeURIComponent(c); }, main);
  await page.locator('#cards').waitFor({ state: 'visible', timeout: 10000 });
  const shownAt = Date.now();
  await until(async () => {
    const want = counts(await firingNow());
    const options = await page.$$eval('#cluster option', (os) => os.map((o) => [o.value, o.textContent]));
    for (const [id, label] of options) {
      const m = / · (\d+) firing$/.exec(label);
      assert.equal(m ? Number(m[1]) : 0, want.byCluster.get(id) || 0, 'picker option ' + label);
    }
    assert.equal(await page.locator('#alerts-count').innerText(), String(want.total), 'header count');
  });
  t.report('alert_badges_equal_api_after_opening_overview_ms', Date.now() - shownAt);
  ok('Alerts view: the cluster picker shows each cluster\'s firing count, the header the total');

  // The cluster page's own badge: its firing count, leading to the Alerts view of it.
  await until(async () => {
    const n = counts(await firingNow()).byCluster.get(main) || 0;
    assert.ok(n > 0, 'alerts fire in ' + main);
    assert.equal(await page.locator('#cluster-alerts').isVisible() ? await page.locator('#cluster-alerts').innerText() : '', n + ' firing', 'cluster badge');
  });
  assert.equal(await page.getAttribute('#cluster-alerts', 'href'), '#v=alerts&c=' + encodeURIComponent(main));
  ok('Alerts view: the cluster page of ' + main + ' shows its firing count, linking to its alerts');

  // The fleet: firing alerts per cluster and severity, equal to /api/v2/fleet and to the
  // running alerts of each cluster.
  await page.evaluate(() => { location.hash = '#v=fleet'; });
  await page.locator('#fleet tbody tr').first().waitFor({ timeout: 10000 });
  await until(async () => {
    const running = await firingNow();
    const fleet = (await read('/api/v2/fleet')).clusters;
    const cells = new Map(await page.$$eval('#fleet tbody tr', (trs) => trs.map((tr) => [tr.dataset.cluster, tr.cells[3].textContent])));
    for (const c of fleet) {
      const bySeverity = { critical: 0, warning: 0, info: 0 };
      for (const a of running) if (a.labels.cluster === c.cluster_id && a.labels.severity in bySeverity) bySeverity[a.labels.severity]++;
      assert.deepEqual(['critical', 'warning', 'info'].map((k) => c.alerts_firing[k]), ['critical', 'warning', 'info'].map((k) => bySeverity[k]), 'fleet route counts of ' + c.cluster_id);
      const want = ['critical', 'warning', 'info'].filter((k) => bySeverity[k] > 0).map((k) => bySeverity[k] + ' ' + k).join(' · ') || 'none';
      assert.equal(cells.get(c.cluster_id), want, 'fleet alerts of ' + c.cluster_id);
    }
    assert.ok([...cells.values()].some((v) => v !== 'none'), 'some cluster has firing alerts');
  });
  await shot('alerts-fleet-desktop');
  ok('fleet view: firing alerts per cluster and severity equal /api/v2/fleet and the running alerts');
  await page.evaluate((c) => { location.hash = '#c=' + encodeURIComponent(c); }, main);
  await page.locator('#cards').waitFor({ state: 'visible', timeout: 10000 });

  async function nodeTableBadges(cluster) {
    return until(async () => {
      const want = counts(await firingNow());
      const rows = await page.$$eval('#nodes tbody tr', (trs) => trs.map((tr) => {
        const b = tr.cells[0].querySelector('.badge.firing');
        return { name: tr.dataset.node, badge: b && !b.hidden ? b.textContent : '' };
      }));
      assert.ok(rows.length > 0, 'node rows of ' + cluster);
      for (const r of rows) {
        const n = want.byNode.get(cluster + '/' + r.name) || 0;
        assert.equal(r.badge, n ? n + ' firing' : '', 'badge of ' + r.name);
      }
      return rows.filter((r) => r.badge).length;
    });
  }
  const badged = await nodeTableBadges(main);
  assert.ok(badged >= 3, 'several nodes of ' + main + ' carry a badge');
  await shot('alerts-badges-overview-desktop');
  if (t.bigCluster) {
    await page.evaluate((c) => { location.hash = '#c=' + encodeURIComponent(c); }, t.bigCluster);
    await page.waitForFunction((c) => document.querySelector('#cluster')?.value === c && document.querySelector('#nodes tbody tr[data-node="node-0000"]'), t.bigCluster, { timeout: 15000 });
    await nodeTableBadges(t.bigCluster);
    await page.evaluate((c) => { location.hash = '#c=' + encodeURIComponent(c); }, main);
  }
  ok('Alerts view: every node row carries a badge with its firing count (' + clustersInScope.join(', ') + ')');

  // The node with both alerts: its page shows the badge, and the badge leads to the Alerts view.
  const both = [...expected].filter((e) => e.startsWith('E2eHotCpu ' + main + ' ')).map((e) => e.split(' ')[2])
    .find((n) => expected.has('E2eBusyMemory ' + main + ' ' + n));
  assert.ok(both, 'a node fires both rules');
  await page.evaluate(([c, n]) => { location.hash = '#c=' + encodeURIComponent(c) + '&n=' + encodeURIComponent(n); }, [main, both]);
  await page.locator('#detail-body').waitFor({ state: 'visible', timeout: 10000 });
  await until(async () => {
    const n = counts(await firingNow()).byNode.get(main + '/' + both) || 0;
    assert.ok(n >= 2);
    assert.equal(await page.locator('#d-alerts').isVisible() ? await page.locator('#d-alerts').innerText() : '', n + ' firing');
  });
  await shot('alerts-badge-node-desktop');
  ok('Alerts view: the node page of ' + both + ' shows its firing count');
  await page.click('#d-alerts');
  await page.locator('#alerts-view').waitFor({ state: 'visible', timeout: 10000 });
  assert.ok((await page.evaluate(() => location.hash)).startsWith('#v=alerts'));

  // ---- the Now tab lists the running alerts as the API has them, through its filters ----
  const MAX_ROWS = 200;
  async function nowTabEqualsApi(state, cluster) {
    await page.selectOption('#alerts-state-filter', state);
    await page.selectOption('#alerts-cluster-filter', cluster);
    return until(async () => {
      const want = (await read('/api/v2/alerts')).filter((a) => (!state || a.state === state) && (!cluster || a.labels.cluster === cluster));
      const byFingerprint = new Map(want.map((a) => [a.fingerprint, a]));
      const rows = await page.$$eval('#alerts-now tbody tr', (trs) => trs.map((tr) =>
        [tr.dataset.key, Object.fromEntries([...tr.cells].map((c) => [c.dataset.label, c.textContent]))]));
      const keys = rows.map(([key]) => key);
      if (want.length <= MAX_ROWS) {
        assert.deepEqual([...keys].sort(), [...byFingerprint.keys()].sort(), 'rows of the Now tab (' + (state || 'any state') + ', ' + (cluster || 'all clusters') + ')');
      } else {
        assert.equal(keys.length, MAX_ROWS, 'a long list is cut');
        assert.equal(await page.locator('#alerts-now-shown').innerText(), 'the first ' + MAX_ROWS + ' of ' + want.length + ' alerts');
      }
      for (const [key, c] of rows) {
        const a = byFingerprint.get(key);
        assert.ok(a, 'row ' + key + ' is a running alert');
        assert.equal(c.Alert, a.labels.alertname);
        assert.equal(c.Severity, a.labels.severity);
        assert.equal(c.Cluster, a.labels.cluster);
        assert.equal(c.Node, a.labels.node || '—');
        assert.match(c.Since, /^(just now|\d+ s ago|.+ ago)$/);
        const silenced = (a.silenced_by || []).length > 0;
        assert.equal(c.State, (a.state === 'firing' ? 'Firing' : 'Pending') + (silenced ? ' · silenced' : ''), a.labels.alertname + ' state');
      }
      return want.length;
    });
  }
  const pending = await nowTabEqualsApi('pending', '');
  const mainFiring = await nowTabEqualsApi('firing', main);
  const firing = await nowTabEqualsApi('firing', '');
  await noSidewaysScroll('Alerts view at 1280 px');
  await shot('alerts-now-desktop');
  ok('Alerts view: the Now tab lists the running alerts (alertname, severity, cluster, node, since, state): ' + firing +
    ' firing (' + mainFiring + ' in ' + main + '), ' + pending + ' pending (built-in rules with a `for`)');

  // ---- a viewer token: the view reads; knowing its role (whoami), it shows no write button ----
  assert.deepEqual(await read('/api/v2/auth/whoami'), { role: 'viewer' });
  assert.deepEqual((await call(t.operatorToken, 'GET', '/api/v2/auth/whoami')).body, { role: 'operator' });
  const target = (await firingNow()).find((a) => a.labels.alertname === 'E2eHotCpu' && a.labels.cluster === main && a.labels.node !== both);
  assert.ok(target, 'a second node fires E2eHotCpu');
  const silenceButton = (fp) => page.locator('#alerts-now tr[data-key="' + fp + '"] button[data-action=silence]');
  await page.locator('#alerts-state-text').getByText('Read only').waitFor({ timeout: 10000 });
  assert.equal(await page.locator('#alerts-now button[data-action=silence]').count(), 0, 'no silence buttons for a viewer, before any write');
  assert.equal(await page.locator('#silence-author-field').isVisible(), false, 'no author field for a viewer');
  assert.ok(await page.locator('#alerts-use-token').isVisible());
  assert.deepEqual(await read('/api/v2/silences'), [], 'no silence was created');
  await shot('alerts-viewer-read-only-desktop');
  ok('Alerts view: a viewer token (GET /api/v2/auth/whoami says viewer) sees the alerts and no write button, with a read-only note');

  // ---- an operator token entered from the view silences one alert in one click ----
  await page.click('#alerts-use-token');
  await page.locator('#token-dialog').waitFor({ state: 'visible' });
  assert.equal(await page.locator('#token-title').innerText(), 'Operator token');
  await page.fill('#token-input', t.operatorToken);
  await page.click('#token-form button[type=submit]');
  await silenceButton(target.fingerprint).waitFor({ state: 'visible', timeout: 10000 });
  await page.fill('#silence-author', AUTHOR);
  const clicked = Date.now();
  await silenceButton(target.fingerprint).click();
  const silence = await until(async () => {
    const list = await read('/api/v2/silences');
    assert.equal(list.length, 1, 'one silence');
    return list[0];
  }, 10000);
  assert.deepEqual(Object.fromEntries(silence.matchers.map((m) => [m.name, m.value])), target.labels, 'matchers equal the alert\'s labels');
  assert.equal(silence.matchers.length, Object.keys(target.labels).length);
  assert.ok(silence.matchers.every((m) => m.is_equal === true && m.is_regex === false), 'equality matchers');
  assert.equal(silence.created_by, AUTHOR);
  assert.equal(silence.state, 'active');
  const startsAt = Date.parse(silence.starts_at), endsAt = Date.parse(silence.ends_at);
  assert.ok(Math.abs(startsAt - clicked) < 60000, 'starts now');
  assert.ok(Math.abs(endsAt - startsAt - SILENCE_MS) < 60000, 'ends two hours later: ' + silence.starts_at + ' .. ' + silence.ends_at);
  await until(async () => {
    const a = (await read('/api/v2/alerts')).find((x) => x.fingerprint === target.fingerprint);
    assert.deepEqual(a.silenced_by, [silence.id], 'the API says the alert is silenced');
    assert.equal((await rowCells('alerts-now', target.fingerprint)).State, 'Firing · silenced');
    assert.equal(await silenceButton(target.fingerprint).count(), 0, 'no silence button on a silenced alert');
  });
  assert.match(await page.locator('#alerts-state-text').innerText(), /silenced until/);
  await shot('alerts-silenced-desktop');
  ok('Alerts view: one click silences ' + target.labels.alertname + ' on ' + target.labels.node + ' (matchers = its labels, by ' + AUTHOR + ', 2 h); shown as silenced');

  // ---- the Silences tab lists it; it expires from the view ----
  await page.click('#alerts-silences-tab');
  await page.locator('#alerts-silences-panel').waitFor({ state: 'visible' });
  await until(async () => {
    const c = await rowCells('silences', silence.id);
    assert.ok(c, 'the silence is listed');
    assert.equal(c.State, 'active');
    assert.equal(c.By, AUTHOR);
    for (const [k, v] of Object.entries(target.labels)) assert.ok(c.Matchers.includes(k + '="' + v + '"'), 'matcher ' + k);
  });
  await noSidewaysScroll('Silences tab at 1280 px');
  await shot('alerts-silences-desktop');
  await page.click('#silences tr[data-key="' + silence.id + '"] button[data-action=expire]');
  await until(async () => {
    assert.equal((await read('/api/v2/silences/' + encodeURIComponent(silence.id))).state, 'expired');
    assert.equal((await rowCells('silences', silence.id)).State, 'expired');
    assert.equal(await page.locator('#silences tr[data-key="' + silence.id + '"] button').count(), 0, 'no expire button on an expired silence');
    const a = (await read('/api/v2/alerts')).find((x) => x.fingerprint === target.fingerprint);
    assert.deepEqual(a.silenced_by, [], 'the alert is no longer silenced');
  });
  await page.click('#alerts-now-tab');
  await until(async () => assert.equal((await rowCells('alerts-now', target.fingerprint)).State, 'Firing'));
  ok('Alerts view: the Silences tab lists the silence; Expire ends it and the alert is no longer silenced');

  // ---- a resolved alert: the memory rule raised above some nodes, they resolve ----
  const raised = { ...busyMemory, threshold: 80 };
  const put = await call(t.operatorToken, 'PUT', '/api/v2/alert-rules/' + busyMemory.name, raised);
  assert.equal(put.status, 200, JSON.stringify(put.body));
  const data = await read('/api/v2/clusters/' + encodeURIComponent(main) + '/node-metrics');
  const resolving = data.nodes.filter((n) => expected.has('E2eBusyMemory ' + main + ' ' + n.node_name) && n.memory.usage_percent <= 80)
    .map((n) => n.node_name).sort();
  assert.ok(resolving.length >= 1, 'raising the threshold resolves some alerts');
  const resolved = await until(async () => {
    const history = (await read('/api/v2/alerts/history?alertname=E2eBusyMemory')).filter((a) => a.labels.cluster === main);
    assert.deepEqual(history.map((a) => a.labels.node).sort(), resolving, 'resolved E2eBusyMemory alerts');
    return history;
  });
  await page.click('#alerts-history-tab');
  await page.locator('#alerts-history-panel').waitFor({ state: 'visible' });
  await until(async () => {
    for (const a of resolved) {
      const c = await rowCells('alerts-history', a.fingerprint + '@' + a.resolved_at);
      assert.ok(c, 'history row of ' + a.labels.node);
      assert.equal(c.Alert, 'E2eBusyMemory');
      assert.equal(c.Node, a.labels.node);
      assert.equal(c.Severity, 'warning');
      assert.match(c.Resolved, /^(\d\d:\d\d:\d\d|\d\d-\d\d \d\d:\d\d)$/);
      assert.match(c.Lasted, /^(\d+ s|\d+m)$/);
    }
  });
  await noSidewaysScroll('History tab at 1280 px');
  await shot('alerts-history-desktop');
  ok('Alerts view: raising a rule\'s threshold resolves ' + resolving.join(', ') + '; the History tab lists them');
  // The badges follow: the node that fired both now fires one rule fewer.
  if (resolving.includes(both)) {
    await page.evaluate(([c, n]) => { location.hash = '#c=' + encodeURIComponent(c) + '&n=' + encodeURIComponent(n); }, [main, both]);
    await until(async () => {
      const n = counts(await firingNow()).byNode.get(main + '/' + both) || 0;
      assert.equal(await page.locator('#d-alerts').isVisible() ? await page.locator('#d-alerts').innerText() : '', n ? n + ' firing' : '');
    });
    ok('Alerts view: the node badge of ' + both + ' drops with the resolved alert');
  }

  // ---- phone width: no sideways scroll, and the view still silences and expires ----
  await page.setViewportSize(PHONE);
  await page.evaluate((c) => { location.hash = '#c=' + encodeURIComponent(c); }, main);
  await page.locator('#cards').waitFor({ state: 'visible' });
  await page.waitForTimeout(200);
  await noSidewaysScroll('overview at 390 px');
  await shot('alerts-badges-overview-phone');
  await page.evaluate(([c, n]) => { location.hash = '#c=' + encodeURIComponent(c) + '&n=' + encodeURIComponent(n); }, [main, both]);
  await page.locator('#detail-body').waitFor({ state: 'visible', timeout: 10000 });
  await page.waitForTimeout(200);
  await noSidewaysScroll('node page at 390 px');
  await shot('alerts-badge-node-phone');
  await page.click('#alerts-link');
  await page.locator('#alerts-view').waitFor({ state: 'visible' });
  await page.click('#alerts-now-tab');
  await nowTabEqualsApi('firing', main);
  await noSidewaysScroll('Alerts view at 390 px');
  await shot('alerts-now-phone');
  const phoneTarget = (await firingNow()).find((a) => a.labels.alertname === 'E2eHotCpu' && a.labels.cluster === main);
  const button = silenceButton(phoneTarget.fingerprint);
  await button.scrollIntoViewIfNeeded();
  const box = await button.boundingBox();
  assert.ok(box && box.x >= 0 && box.x + box.width <= PHONE.width, 'the silence button is on screen: ' + JSON.stringify(box));
  await button.click();
  const phoneSilence = await until(async () => {
    const active = (await read('/api/v2/silences')).filter((s) => s.state === 'active');
    assert.equal(active.length, 1);
    return active[0];
  }, 10000);
  assert.equal(phoneSilence.matchers.find((m) => m.name === 'node').value, phoneTarget.labels.node);
  await page.click('#alerts-history-tab');
  await page.locator('#alerts-history-panel').waitFor({ state: 'visible' });
  await noSidewaysScroll('History tab at 390 px');
  await shot('alerts-history-phone');
  await page.click('#alerts-silences-tab');
  const expire = page.locator('#silences tr[data-key="' + phoneSilence.id + '"] button[data-action=expire]');
  await expire.waitFor({ state: 'visible', timeout: 10000 });
  await noSidewaysScroll('Silences tab at 390 px');
  await shot('alerts-silences-phone');
  await expire.click();
  await until(async () => assert.equal((await read('/api/v2/silences/' + encodeURIComponent(phoneSilence.id))).state, 'expired'), 10000);
  ok('Alerts view at 390 px: no sideways scroll on the overview, node page and every tab; silence and expire work');

  await page.setViewportSize(t.restoreViewport);
  await page.evaluate((c) => { location.hash = '#c=' + encodeURIComponent(c); }, main);
  await page.locator('#cards').waitFor({ state: 'visible' });
}
