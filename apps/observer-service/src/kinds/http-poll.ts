import { createHash } from 'node:crypto';
import { defineKind, MAX_TIMER_MS, sleep, z } from '@vigil/observer-sdk';

const MAX_BODY_IN_OBSERVATION = 64 * 1024;

/**
 * Watches an HTTP endpoint: GETs it every interval and publishes whenever what it answers
 * changes (status or body). An unreachable endpoint is an observation, not a crash: the
 * observer keeps watching.
 */
export const httpPoll = defineKind({
  name: 'http-poll',
  description: 'GETs url every intervalMs and publishes when the status or body changes.',
  params: z.object({
    url: z.url({ protocol: /^https?$/ }).describe('The URL to watch'),
    intervalMs: z.int().min(100).default(5_000).describe('Milliseconds between requests'),
    timeoutMs: z.int().min(1).max(MAX_TIMER_MS).default(10_000).describe('Request timeout in milliseconds'),
  }),
  async run({ params, signal, publish }) {
    let last: string | undefined;
    do {
      const seen = await fetchOnce(params.url, AbortSignal.any([signal, AbortSignal.timeout(params.timeoutMs)]));
      if (signal.aborted) return;
      if (seen.fingerprint !== last) {
        last = seen.fingerprint;
        publish(seen.observation);
      }
    } while (await sleep(params.intervalMs, signal));
  },
});

async function fetchOnce(url: string, signal: AbortSignal) {
  try {
    const response = await fetch(url, { signal, redirect: 'follow' });
    const body = await response.text();
    const digest = createHash('sha256').update(body).digest('hex');
    return {
      fingerprint: `${response.status}:${digest}`,
      observation: {
        ok: response.ok,
        status: response.status,
        sha256: digest,
        body: body.length > MAX_BODY_IN_OBSERVATION ? undefined : body,
        truncated: body.length > MAX_BODY_IN_OBSERVATION,
      },
    };
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    return { fingerprint: `error:${error}`, observation: { ok: false, error } };
  }
}
