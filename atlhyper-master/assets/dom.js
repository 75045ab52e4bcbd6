// Small DOM helpers. Every refresh updates existing elements in place: the setters write only
// what changed, so the page neither flickers nor loses its scroll position or focus.

/** The element with this id. */
export function byId(id) { return document.getElementById(id); }

/** Sets an element's text if it differs from what this helper last wrote. */
export function setText(el, text) { if (el._t !== text) { el._t = text; el.textContent = text; } }

/** Sets an element's class list if it differs from what this helper last wrote. */
export function setClass(el, className) { if (el._c !== className) { el._c = className; el.className = className; } }

/** Shows or hides an element. */
export function show(el, visible) { if (el.hidden === visible) el.hidden = !visible; }

/** A state line (loading, empty, error): shown with `text`, hidden when `text` is empty. */
export function showState(el, text, isError) {
  show(el, !!text);
  if (text) { setText(el, text); setClass(el, isError ? 'state err' : 'state'); }
}

/** Gives a table body exactly `count` rows of `columns` cells, reusing the rows it has. */
export function syncRowCount(tbody, count, columns) {
  while (tbody.rows.length < count) {
    const tr = tbody.insertRow();
    for (let i = 0; i < columns; i++) tr.insertCell();
  }
  while (tbody.rows.length > count) tbody.deleteRow(-1);
}

/** Marks the header cell that a table is sorted by (`asc` or `desc`), keeping `num` alignment. */
export function markSortedColumn(headRow, sort) {
  for (const th of headRow.cells) {
    const cls = ((th.classList.contains('num') ? 'num' : '') +
      (th.dataset.k === sort.key ? (sort.dir > 0 ? ' asc' : ' desc') : '')).trim();
    if (th.className !== cls) th.className = cls;
  }
}

/** Gives a select exactly these [value, text] options, reusing the ones it has. */
export function syncOptions(select, items) {
  while (select.options.length > items.length) select.remove(select.options.length - 1);
  items.forEach(([value, text], i) => {
    let o = select.options[i];
    if (!o) { o = new Option(); select.add(o); }
    if (o.value !== value) o.value = value;
    setText(o, text);
  });
}
