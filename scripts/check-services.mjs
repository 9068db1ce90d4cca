// Run before the tests: they talk to the real broker and database.
import { requireLocalServices } from './local-services.mjs';

await requireLocalServices();
