// The dashboard: a hash-routed page per view, each kept current by the manager's event feed.
import { api, follow, onUnauthorized, token, tokenWorks } from './api.js';
import { ago, badge, bar, h, json, megabytes, problemText, time } from './dom.js';
import { schemaForm } from './schema-form.js';

const STATUSES = ['Created', 'Processing', 'Paused', 'OnDeleting', 'Deleted', 'Failed'];
const PAGE_SIZE = 50;
const FEED_KEPT = 100;

const view = document.getElementById('view');

// ---------------------------------------------------------------------------------------------
// Shared state: the live event feed, and service names by id
// ---------------------------------------------------------------------------------------------

/** The latest events of the feed, newest first, for the overview. */
const recentEvents = [];
let feedAbort;
/** The page on screen: told of each event so that it can refresh what it shows. */
let current = { dispose() {}, onEvent() {} };

const serviceNames = new Map();

function rememberServices(services) {
  for (const s of services) serviceNames.set(s.id, s.name);
}

/** Learns the names of services not seen yet (an observer may name one that died long ago). */
async function learnServices(ids) {
  const unknown = [...new Set(ids.filter((id) => id && !serviceNames.has(id)))];
  await Promise.all(
    unknown.map((id) =>
      api('GET', `/services/${id}`)
        .then((s) => serviceNames.set(id, s.name))
        .catch(() => serviceNames.set(id, id.slice(0, 8))),
    ),
  );
}

function serviceLink(id) {
  if (!id) return h('span', { class: 'muted' }, '—');
  return h('a', { href: `#/services/${id}`, dataset: { serviceId: id } }, serviceNames.get(id) ?? id.slice(0, 8));
}

function startFeed() {
  feedAbort?.abort();
  feedAbort = new AbortController();
  const state = document.getElementById('feed-state');
  state.hidden = false;
  void follow('/events', {
    signal: feedAbort.signal,
    resume: true,
    onState(s) {
      state.textContent = s === 'live' ? '● live' : '○ reconnecting…';
      state.className = `feed-state ${s}`;
    },
    onEvent(event) {
      if (event.type === 'service') serviceNames.set(event.data.serviceId, event.data.name);
      recentEvents.unshift(event);
      recentEvents.length = Math.min(recentEvents.length, FEED_KEPT);
      current.onEvent(event);
    },
  });
}

/**
 * Runs `refresh` once, `ms` after an event, however many more come meanwhile (and never two at
 * once), so a busy fleet costs one request per interval rather than one per event.
 */
function throttled(refresh, ms) {
  let timer;
  let running = false;
  let again = false;
  const run = async () => {
    timer = undefined;
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await refresh();
    } finally {
      running = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  };
  const schedule = () => {
    timer ??= setTimeout(() => void run(), ms);
  };
  schedule.cancel = () => clearTimeout(timer);
  return schedule;
}

function errorBox(err) {
  return h('p', { class: 'error', role: 'alert' }, problemText(err));
}

/** Replaces the children of `el`, keeping the element (and what has focus elsewhere). */
function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter(Boolean));
}

// ---------------------------------------------------------------------------------------------
// Login
// ---------------------------------------------------------------------------------------------

function showLogin(message) {
  feedAbort?.abort();
  current.dispose();
  current = { dispose() {}, onEvent() {} };
  for (const id of ['nav', 'logout', 'feed-state']) document.getElementById(id).hidden = true;
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true });
  const status = h('p', { class: 'error', role: 'alert' }, message ?? '');
  const form = h(
    'form',
    { class: 'login', id: 'login' },
    h('h1', {}, 'Sign in'),
    h(
      'p',
      {},
      'Paste an API token (the admin token `npm start` prints, or one from POST /api/v1/tokens). ' +
        'It is kept in this tab only, until you log out or close it.',
    ),
    h('label', { for: 'token' }, 'Token'),
    input,
    h('button', { type: 'submit' }, 'Sign in'),
    status,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const value = input.value.trim();
    tokenWorks(value)
      .then((works) => {
        if (!works) {
          status.textContent = 'That token is not valid.';
          return;
        }
        token.set(value);
        start();
      })
      .catch((err) => {
        status.textContent = problemText(err);
      });
  });
  fill(view, form);
  input.focus();
}

