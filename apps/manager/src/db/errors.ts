/** Connection failures and server shutdowns, as pg and typeorm report them. */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { code, driverError, message } = err as { code?: unknown; driverError?: { code?: unknown }; message?: unknown };
  const codes = [code, driverError?.code].filter((c): c is string => typeof c === 'string');
  return (
    codes.some(
      (c) =>
        ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57P01', '57P02', '57P03'].includes(c) ||
        c.startsWith('08'),
    ) ||
    (typeof message === 'string' && /Connection terminated|timeout exceeded when trying to connect/i.test(message))
  );
}

/**
 * Postgres refusing a value (SQLSTATE class 22): a NUL byte in a filter, a date out of range in
 * a cursor. The request carried it, so it is the client's error.
 */
export function isDataException(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { code, driverError } = err as { code?: unknown; driverError?: { code?: unknown } };
  return [code, driverError?.code].some((c) => typeof c === 'string' && c.startsWith('22'));
}
