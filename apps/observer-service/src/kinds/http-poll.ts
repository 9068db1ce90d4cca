import { EGRESS_URL_KEYWORD, EgressRefused, guardedGet, type EgressPolicy } from '@vigil/egress';
import { defineKind, MAX_TIMER_MS, sleep, z } from '@vigil/observer-sdk';

const MAX_BODY_IN_OBSERVATION = 64 * 1024;
/** Bytes of body read (and hashed) per request: changes past the observation's 64 KB still show. */
const MAX_BODY_READ = 1024 * 1024;

/**
 * Watches an HTTP endpoint: GETs it every interval and publishes whenever what it answers
 * changes (status or body). An unreachable endpoint is an observation, not a crash: the
 * observer keeps watching. An address the egress policy refuses fails the observer.
 */
export function httpPoll(egress: EgressPolicy) {
  return defineKind({
    name: 'http-poll',
    description: 'GETs url every intervalMs and publishes when the status or body changes.',
    params: z.object({
      url: z
        .url({ protocol: /^https?$/ })
        .describe('The URL to watch')
        .meta({ [EGRESS_URL_KEYWORD]: true }),
      // Every request is a fresh connection (pinned to the address just resolved), made on a
      // user's say-so: at most one a second per observer keeps a service from being a load
      // generator against the endpoint.
      intervalMs: z.int().min(1_000).default(5_000).describe('Milliseconds between requests'),
      timeoutMs: z.int().min(1).max(MAX_TIMER_MS).default(10_000).describe('Request timeout in milliseconds'),
    }),
    // Everything but a refusal is an observation, so a throw is a refusal: no restart changes it.
    restartPolicy: { maxRestarts: 0 },
    async run({ params, signal, publish }) {
      let last: string | undefined;
      do {
        const timeout = AbortSignal.any([signal, AbortSignal.timeout(params.timeoutMs)]);
        const seen = await fetchOnce(params.url, egress, timeout);
        if (signal.aborted) return;
        if (seen.fingerprint !== last) {
          last = seen.fingerprint;
          publish(seen.observation);
        }
      } while (await sleep(params.intervalMs, signal));
    },
  });
}

async function fetchOnce(url: string, policy: EgressPolicy, signal: AbortSignal) {
  try {
    const response = await guardedGet(url, {
      policy,
      signal,
      maxBytes: MAX_BODY_READ,
      keepBytes: MAX_BODY_IN_OBSERVATION,
    });
    const whole = response.bytes <= MAX_BODY_IN_OBSERVATION;
    return {
      fingerprint: `${response.status}:${response.sha256}`,
      observation: {
        ok: response.status >= 200 && response.status < 300,
        status: response.status,
        sha256: response.sha256,
        body: whole ? response.body.toString('utf8') : undefined,
        truncated: !whole,
      },
    };
  } catch (err) {
    if (err instanceof EgressRefused) throw err;
    const error = err instanceof Error ? err.message : String(err);
    return { fingerprint: `error:${error}`, observation: { ok: false, error } };
  }
}