onUnauthorized(() => {
  // Several requests may be refused at once: the first one signs out, the others find it done.
  if (!token.get()) return;
  token.clear();
  showLogin('The manager refused the token; sign in again.');
});

document.getElementById('logout').addEventListener('click', () => {
  token.clear();
  showLogin();
});

// ---------------------------------------------------------------------------------------------
// Overview
// ---------------------------------------------------------------------------------------------

function feedRow(event) {
  const d = event.data;
  if (event.type === 'service') {
    return h(
      'li',
      { class: 'feed-service' },
      h('time', {}, time(d.at)),
      ' service ',
      h('a', { href: `#/services/${d.serviceId}` }, d.name),
      ` ${d.event}`,
      d.reason ? h('span', { class: 'muted' }, ` — ${d.reason}`) : '',
    );
  }
  return h(
    'li',
    { class: 'feed-observer', dataset: { observerId: d.observerId, event: d.event } },
    h('time', {}, time(d.at)),
    ' ',
    h('a', { href: `#/observers/${d.observerId}` }, d.name),
    ` ${d.event} `,
    badge(d.status),
    d.serviceId ? [' on ', serviceLink(d.serviceId)] : '',
    d.generation !== null && d.generation !== undefined ? h('span', { class: 'muted' }, ` gen ${d.generation}`) : '',
    d.reason ? h('span', { class: 'muted' }, ` — ${d.reason}`) : '',
  );
}

async function liveServices() {
  const [alive, draining] = await Promise.all([
    api('GET', '/services?status=Alive&limit=200'),
    api('GET', '/services?status=Draining&limit=200'),
  ]);
  const services = [...alive.items, ...draining.items].sort((a, b) => a.name.localeCompare(b.name));
  rememberServices(services);
  return services;
}

function serviceCards(services) {
  if (services.length === 0) return h('p', { class: 'muted' }, 'No live service.');
  return services.map((s) =>
    h(
      'div',
      { class: 'card service-card', dataset: { serviceId: s.id } },
      h('div', {}, h('a', { href: `#/services/${s.id}` }, h('strong', {}, s.name)), ' ', badge(s.status)),
      bar(s.running, s.capacity, `${s.running} / ${s.capacity}`),
      h(
        'small',
        { class: 'muted heartbeat', dataset: { at: s.lastHeartbeatAt } },
        `heartbeat ${ago(s.lastHeartbeatAt)}`,
      ),
    ),
  );
}

