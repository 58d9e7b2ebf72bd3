/**
 * Output shapes shared by the terminology operations.
 */
import type { Parameters } from '@medplum/fhirtypes';
import type { CodeCheck } from '../../services';
import { parameters } from './params';

/** The out parameters of $validate-code: result, message, display. */
export function codeCheckParameters(check: CodeCheck): Parameters {
  return parameters(
    { name: 'result', valueBoolean: check.result },
    check.message !== undefined && { name: 'message', valueString: check.message },
    check.display !== undefined && { name: 'display', valueString: check.display }
  );
}
