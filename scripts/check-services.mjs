// Run before the tests: they talk to the real broker and database (and the benchmark's smoke
// test to Redis).
import { requireLocalServices } from './local-services.mjs';

await requireLocalServices({ redis: true });