function overviewPage() {
  const counts = h('div', { class: 'tiles', id: 'counts' });
  const services = h('div', { class: 'cards', id: 'service-cards' });
  const feed = h('ol', { class: 'feed', id: 'feed' });
  fill(
    view,
    h('h1', {}, 'Overview'),
    h('section', {}, h('h2', {}, 'Observers'), counts),
    h('section', {}, h('h2', {}, 'Live services'), services),
    h('section', {}, h('h2', {}, 'Live events'), feed),
  );
  const showFeed = () =>
    fill(feed, recentEvents.length ? recentEvents.map(feedRow) : h('li', { class: 'muted' }, 'Waiting for events…'));
  const refresh = async () => {
    try {
      const [{ byStatus }, live] = await Promise.all([api('GET', '/observers/counts'), liveServices()]);
      fill(
        counts,
        STATUSES.map((status) =>
          h(
            'a',
            { class: 'tile', href: `#/observers?status=${status}`, dataset: { status } },
            h('span', { class: 'count' }, String(byStatus[status] ?? 0)),
            badge(status),
          ),
        ),
      );
      fill(services, serviceCards(live));
    } catch (err) {
      fill(counts, errorBox(err));
    }
  };
  const schedule = throttled(refresh, 300);
  // A burst of events redraws the feed once, not once per event.
  const scheduleFeed = throttled(showFeed, 100);
  void refresh();
  showFeed();
  // Heartbeats are not events: the services are read again now and then, their ages every second.
  const poll = setInterval(schedule, 5000);
  const tick = setInterval(() => {
    for (const el of services.querySelectorAll('.heartbeat')) el.textContent = `heartbeat ${ago(el.dataset.at)}`;
  }, 1000);
  return {
    onEvent() {
      scheduleFeed();
      schedule();
    },
    dispose() {
      schedule.cancel();
      scheduleFeed.cancel();
      clearInterval(poll);
      clearInterval(tick);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Observers
// ---------------------------------------------------------------------------------------------

function observersPage(query) {
  const filters = {
    name: query.get('name') ?? '',
    kind: query.get('kind') ?? '',
    pool: query.get('pool') ?? '',
    status: query.get('status') ?? '',
  };
  // The cursors of the pages before this one: Previous pops one.
  const cursors = [];
  let cursor;
  let nextCursor = null;

  const nameInput = h('input', {
    id: 'filter-name',
    type: 'search',
    placeholder: 'name, or prefix*',
    value: filters.name,
  });
  const kindSelect = h('select', { id: 'filter-kind' }, h('option', { value: '' }, 'any kind'));
  const poolSelect = h('select', { id: 'filter-pool' }, h('option', { value: '' }, 'any pool'));
  const statusSelect = h(
    'select',
    { id: 'filter-status' },
    h('option', { value: '' }, 'any status'),
    STATUSES.map((s) => h('option', { value: s, selected: s === filters.status }, s)),
  );
  const body = h('tbody', { id: 'observer-rows' });
  const pageInfo = h('span', { class: 'muted', id: 'page-info' });
  const prev = h('button', { type: 'button', id: 'prev-page', disabled: true }, '← Previous');
  const next = h('button', { type: 'button', id: 'next-page', disabled: true }, 'Next →');
  const message = h('div');

  fill(
    view,
    h('h1', {}, 'Observers ', h('a', { class: 'button', href: '#/new' }, 'New observer')),
    h(
      'form',
      { class: 'filters', id: 'filters', onsubmit: (e) => e.preventDefault() },
      nameInput,
      kindSelect,
      poolSelect,
      statusSelect,
    ),
    message,
    h(
      'table',
      { class: 'list' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Name', 'Kind', 'Pool', 'Status', 'Service', 'Generation', 'Updated'].map((c) => h('th', {}, c)),
        ),
      ),
      body,
    ),
    h('div', { class: 'pager' }, prev, pageInfo, next),
  );

  // Only the latest request may fill the table: a slower earlier one (other filters, another page) is dropped.
  let latest = 0;
  const refresh = async () => {
    const asked = ++latest;
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    for (const [key, value] of Object.entries(filters)) if (value) params.set(key, value);
    if (cursor) params.set('cursor', cursor);
    try {
      const page = await api('GET', `/observers?${params}`);
      await learnServices(page.items.map((o) => o.serviceId));
      if (asked !== latest) return;
      nextCursor = page.nextCursor;
      fill(message);
      fill(
        body,
        page.items.length
          ? page.items.map((o) =>
              h(
                'tr',
                { dataset: { observerId: o.id } },
                h('td', {}, h('a', { href: `#/observers/${o.id}` }, o.name)),
                h('td', {}, o.kind),
                h('td', {}, o.pool),
                h('td', {}, badge(o.status)),
                h('td', {}, serviceLink(o.serviceId)),
                h('td', {}, String(o.generation)),
                h('td', { title: o.updatedAt }, ago(o.updatedAt)),
              ),
            )
          : h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No observer matches.')),
      );
      prev.disabled = cursors.length === 0;
      next.disabled = !nextCursor;
      pageInfo.textContent = `page ${cursors.length + 1} · ${page.items.length} shown`;
    } catch (err) {
      fill(message, errorBox(err));
    }
  };
  const schedule = throttled(refresh, 500);

  const applyFilters = () => {
    filters.name = nameInput.value.trim();
    filters.kind = kindSelect.value;
    filters.pool = poolSelect.value;
    filters.status = statusSelect.value;
    cursors.length = 0;
    cursor = undefined;
    const params = new URLSearchParams(Object.entries(filters).filter(([, v]) => v));
    // The filters live in the address (bookmarkable) without a navigation that would rebuild the page.
    history.replaceState(null, '', `#/observers${params.size ? `?${params}` : ''}`);
    schedule();
  };
  let typing;
  nameInput.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(applyFilters, 300);
  });
  for (const select of [kindSelect, poolSelect, statusSelect]) select.addEventListener('change', applyFilters);
  prev.addEventListener('click', () => {
    cursor = cursors.pop();
    void refresh();
  });
  next.addEventListener('click', () => {
    if (!nextCursor) return;
    cursors.push(cursor);
    cursor = nextCursor;
    void refresh();
  });

  api('GET', '/kinds')
    .then(({ items }) => {
      // Observers may outlive the services that host their kind or serve their pool: a filter
      // from the address keeps its option even then.
      const kinds = items.map((k) => k.name);
      if (filters.kind && !kinds.includes(filters.kind)) kinds.push(filters.kind);
      const pools = [...new Set(items.flatMap((k) => k.pools))].sort();
      kindSelect.append(...kinds.map((k) => h('option', { value: k, selected: k === filters.kind }, k)));
      if (filters.pool && !pools.includes(filters.pool)) pools.push(filters.pool);
      poolSelect.append(...pools.map((p) => h('option', { value: p, selected: p === filters.pool }, p)));
    })
    .catch((err) => fill(message, errorBox(err)));
  void refresh();
  return {
    onEvent(event) {
      if (event.type === 'observer') schedule();
    },
    dispose() {
      schedule.cancel();
      clearTimeout(typing);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// One observer
// ---------------------------------------------------------------------------------------------

const ALLOWED = {
  pause: ['Created', 'Processing'],
  resume: ['Paused'],
  restart: ['Created', 'Processing', 'Failed'],
  edit: ['Created', 'Processing', 'Paused', 'Failed'],
  delete: ['Created', 'Processing', 'OnDeleting', 'Failed', 'Paused'],
};

function observerPage(id) {
  const header = h('h1', { id: 'observer-name' }, '…');
  const actions = h('div', { class: 'actions', id: 'actions' });
  const message = h('div', { id: 'action-message' });
  const details = h('dl', { class: 'details', id: 'observer-details' });
  const params = h('div', { id: 'observer-params' });
  const editor = h('div', { id: 'params-editor' });
  const timeline = h('tbody', { id: 'timeline' });
  const observations = h('ol', { class: 'observations', id: 'observations' });
  const kept = [];
  let observer;
  let editing = false;

  fill(
    view,
    header,
    actions,
    message,
    h(
      'div',
      { class: 'columns' },
      h('section', {}, h('h2', {}, 'Details'), details, h('h2', {}, 'Params'), params, editor),
      h('section', {}, h('h2', {}, 'Live observations'), observations),
    ),
    h(
      'section',
      {},
      h('h2', {}, 'Timeline'),
      h(
        'table',
        { class: 'list' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['At', 'Event', 'Status', 'Service', 'Generation', 'Reason'].map((c) => h('th', {}, c)),
          ),
        ),
        timeline,
      ),
    ),
  );

  const act = async (label, method, path, body) => {
    fill(message);
    try {
      const answer = await api(method, path, body);
      fill(message, h('p', { class: 'ok', role: 'status' }, `${label}: accepted (${answer.status}).`));
      schedule();
      return true;
    } catch (err) {
      fill(message, errorBox(err));
      return false;
    }
  };

  const openEditor = async () => {
    editing = true;
    try {
      const { items } = await api('GET', '/kinds');
      const kind = items.find((k) => k.name === observer.kind);
      if (!kind) throw new Error(`no live service hosts kind ${observer.kind} now, so its schema is unknown`);
      const form = schemaForm(kind.paramsSchema, observer.params);
      const el = h(
        'form',
        { id: 'edit-form', class: 'card' },
        h('h3', {}, 'Edit params'),
        form.element,
        h('button', { type: 'submit' }, 'Save params'),
        ' ',
        h('button', { type: 'button', onclick: closeEditor }, 'Cancel'),
      );
      el.addEventListener('submit', (e) => {
        e.preventDefault();
        let value;
        try {
          value = form.read();
        } catch (err) {
          fill(message, errorBox(err));
          return;
        }
        void act('Params saved', 'PATCH', `/observers/${id}`, { params: value }).then((ok) => ok && closeEditor());
      });
      fill(editor, el);
    } catch (err) {
      editing = false;
      fill(message, errorBox(err));
    }
  };
  const closeEditor = () => {
    editing = false;
    fill(editor);
    render();
  };

  const render = () => {
    const o = observer;
    header.replaceChildren(o.name, ' ', badge(o.status));
    const button = (verb, label, onclick) =>
      h(
        'button',
        { type: 'button', id: `action-${verb}`, disabled: !ALLOWED[verb].includes(o.status), onclick },
        label,
      );
    fill(
      actions,
      button('pause', 'Pause', () => void act('Pause', 'POST', `/observers/${id}/pause`)),
      button('resume', 'Resume', () => void act('Resume', 'POST', `/observers/${id}/resume`)),
      button('restart', 'Restart', () => void act('Restart', 'POST', `/observers/${id}/restart`)),
      button('edit', 'Edit params', () => void (editing ? closeEditor() : openEditor())),
      button('delete', 'Delete', () => {
        if (confirm(`Delete observer ${o.name}?`)) void act('Delete', 'DELETE', `/observers/${id}`);
      }),
    );
    const row = (term, value, field) => [h('dt', {}, term), h('dd', { dataset: { field } }, value)];
    fill(
      details,
      row('Status', badge(o.status), 'status'),
      row('Service', serviceLink(o.serviceId), 'service'),
      row('Generation', String(o.generation), 'generation'),
      row('Kind', h('a', { href: '#/kinds' }, o.kind), 'kind'),
      row('Pool', o.pool, 'pool'),
      row('Id', h('code', {}, o.id), 'id'),
      row('Created', new Date(o.createdAt).toLocaleString(), 'created'),
      row('Updated', new Date(o.updatedAt).toLocaleString(), 'updated'),
      o.waitReason ? row('Waiting', o.waitReason, 'wait-reason') : [],
      o.lastError ? row('Last error', h('span', { class: 'error' }, o.lastError), 'last-error') : [],
    );
    fill(params, json(o.params));
    fill(
      timeline,
      [...o.timeline]
        .reverse()
        .map((t) =>
          h(
            'tr',
            { dataset: { event: t.event } },
            h('td', { title: t.at }, time(t.at)),
            h('td', {}, t.event),
            h('td', {}, badge(t.status)),
            h('td', {}, serviceLink(t.serviceId)),
            h('td', {}, t.generation === null ? '—' : String(t.generation)),
            h('td', {}, t.reason ?? ''),
          ),
        ),
    );
  };

  const refresh = async () => {
    try {
      observer = await api('GET', `/observers/${id}`);
      await learnServices([observer.serviceId, ...observer.timeline.map((t) => t.serviceId)]);
      render();
    } catch (err) {
      fill(message, errorBox(err));
    }
  };
  const schedule = throttled(refresh, 150);
  void refresh();

  const showObservations = () =>
    fill(
      observations,
      kept.length
        ? kept.map((o) =>
            h(
              'li',
              {},
              h('time', {}, time(o.at)),
              o.serviceId ? [' ', serviceLink(o.serviceId)] : '',
              h('code', {}, ` ${JSON.stringify(o.data)}`),
            ),
          )
        : h('li', { class: 'muted' }, 'None yet.'),
    );
  showObservations();
  // A fast observer publishes many times a second: the list is redrawn at most every 100 ms.
  const scheduleObservations = throttled(showObservations, 100);
  const stream = new AbortController();
  void follow(`/observers/${id}/observations?limit=20`, {
    signal: stream.signal,
    // A new connection sends the kept ones again: start the list afresh.
    onOpen() {
      kept.length = 0;
    },
    onEvent(event) {
      serviceNames.set(event.data.serviceId, event.data.serviceName);
      kept.unshift(event.data);
      kept.length = Math.min(kept.length, 30);
      scheduleObservations();
    },
  });

  return {
    onEvent(event) {
      if (event.type === 'observer' && event.data.observerId === id) schedule();
    },
    dispose() {
      schedule.cancel();
      scheduleObservations.cancel();
      stream.abort();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Services
// ---------------------------------------------------------------------------------------------

function servicesPage(query) {
  const showDead = query.get('dead') === '1';
  const body = h('tbody', { id: 'service-rows' });
  const message = h('div');
  const deadToggle = h('input', { type: 'checkbox', id: 'show-dead', checked: showDead });
  fill(
    view,
    h('h1', {}, 'Services'),
    h('label', { class: 'inline' }, deadToggle, ' show dead ones too'),
    message,
    h(
      'table',
      { class: 'list' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          [
            'Name',
            'Status',
            'Load',
            'Capacity',
            'Running',
            'Free',
            'Memory (heap / rss)',
            'Pools',
            'Kinds',
            'Heartbeat',
            '',
          ].map((c) => h('th', {}, c)),
        ),
      ),
      body,
    ),
  );
  const refresh = async () => {
    try {
      const services = showDead ? (await api('GET', '/services?limit=200')).items : await liveServices();
      rememberServices(services);
      fill(
        body,
        services.map((s) =>
          h(
            'tr',
            { dataset: { serviceId: s.id } },
            h('td', {}, h('a', { href: `#/services/${s.id}` }, s.name)),
            h('td', {}, badge(s.status)),
            h('td', {}, bar(s.running, s.capacity, `${Math.round((s.load ?? 0) * 100)}%`)),
            h('td', {}, String(s.capacity)),
            h('td', {}, String(s.running)),
            h('td', {}, String(s.freeSlots)),
            h('td', {}, `${megabytes(s.memory?.heapUsedBytes)} / ${megabytes(s.memory?.rssBytes)}`),
            h('td', {}, (s.pools ?? []).join(', ')),
            h('td', {}, (s.kinds ?? []).join(', ')),
            h('td', { title: s.lastHeartbeatAt ?? '' }, ago(s.lastHeartbeatAt)),
            h('td', {}, drainButton(s, message, schedule)),
          ),
        ),
      );
    } catch (err) {
      fill(message, errorBox(err));
    }
  };
  const schedule = throttled(refresh, 300);
  deadToggle.addEventListener('change', () => {
    history.replaceState(null, '', deadToggle.checked ? '#/services?dead=1' : '#/services');
    navigate();
  });
  void refresh();
  const poll = setInterval(schedule, 5000);
  return {
    onEvent(event) {
      if (event.type === 'service' || event.data.event === 'started') schedule();
    },
    dispose() {
      schedule.cancel();
      clearInterval(poll);
    },
  };
}

function drainButton(s, message, after) {
  if (s.status === 'Dead') return '';
  const verb = s.status === 'Draining' ? 'undrain' : 'drain';
  return h(
    'button',
    {
      type: 'button',
      title: 'needs an admin token',
      onclick: () =>
        api('POST', `/services/${s.id}/${verb}`)
          .then(() => after())
          .catch((err) => fill(message, errorBox(err))),
    },
    verb === 'drain' ? 'Drain' : 'Undrain',
  );
}

function servicePage(id) {
  const message = h('div');
  const content = h('div');
  fill(view, h('h1', { id: 'service-name' }, 'Service'), message, content);
  const refresh = async () => {
    try {
      const s = await api('GET', `/services/${id}`);
      serviceNames.set(s.id, s.name);
      view.querySelector('#service-name').replaceChildren(s.name, ' ', badge(s.status));
      const row = (term, value) => [h('dt', {}, term), h('dd', {}, value)];
      fill(
        content,
        h('p', {}, drainButton(s, message, schedule)),
        h(
          'dl',
          { class: 'details' },
          row('Load', bar(s.running, s.capacity, `${s.running} / ${s.capacity}`)),
          row('Free slots', String(s.freeSlots)),
          row('Memory', `heap ${megabytes(s.memory?.heapUsedBytes)}, rss ${megabytes(s.memory?.rssBytes)}`),
          row('Pools', (s.pools ?? []).join(', ')),
          row('Kinds', (s.kinds ?? []).join(', ')),
          row('Heartbeat', ago(s.lastHeartbeatAt)),
          row('Host / pid', `${s.host ?? '—'} / ${s.pid ?? '—'}`),
          row('Version', s.version ?? '—'),
          row('Started', s.startedAt ? new Date(s.startedAt).toLocaleString() : '—'),
          s.diedAt ? row('Died', `${new Date(s.diedAt).toLocaleString()} — ${s.deathReason ?? ''}`) : [],
        ),
        h('h2', {}, 'Observers on it'),
        h(
          'ul',
          {},
          (s.observers ?? []).length
            ? s.observers.map((o) =>
                h(
                  'li',
                  {},
                  h('a', { href: `#/observers/${o.id}` }, o.name ?? o.id),
                  o.status ? [' ', badge(o.status)] : '',
                ),
              )
            : h('li', { class: 'muted' }, 'None.'),
        ),
      );
    } catch (err) {
      fill(message, errorBox(err));
    }
  };
  const schedule = throttled(refresh, 300);
  void refresh();
  const poll = setInterval(schedule, 5000);
  return {
    onEvent(event) {
      if (event.data.serviceId === id) schedule();
    },
    dispose() {
      schedule.cancel();
      clearInterval(poll);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Kinds, and creating an observer
// ---------------------------------------------------------------------------------------------

function kindsPage() {
  const list = h('div', { id: 'kinds' });
  fill(view, h('h1', {}, 'Kinds'), list);
  api('GET', '/kinds')
    .then(({ items }) =>
      fill(
        list,
        items.length
          ? items.map((k) =>
              h(
                'section',
                { class: 'card kind', dataset: { kind: k.name } },
                h(
                  'h2',
                  {},
                  k.name,
                  ' ',
                  h('a', { class: 'button', href: `#/new?kind=${encodeURIComponent(k.name)}` }, 'Create one'),
                ),
                k.paramsSchema?.description ? h('p', {}, k.paramsSchema.description) : '',
                h(
                  'p',
                  { class: 'muted' },
                  `pools: ${k.pools.join(', ')} · overlap: ${String(k.overlap)} · hosted by ${k.services.length} service(s)`,
                ),
                h('details', { open: true }, h('summary', {}, 'Params schema'), json(k.paramsSchema)),
              ),
            )
          : h('p', { class: 'muted' }, 'No live service hosts any kind.'),
      ),
    )
    .catch((err) => fill(list, errorBox(err)));
  return { onEvent() {}, dispose() {} };
}

function createPage(query) {
  const message = h('div', { id: 'create-message' });
  const kindSelect = h('select', { id: 'create-kind', name: 'kind', required: true });
  const poolSelect = h('select', { id: 'create-pool', name: 'pool' });
  const nameInput = h('input', { id: 'create-name', name: 'name', required: true, autocomplete: 'off' });
  const paramsBox = h('fieldset', { class: 'params' }, h('legend', {}, 'Params'));
  let kinds = [];
  let form;
  const showKind = () => {
    const kind = kinds.find((k) => k.name === kindSelect.value);
    if (!kind) return;
    fill(
      poolSelect,
      kind.pools.map((p) => h('option', { value: p, selected: p === 'default' }, p)),
    );
    form = schemaForm(kind.paramsSchema);
    fill(paramsBox, h('legend', {}, 'Params'), form.element);
  };
  kindSelect.addEventListener('change', showKind);
  const submit = h('button', { type: 'submit', id: 'create-submit' }, 'Create');
  const el = h(
    'form',
    { id: 'create-form', class: 'card' },
    h(
      'div',
      { class: 'field' },
      h('label', { for: 'create-name' }, 'Name', h('span', { class: 'required' }, ' *')),
      nameInput,
    ),
    h('div', { class: 'field' }, h('label', { for: 'create-kind' }, 'Kind'), kindSelect),
    h('div', { class: 'field' }, h('label', { for: 'create-pool' }, 'Pool'), poolSelect),
    paramsBox,
    submit,
  );
  el.addEventListener('submit', (e) => {
    e.preventDefault();
    let params;
    try {
      params = form.read();
    } catch (err) {
      fill(message, errorBox(err));
      return;
    }
    submit.disabled = true;
    api('POST', '/observers', { name: nameInput.value.trim(), kind: kindSelect.value, pool: poolSelect.value, params })
      .then((created) => {
        location.hash = `#/observers/${created.id}`;
      })
      .catch((err) => {
        submit.disabled = false;
        fill(message, errorBox(err));
      });
  });
  fill(view, h('h1', {}, 'New observer'), message, el);
  api('GET', '/kinds')
    .then(({ items }) => {
      kinds = items;
      const wanted = query.get('kind');
      fill(
        kindSelect,
        items.map((k) => h('option', { value: k.name, selected: k.name === wanted }, k.name)),
      );
      if (items.length === 0)
        fill(message, errorBox(new Error('No live service hosts any kind: start a service first.')));
      showKind();
    })
    .catch((err) => fill(message, errorBox(err)));
  return { onEvent() {}, dispose() {} };
}

// ---------------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------------

function navigate() {
  if (!token.get()) {
    showLogin();
    return;
  }
  const [path, search] = location.hash.replace(/^#/, '').split('?');
  const query = new URLSearchParams(search ?? '');
  const parts = (path || '/').split('/').filter(Boolean);
  current.dispose();
  let section = parts[0] ?? 'overview';
  if (section === 'observers' && parts[1]) current = observerPage(decodeURIComponent(parts[1]));
  else if (section === 'observers') current = observersPage(query);
  else if (section === 'services' && parts[1]) current = servicePage(decodeURIComponent(parts[1]));
  else if (section === 'services') current = servicesPage(query);
  else if (section === 'kinds') current = kindsPage();
  else if (section === 'new') current = createPage(query);
  else {
    section = 'overview';
    current = overviewPage();
  }
  for (const link of document.querySelectorAll('[data-nav]')) {
    link.classList.toggle('active', link.dataset.nav === section);
  }
  window.scrollTo(0, 0);
}

function start() {
  for (const id of ['nav', 'logout']) document.getElementById(id).hidden = false;
  startFeed();
  navigate();
}

window.addEventListener('hashchange', navigate);
if (token.get()) start();
else showLogin();
