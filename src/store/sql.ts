/**
 * The project's one SQL builder: a tagged template that keeps values out of the SQL text.
 *
 *   const q = sql`SELECT content FROM resource WHERE rid = ${rid} AND ${filter}`;
 *   await client.query(q.text, q.values);   // or db.query(q)
 *
 * Interpolating another Sql fragment inlines it (its placeholders are renumbered);
 * anything else becomes a bound parameter. Identifiers that are not constants of the code
 * go through sql.ident, which quotes them.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';

/** pg's own conversion of parameter values (arrays, JSON, dates), so literals carry exactly what parameters would. */
const prepareValue = (pg as unknown as { utils: { prepareValue(value: unknown): unknown } }).utils.prepareValue;

/** pg's type parsers, except that json and jsonb values stay text. */
const JSON_AS_TEXT = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === pg.types.builtins.JSON || oid === pg.types.builtins.JSONB) return (value: string) => value;
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

export class Sql {
  constructor(
    readonly strings: readonly string[],
    readonly params: readonly unknown[],
    /** Set by prepared(): the statement is parsed and planned once per connection. */
    readonly label?: string,
    /** Set by jsonAsText(): json and jsonb columns come back as their text, unparsed. */
    readonly jsonText = false
  ) {}

  /**
   * The same statement, run as a named prepared statement: PostgreSQL parses and plans it once
   * per connection instead of on every call, which for a primary-key read is as much work as
   * the read itself. Only for the hot statements whose text comes in a few shapes (the values
   * stay parameters); a search, whose best plan depends on its values, is planned every time.
   */
  prepared(label: string): Sql {
    return new Sql(this.strings, this.params, label, this.jsonText);
  }

  /**
   * The same statement, with its json and jsonb columns returned as the text PostgreSQL sent
   * instead of parsed by pg: for results that are mostly passed through (see StoredResource).
   */
  jsonAsText(): Sql {
    return new Sql(this.strings, this.params, this.label, true);
  }

  /** Renders to pg's { text, values } with $1..$n placeholders, and the prepared statement's name if any. */
  toQuery(): { text: string; values: unknown[]; name?: string; types?: typeof JSON_AS_TEXT } {
    const values: unknown[] = [];
    const text = this.render(values);
    const name = this.label === undefined ? undefined : statementName(this.label, text);
    return { text, values, ...(name !== undefined && { name }), ...(this.jsonText && { types: this.resultTypes() }) };
  }

  /** The type parsers for pg's query config (undefined: pg's own), also for text sent inline. */
  resultTypes(): typeof JSON_AS_TEXT | undefined {
    return this.jsonText ? JSON_AS_TEXT : undefined;
  }

  /**
   * The statement with its values written as literals, for sending it together with other
   * statements in one simple-protocol message (BEGIN; ...; COMMIT), or undefined when a value
   * has no literal form here (binary data). Every literal is an E'...' string of unknown type,
   * which PostgreSQL resolves from its context exactly as it resolves an untyped parameter
   * (pg sends every parameter untyped, as text).
   */
  inline(maxLength = Infinity): string | undefined {
    // The values alone already too long: not worth rendering (a transaction Bundle's rows).
    if (this.valueLength() > maxLength) return undefined;
    try {
      return this.renderLiterals();
    } catch (err) {
      if (err === NO_LITERAL) return undefined;
      throw err;
    }
  }

  /** A lower bound of the inlined text's length: the length of the string values. */
  private valueLength(): number {
    let length = 0;
    for (const param of this.params) {
      if (param instanceof Sql) length += param.valueLength();
      else if (typeof param === 'string') length += param.length;
    }
    return length;
  }

  private renderLiterals(): string {
    let text = this.strings[0];
    for (let i = 0; i < this.params.length; i++) {
      const param = this.params[i];
      text += param instanceof Sql ? param.renderLiterals() : literal(param);
      text += this.strings[i + 1];
    }
    return text;
  }

  get text(): string {
    return this.toQuery().text;
  }

