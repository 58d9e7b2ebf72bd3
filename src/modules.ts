/**
 * The modules installed into every server, in order. A module may rely on the ones before
 * it (auth uses search to filter by granular scopes; audit and provenance use auth's
 * principal and keys).
 */
import { auditModule } from './audit';
import { authModule } from './auth';
import { consentModule } from './consent';
import { keysModule } from './keys';
import { searchModule } from './search';
import { provenanceModule } from './provenance';
import { retentionModule } from './retention';
import { terminologyModule } from './terminology';
import { validationModule } from './validation';
import type { ServerModule } from './services';

export const MODULES: ServerModule[] = [
  keysModule,
  searchModule,
  terminologyModule,
  validationModule,
  authModule,
  auditModule,
  retentionModule,
  consentModule,
  provenanceModule,
];
