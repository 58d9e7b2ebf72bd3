/**
 * The validator services start with, before (or without) the validation module: the R4 base
 * definitions and the profiles of the pack, through whatever terminology service is
 * installed when it runs; no stored profiles, nothing required. The validation module
 * replaces it with the full one (stored profiles, REQUIRED_PROFILES, the pack served).
 */
import type { Config } from '../config';
import type { ResourceValidator, TerminologyService } from '../services';
import { ProfileRegistry } from './profiles';
import { Validator } from './validator';

export function baseValidator(config: Pick<Config, 'profilesDir'>, terminology: () => TerminologyService): ResourceValidator {
  return new Validator(new ProfileRegistry(config.profilesDir), terminology, new Map());
}