  get values(): unknown[] {
    return this.toQuery().values;
  }

  private render(values: unknown[]): string {
    let text = this.strings[0];
    for (let i = 0; i < this.params.length; i++) {
      const param = this.params[i];
      if (param instanceof Sql) {
        text += param.render(values);
      } else {
        values.push(param);
        text += '$' + values.length;
      }
      text += this.strings[i + 1];
    }
    return text;
  }
}

/**
 * Names of prepared statements by text. A name stands for one text on every connection (pg
 * refuses a name reused for another text), so it carries a hash of the text. Bounded: past
 * MAX_PREPARED shapes (an access filter built in unforeseen ways), statements run unnamed
 * rather than fill every connection's cache.
 */
const preparedNames = new Map<string, string>();
const MAX_PREPARED = 256;
let preparing = true;

/** DB_PREPARED_STATEMENTS=false turns prepared statements off (poolers that cannot keep them). */
export function usePreparedStatements(enabled: boolean): void {
  preparing = enabled;
}

function statementName(label: string, text: string): string | undefined {
  if (!preparing) return undefined;
  let name = preparedNames.get(text);
  if (name === undefined) {
    if (preparedNames.size >= MAX_PREPARED) return undefined;
    name = `${label}_${createHash('sha1').update(text).digest('base64url').slice(0, 16)}`;
    preparedNames.set(text, name);
  }
  return name;
}

const NO_LITERAL = Symbol('no literal form');

/** A parameter value as an SQL literal, converted as pg converts parameters (arrays, JSON, dates). */
function literal(value: unknown): string {
  const prepared = prepareValue(value) as unknown;
  if (prepared === null || prepared === undefined) return 'NULL';
  if (typeof prepared !== 'string') throw NO_LITERAL;
  // E'' strings mean the same whatever standard_conforming_strings says.
  return "E'" + prepared.replace(/\\/g, '\\\\').replace(/'/g, "''") + "'";
}

export function sql(strings: TemplateStringsArray, ...params: unknown[]): Sql {
  return new Sql(strings, params);
}

/** Raw SQL text from the code itself (never from input). */
sql.raw = (text: string): Sql => new Sql([text], []);

/**
 * A PostgreSQL array literal ('{"a","b",NULL,3}') of strings, numbers and nulls, to be cast
 * to the column's array type: the form pg would send for the array, built without its two
 * regular-expression replaces per element (the index rows of a transaction Bundle are
 * thousands of elements; measured 18 -> 6 µs per resource).
 */
sql.array = (values: readonly (string | number | null | undefined)[]): string => {
  let text = '{';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) text += ',';
    const value = values[i];
    if (value === null || value === undefined) {
      text += 'NULL';
    } else if (typeof value === 'number') {
      text += String(value);
    } else {
      text += value.includes('"') || value.includes('\\') ? '"' + value.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"' : '"' + value + '"';
    }
  }
  return text + '}';
};

/** A quoted identifier. */
sql.ident = (name: string): Sql => new Sql(['"' + name.replace(/"/g, '""') + '"'], []);

/** Joins fragments with a separator; an empty list gives an empty fragment. */
sql.join = (parts: readonly Sql[], separator: string): Sql => {
  if (parts.length === 0) {
    return new Sql([''], []);
  }
  const strings: string[] = [''];
  const params: unknown[] = [];
  parts.forEach((part, i) => {
    if (i > 0) {
      strings[strings.length - 1] += separator;
    }
    params.push(part);
    strings.push('');
  });
  return new Sql(strings, params);
};

/** AND of fragments; TRUE when empty. */
sql.and = (parts: readonly Sql[]): Sql => (parts.length ? sql`(${sql.join(parts, ' AND ')})` : sql`TRUE`);

/** OR of fragments; FALSE when empty. */
sql.or = (parts: readonly Sql[]): Sql => (parts.length ? sql`(${sql.join(parts, ' OR ')})` : sql`FALSE`);

sql.empty = new Sql([''], []);
