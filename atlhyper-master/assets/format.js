// How figures read on the page: every function takes a number (or a time) and returns the text
// shown, '—' when the value is missing or not meaningful.

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

/** A chart's time label: `14:05`, or `11-30 14:05` when `withDate` (ranges of a day or more). */
export function chartTime(t, withDate) {
  const d = new Date(t);
  const hm = twoDigits(d.getHours()) + ':' + twoDigits(d.getMinutes());
  return withDate ? twoDigits(d.getMonth() + 1) + '-' + twoDigits(d.getDate()) + ' ' + hm : hm;
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
