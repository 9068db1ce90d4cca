import { z } from 'zod';

export const ObserverId = z.uuid();
export const ServiceId = z.uuid();

export const ObserverName = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:@/-]*$/, 'letters, digits and . _ : @ / - (starting with a letter or digit)');

export const KindName = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z][a-z0-9-]*$/, 'lowercase letters, digits and dashes, starting with a letter');

/** Pool names become part of queue names, so they stay within a safe alphabet. */
export const PoolName = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z0-9][a-z0-9_-]*$/, 'lowercase letters, digits, _ and -');

export const ObserverParams = z.record(z.string(), z.unknown());

export const Timestamp = z.iso.datetime({ offset: true });

/**
 * The number of an observer's placement: 1 when created, one more each time the manager places
 * it anew (a lost job republished, a move). Only the manager increments it; a service never runs
 * two generations of one observer, and observer code gets it as a fencing token.
 */
export const Generation = z.int().positive();
