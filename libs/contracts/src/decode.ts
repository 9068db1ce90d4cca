import { z } from 'zod';

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: string };

/** Parses a message body as JSON and validates it; never throws. */
export function decodeMessage<S extends z.ZodType>(schema: S, body: Buffer | string): Decoded<z.infer<S>> {
  let json: unknown;
  try {
    json = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch (err) {
    return { ok: false, error: `body is not JSON: ${(err as Error).message}` };
  }
  const result = schema.safeParse(json);
  if (!result.success) return { ok: false, error: z.prettifyError(result.error) };
  return { ok: true, value: result.data };
}

export function encodeMessage(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}
