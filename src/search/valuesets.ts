/**
 * :in and :not-in: a token matches when its system|code is in the expansion of a value set.
 * Expansions come from the terminology service before the query is built, so the SQL holds
 * the codes themselves; a value set the service cannot expand is a 400, never an empty match.
 */
import type { RequestContext } from '../fhir/context';
import { FhirError, issue, outcome } from '../fhir/outcome';
import type { AnyFilter } from './parse';

function* walk(filters: AnyFilter[]): Generator<AnyFilter> {
  for (const filter of filters) {
    yield filter;
    if ('has' in filter) {
      yield* walk([filter.has.filter]);
    } else if (filter.chain) {
      yield* walk(filter.chain.map((c) => c.filter));
    }
  }
}

/** Expands the value sets of every :in / :not-in filter (also inside chains and _has), in place. */
export async function expandValueSets(ctx: RequestContext, filters: AnyFilter[]): Promise<void> {
  const expansions = new Map<string, { system: string; code: string }[]>();
  for (const filter of walk(filters)) {
    if ('has' in filter || (filter.modifier !== 'in' && filter.modifier !== 'not-in')) continue;
    filter.codes = [];
    for (const url of filter.values) {
      let codes = expansions.get(url);
      if (!codes) {
        codes = await ctx.services.terminology.expandCodes(url);
        if (!codes) {
          const name = `${filter.params[0].code}:${filter.modifier}`;
          throw new FhirError(
            400,
            outcome(issue('error', 'not-supported', `${name}: cannot expand the value set ${url} (unknown here, or too large to expand)`, name))
          );
        }
        expansions.set(url, codes);
      }
      filter.codes.push(...codes);
    }
  }
}
