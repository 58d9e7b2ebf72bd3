import fs from 'node:fs';
import type { EmbeddedDatabase } from '../../src/store/embedded';

export default async function globalTeardown(): Promise<void> {
  const state = (globalThis as Record<string, unknown>).__TEST_PG__ as { embedded: EmbeddedDatabase; dir: string } | undefined;
  if (state) {
    await state.embedded.stop();
    fs.rmSync(state.dir, { recursive: true, force: true });
  }
}
