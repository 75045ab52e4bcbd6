// What the viewer chose and this browser remembers (local storage): the colour theme and
// whether times read in UTC or in the browser's zone.

const THEME_KEY = 'atlhyper.theme';
const ZONE_KEY = 'atlhyper.timeZone';
const THEMES = ['auto', 'light', 'dark'];

function read(key, allowed) {
  try {
    const v = localStorage.getItem(key);
    return allowed.includes(v) ? v : allowed[0];
  } catch (_) { return allowed[0]; }
}

function write(key, value) {
  try { localStorage.setItem(key, value); } catch (_) { /* private mode: this page only */ }
}

/** The remembered choices: theme 'auto' (follow the system), 'light' or 'dark'; zone 'local' or 'utc'. */
export const prefs = { theme: read(THEME_KEY, THEMES), zone: read(ZONE_KEY, ['local', 'utc']) };

/** Applies the theme to the document (the stylesheet reads `data-theme`). */
export function applyTheme() {
  if (prefs.theme === 'auto') document.documentElement.removeAttribute('data-theme');
  else document.documentElement.dataset.theme = prefs.theme;
}

/** The next theme in auto -> light -> dark, applied and remembered. */
export function cycleTheme() {
  prefs.theme = THEMES[(THEMES.indexOf(prefs.theme) + 1) % THEMES.length];
  write(THEME_KEY, prefs.theme);
  applyTheme();
}

/** Switches times between local and UTC, remembered. */
export function toggleZone() {
  prefs.zone = prefs.zone === 'utc' ? 'local' : 'utc';
  write(ZONE_KEY, prefs.zone);
}
