import http from 'node:http';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { waitFor } from './wait';

/** A Server-Sent Events stream being read: what came so far, and a way to wait for more. */
export interface SseStream {
  readonly status: number;
  readonly events: EventSourceMessage[];
  /** Waits until an event satisfies `match`, and returns it. */
  next(what: string, match: (event: EventSourceMessage) => boolean, timeoutMs?: number): Promise<EventSourceMessage>;
  close(): void;
}

/** Opens `url` as an event stream, with `headers` (a token, a Last-Event-ID). */
export function openSse(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const events: EventSourceMessage[] = [];
    const parser = createParser({ onEvent: (event) => events.push(event) });
    const request = http.get(url, { headers: { accept: 'text/event-stream', ...headers } }, (response) => {
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => parser.feed(chunk));
      response.on('error', () => undefined);
      resolve({
        status: response.statusCode ?? 0,
        events,
        next: (what, match, timeoutMs = 20_000) => waitFor(what, () => events.find(match), { timeoutMs }),
        close: () => request.destroy(),
      });
    });
    request.on('error', reject);
  });
}
