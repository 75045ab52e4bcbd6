// How figures read on the page: every function takes a number (or a time) and returns the text
// shown, '—' when the value is missing or not meaningful.

import { prefs } from './prefs.js';

/** A percentage with one decimal: `12.3%`. */
export function percent(v) { return Number.isFinite(v) ? v.toFixed(1) + '%' : '—'; }

/** A size in bytes with a binary unit: `1.5 GiB`. */
export function byteSize(v) {
  if (!Number.isFinite(v) || v < 0) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? v.toFixed(0) : v.toFixed(1)) + ' ' + units[i];
}

/** A rate in bytes per second: `1.5 MiB/s`. */
export function byteRate(v) { return Number.isFinite(v) && v >= 0 ? byteSize(v) + '/s' : '—'; }

/** A temperature in degrees Celsius (0 means "no sensor"): `52.0 °C`. */
export function celsius(v) { return Number.isFinite(v) && v > 0 ? v.toFixed(1) + ' °C' : '—'; }

/** A number with `digits` decimals. */
export function fixed(v, digits) { return Number.isFinite(v) ? v.toFixed(digits) : '—'; }

/** A duration in seconds, to its two largest units: `3d 4h`, `2h 5m`, `7m`. */
export function duration(seconds) {
  if (!Number.isFinite(seconds) || seconds <= 0) return '—';
  const d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600), m = Math.floor(seconds % 3600 / 60);
  if (d > 0) return d + 'd ' + h + 'h';
  if (h > 0) return h + 'h ' + m + 'm';
  return m + 'm';
}

const twoDigits = (n) => (n < 10 ? '0' : '') + n;

/** Local time of day with seconds: `14:05:09`. */
export function clockTime(t) {
  const d = new Date(t);
  return twoDigits(d.getHours()) + ':' + twoDigits(d.getMinutes()) + ':' + twoDigits(d.getSeconds());
}

/** A moment in local time: `14:05:09` today, `11-30 14:05` on another day, '—' when missing. */
export function dateTime(t) {
  const d = new Date(t);
  if (t == null || !Number.isFinite(d.getTime())) return '—';
  const today = new Date();
  if (d.toDateString() === today.toDateString()) return clockTime(d);
  return twoDigits(d.getMonth() + 1) + '-' + twoDigits(d.getDate()) + ' ' + twoDigits(d.getHours()) + ':' + twoDigits(d.getMinutes());
}

/** A node's clock skew (clock_skew_seconds: node clock minus receive time, positive = ahead). */
export function clockSkew(seconds) {
  if (!Number.isFinite(seconds)) return '';
  const a = Math.abs(seconds);
  return 'clock ' + (seconds > 0 ? 'ahead' : 'behind') + ' by ' + (a < 60 ? a.toFixed(0) + ' s' : duration(a));
}

/** How long ago an RFC 3339 time was: `just now`, `12 s ago`, `3m ago`. */
export function timeAgo(t) {
  const s = Math.round((Date.now() - Date.parse(t)) / 1000);
  if (!Number.isFinite(s)) return 'at an unknown time';
  if (s < 5) return 'just now';
  return s < 60 ? s + ' s ago' : duration(s) + ' ago';
}

// ---------- charts: time zone, axis units, values by unit ----------

/** The zone times are shown in: 'UTC', or the browser's zone name (`Europe/Berlin`). */
export function timeZoneName() {
  if (prefs.zone === 'utc') return 'UTC';
  try { return Intl.DateTimeFormat().resolvedOptions().timeZone || 'local'; } catch (_) { return 'local'; }
}

/** The zone shown, short: `UTC`, or the browser's offset now (`UTC+05:30`). */
export function timeZoneOffsetLabel() {
  if (prefs.zone === 'utc') return 'UTC';
  const m = -new Date().getTimezoneOffset();
  return 'UTC' + (m < 0 ? '-' : '+') + twoDigits(Math.floor(Math.abs(m) / 60)) + ':' + twoDigits(Math.abs(m) % 60);
}

/** Date parts of t in the zone shown. */
function parts(t) {
  const d = new Date(t);
  return prefs.zone === 'utc'
    ? [d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()]
    : [d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds()];
}

/** A chart time: `14:05`, `11-30 14:05` with the date, `11-30` for a date only, `:09` with seconds. */
export function timeLabel(t, withDate, dateOnly, withSeconds) {
  const [mo, day, h, mi, s] = parts(t);
  const date = twoDigits(mo) + '-' + twoDigits(day);
  if (dateOnly) return date;
  const hm = twoDigits(h) + ':' + twoDigits(mi) + (withSeconds ? ':' + twoDigits(s) : '');
  return withDate ? date + ' ' + hm : hm;
}

const BINARY = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi'];
const DECIMAL = ['', 'k', 'M', 'G', 'T'];

/** How an axis of `unit` reads values up to `maxAbs`: divide by `div`, label the axis `label`. */
export function axisScale(unit, maxAbs) {
  const binary = unit === 'B' || unit === 'B/s';
  const prefixes = binary ? BINARY : unit === '%' || unit === '°C' ? [''] : DECIMAL;
  const base = binary ? 1024 : 1000;
  let i = 0;
  while (maxAbs >= base && i < prefixes.length - 1) { maxAbs /= base; i++; }
  const div = Math.pow(base, i);
  if (binary) return { div, label: prefixes[i] + unit };
  if (!unit) return { div, label: prefixes[i] };
  return { div, label: prefixes[i] + (prefixes[i] && unit[0] !== '/' ? ' ' : '') + unit };
}

/** A value of a series in its unit: `12.3%`, `1.5 MiB/s`, `52.0 °C`, `1.2k ops/s`, `0.42`. */
export function formatValue(v, unit) {
  if (!Number.isFinite(v)) return '—';
  switch (unit) {
    case '%': return percent(v);
    case 'B': return byteSize(v);
    case 'B/s': return byteRate(v);
    case '°C': return v.toFixed(1) + ' °C';
    default: {
      const { div, label } = axisScale(unit, Math.abs(v));
      const x = v / div;
      return (Math.abs(x) >= 100 || div === 1 && Number.isInteger(x) ? x.toFixed(0) : x.toFixed(2)) + (label ? (label[0] === '/' ? '' : ' ') + label : '');
    }
  }
}
