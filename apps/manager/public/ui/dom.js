// Builds elements from data with textContent only: nothing from the API is ever parsed as HTML.

/** h('a', {href: '#/'}, 'text', child) → an element; `on*` attributes take listeners. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  el.append(...children.flat().filter((c) => c !== undefined && c !== null && c !== false));
  return el;
}

/** "3 s ago", "2 min ago" for an ISO time. */
export function ago(iso) {
  const at = iso ? Date.parse(iso) : NaN;
  if (Number.isNaN(at)) return '—';
  const seconds = Math.max(0, Math.round((Date.now() - at) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

export function time(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : '—';
}

export function megabytes(bytes) {
  return typeof bytes === 'number' ? `${(bytes / 1048576).toFixed(0)} MB` : '—';
}

export function badge(status) {
  return h('span', { class: `badge status-${String(status)}`, dataset: { status } }, String(status));
}

/** A bar showing `value` out of `max`. */
export function bar(value, max, label) {
  const share = max > 0 ? Math.min(1, value / max) : 0;
  const fill = h('span', { class: 'bar-fill' });
  fill.style.width = `${(share * 100).toFixed(0)}%`;
  if (share >= 0.9) fill.classList.add('full');
  return h('span', { class: 'bar', title: label }, fill, h('span', { class: 'bar-label' }, label));
}

export function json(value) {
  return h('pre', { class: 'json' }, JSON.stringify(value, null, 2));
}

export function problemText(err) {
  const errors = err?.problem?.errors;
  const detail = err instanceof Error ? err.message : String(err);
  return Array.isArray(errors) && errors.length > 0
    ? `${detail} — ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`
    : detail;
}
