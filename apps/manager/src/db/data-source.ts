import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { entities } from './entities';
import { Initial1764000000000 } from './migrations/1764000000000-initial';

export function createDataSource(url: string): DataSource {
  return new DataSource({
    type: 'postgres',
    url,
    entities,
    migrations: [Initial1764000000000],
    migrationsRun: true,
    synchronize: false,
    // pg pool: a failed connection is dropped and the next query opens a new one, so the
    // manager rides out a database restart.
    extra: { max: 10, connectionTimeoutMillis: 5_000 },
    logging: ['error', 'migration'],
  });
}
