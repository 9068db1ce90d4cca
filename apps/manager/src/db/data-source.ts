import { DataSource } from 'typeorm';
import { Initial1764000000000 } from './migrations/1764000000000-initial';
import { CrashLoops1764000000001 } from './migrations/1764000000001-crash-loops';
import { ServiceMemory1764000000002 } from './migrations/1764000000002-service-memory';
import { Generations1764000000003 } from './migrations/1764000000003-generations';
import { Tokens1764000000004 } from './migrations/1764000000004-tokens';
import { SecretParams1764000000005 } from './migrations/1764000000005-secret-params';
import { Moves1764000000006 } from './migrations/1764000000006-moves';
import { MoveTimes1764000000007 } from './migrations/1764000000007-move-times';
import { NamePrefix1764000000008 } from './migrations/1764000000008-name-prefix';
import { Paused1764000000009 } from './migrations/1764000000009-paused';
import { ServiceEvents1764000000010 } from './migrations/1764000000010-service-events';
import { Staleness1764000000011 } from './migrations/1764000000011-staleness';
import { Retention1764000000012 } from './migrations/1764000000012-retention';
import { CancelIndex1764000000013 } from './migrations/1764000000013-cancel-index';
import { MovingIndex1764000000014 } from './migrations/1764000000014-moving-index';
import { FilteredListing1764000000015 } from './migrations/1764000000015-filtered-listing';

/** Every query is SQL of its own (see db/sql.ts); TypeORM runs migrations and transactions. */
export function createDataSource(url: string): DataSource {
  return new DataSource({
    type: 'postgres',
    url,
    migrations: [
      Initial1764000000000,
      CrashLoops1764000000001,
      ServiceMemory1764000000002,
      Generations1764000000003,
      Tokens1764000000004,
      SecretParams1764000000005,
      Moves1764000000006,
      MoveTimes1764000000007,
      NamePrefix1764000000008,
      Paused1764000000009,
      ServiceEvents1764000000010,
      Staleness1764000000011,
      Retention1764000000012,
      CancelIndex1764000000013,
      MovingIndex1764000000014,
      FilteredListing1764000000015,
    ],
    migrationsRun: true,
    synchronize: false,
    // pg pool: a failed connection is dropped and the next query opens a new one, so the
    // manager rides out a database restart.
    // Creates commit one by one; more connections let Postgres group their commits.
    // A short connection timeout: while the database is away, a request fails in seconds rather
    // than queueing behind connection attempts.
    extra: { max: 30, connectionTimeoutMillis: 2_000 },
    logging: ['error', 'migration'],
  });
}
