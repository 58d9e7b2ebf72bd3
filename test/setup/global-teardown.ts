import type { EmbeddedDatabase } from '../../src/store/embedded';

export default async function globalTeardown(): Promise<void> {
  const embedded = (globalThis as Record<string, unknown>).__TEST_PG__ as EmbeddedDatabase | undefined;
  await embedded?.stop();
}
