import { createParser, type EventSourceMessage } from 'eventsource-parser';

/** What the API answered with a problem (RFC 9457): its status and detail, for the user. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly problem: { title?: string; detail?: string; errors?: { path: string; message: string }[] },
  ) {
    const fields = (problem.errors ?? []).map((e) => `\n  ${e.path}: ${e.message}`).join('');
    super(`${status} ${problem.title ?? 'error'}: ${problem.detail ?? ''}${fields}`);
  }
}

/** The manager's API at `url` (…/api/v1), as `token`. */
export class Client {
  constructor(
    private readonly url: string,
    private readonly token: string | undefined,
  ) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      response = await fetch(`${this.url}${path}`, {
        method,
        headers: {
          ...this.authorization(),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (err) {
      throw new Error(`cannot reach ${this.url}: ${(err as Error & { cause?: Error }).cause?.message ?? String(err)}`);
    }
    const text = await response.text();
    const parsed: unknown = text ? JSON.parse(text) : {};
    if (!response.ok) throw new ApiError(response.status, parsed as ConstructorParameters<typeof ApiError>[1]);
    return parsed as T;
  }

  /** Reads a Server-Sent Events stream until `signal` fires or the server ends it. */
  async stream(path: string, onEvent: (event: EventSourceMessage) => void, signal: AbortSignal): Promise<void> {
    const response = await fetch(`${this.url}${path}`, {
      headers: { ...this.authorization(), accept: 'text/event-stream' },
      signal,
    }).catch((err: unknown) => {
      if (signal.aborted) return undefined;
      throw new Error(`cannot reach ${this.url}: ${String(err)}`);
    });
    if (!response) return;
    if (!response.ok)
      throw new ApiError(response.status, (await response.json()) as ConstructorParameters<typeof ApiError>[1]);
    const parser = createParser({ onEvent });
    const decoder = new TextDecoder();
    try {
      for await (const chunk of response.body ?? []) parser.feed(decoder.decode(chunk as Uint8Array, { stream: true }));
    } catch (err) {
      if (!signal.aborted) throw err;
    }
  }

  private authorization(): Record<string, string> {
    return this.token ? { authorization: `Bearer ${this.token}` } : {};
  }
}
