// Talks to the manager's API with the token the user gave. The token lives in sessionStorage
// (gone when the tab closes) and travels only in the Authorization header, never in a URL.

const TOKEN_KEY = 'vigil.token';
const BASE = '/api/v1';

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

let unauthorized = () => undefined;
/** Called when the manager refuses the token (revoked, or the manager restarted with others). */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? `HTTP ${status}`);
    this.status = status;
    this.problem = problem ?? {};
  }
}

function headers(extra) {
  return { authorization: `Bearer ${token.get() ?? ''}`, ...extra };
}

/** One request; resolves to the parsed JSON answer, or throws an ApiError with the problem. */
export async function api(method, path, body) {
  const response = await fetch(BASE + path, {
    method,
    cache: 'no-store',
    headers: headers(
      body === undefined
        ? { accept: 'application/json' }
        : { accept: 'application/json', 'content-type': 'application/json' },
    ),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = { detail: text.slice(0, 200) };
  }
  if (response.status === 401) unauthorized();
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** Whether the manager takes `value` as a token; asks without keeping it or raising a 401 alarm. */
export async function tokenWorks(value) {
  const response = await fetch(`${BASE}/kinds`, {
    cache: 'no-store',
    headers: { authorization: `Bearer ${value}`, accept: 'application/json' },
  });
  if (response.status === 401) return false;
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => undefined));
  return true;
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

/**
 * Follows a Server-Sent Events stream with fetch, since EventSource cannot send a header. It
 * reconnects after a loss; with `resume`, from the last event id it saw (Last-Event-ID), so
 * nothing is missed or repeated. Stops when `signal` aborts.
 */
export async function follow(
  path,
  { signal, resume = false, onEvent, onOpen = () => undefined, onState = () => undefined },
) {
  let lastId;
  while (!signal.aborted) {
    try {
      const extra = { accept: 'text/event-stream' };
      if (resume && lastId !== undefined) extra['last-event-id'] = lastId;
      const response = await fetch(BASE + path, { headers: headers(extra), cache: 'no-store', signal });
      if (response.status === 401) {
        unauthorized();
        return;
      }
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      onOpen();
      onState('live');
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      let event = { type: 'message', data: [], id: undefined };
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, end).replace(/\r$/, '');
          buffer = buffer.slice(end + 1);
          if (line === '') {
            if (event.data.length > 0) {
              if (event.id !== undefined) lastId = event.id;
              onEvent({ type: event.type, id: event.id, data: JSON.parse(event.data.join('\n')) });
            }
            event = { type: 'message', data: [], id: undefined };
            continue;
          }
          if (line.startsWith(':')) continue;
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const content = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') event.type = content;
          else if (field === 'data') event.data.push(content);
          else if (field === 'id') event.id = content;
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      console.warn(`stream ${path} lost:`, err instanceof Error ? err.message : err);
    }
    if (signal.aborted) return;
    onState('reconnecting');
    await sleep(1000, signal);
  }
}
