// The chart axes' arithmetic, run in node over the page's own modules: for many value ranges
// and every unit, the y ticks are a 1-2-5 step, cover the range, and read as distinct labels.

import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const assets = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'atlhyper-master', 'assets');
const UNITS = ['%', 'B', 'B/s', 'ops/s', '/s', '°C', ''];

/** A small deterministic generator, so a failure names a case that can be replayed. */
function generator(seed) {
  let x = seed >>> 0;
  return () => { x = (x * 1664525 + 1013904223) >>> 0; return x / 2 ** 32; };
}

export async function checkScales(ok) {
  const { valueTicks } = await import(pathToFileURL(path.join(assets, 'charts.js')).href);
  const { axisScale, formatValue } = await import(pathToFileURL(path.join(assets, 'format.js')).href);
  const rnd = generator(18);
  let cases = 0;
  for (let i = 0; i < 3000; i++) {
    const unit = UNITS[i % UNITS.length];
    // Magnitudes from 1e-3 to 1e13, spans from a hair to the whole range.
    const hi = 10 ** (rnd() * 16 - 3);
    const lo = unit === '°C' ? hi * rnd() : 0;
    const scale = axisScale(unit, hi);
    const t = valueTicks(lo / scale.div, hi / scale.div, 4);
    const what = JSON.stringify({ unit, lo, hi, scale, t });
    const step = t.ticks[1] - t.ticks[0];
    const mantissa = step / 10 ** Math.floor(Math.log10(step) + 1e-9);
    assert.ok([1, 2, 5, 10].some((m) => Math.abs(mantissa - m) < 1e-6), 'a 1-2-5 step: ' + what);
    assert.ok(t.lo <= lo / scale.div + 1e-9 && t.hi >= hi / scale.div - 1e-9, 'the ticks cover the range: ' + what);
    assert.ok(t.ticks.length >= 2 && t.ticks.length <= 9, 'between 2 and 9 ticks: ' + what);
    const labels = t.ticks.map((v) => v.toFixed(t.decimals));
    assert.equal(new Set(labels).size, labels.length, 'distinct labels ' + labels.join(', ') + ': ' + what);
    assert.ok(!/NaN|Infinity/.test(formatValue(hi, unit)), 'a value reads as a number: ' + what);
    cases++;
  }
  ok('axis ticks over ' + cases + ' value ranges and ' + UNITS.length + ' units: 1-2-5 steps, covering, distinct labels');
}
