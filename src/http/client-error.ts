/**
 * Requests that Node's HTTP parser refuses (raw non-ASCII bytes in the URL, as `curl
 * 'Patient?family=王'` sends them, malformed or oversized headers) never reach Express. Node
 * would answer them with an empty 400; a FHIR client gets an OperationOutcome saying why.
 */
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import { issue, outcome } from '../fhir/outcome';

/** What to answer, by the parser's error code; anything else is a plain 400. */
interface Answer {
  status: number;
  reason: string;
  code: OperationOutcomeIssue['code'];
  diagnostics: string;
}

const ANSWERS: Record<string, Answer> = {
  HPE_HEADER_OVERFLOW: { status: 431, reason: 'Request Header Fields Too Large', code: 'too-long', diagnostics: 'The request headers are too large' },
};

/**
 * CONNECT (a proxy tunnel) is not a request Node hands to the app: with no 'connect' listener
 * it closes the socket without a word. A FHIR client gets a 405 like for any other method.
 */
export function answerConnect(_req: unknown, socket: Duplex): void {
  const body = JSON.stringify(outcome(issue('error', 'not-supported', 'CONNECT is not a FHIR interaction; this server is not a proxy')));
  socket.end(
    `HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD, POST, PUT, PATCH, DELETE\r\nContent-Type: application/fhir+json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}

/**
 * An Expect header other than 100-continue (RFC 9110 §10.1.1): Node answers 417 itself, with
 * an empty body, unless a 'checkExpectation' listener does; this one says why.
 */
export function answerExpectation(req: { headers: Record<string, string | string[] | undefined> }, res: ServerResponse): void {
  const body = JSON.stringify(
    outcome(issue('error', 'not-supported', `Expect: ${String(req.headers.expect)} is not supported; the only expectation this server meets is 100-continue`))
  );
  res.writeHead(417, { 'Content-Type': 'application/fhir+json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
  res.end(body);
}

export function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const answer: Answer = ANSWERS[err.code ?? ''] ?? {
    status: 400,
    reason: 'Bad Request',
    code: 'invalid',
    diagnostics: `The request is not valid HTTP (${err.code ?? err.message}); characters outside ASCII in the URL must be percent-encoded (RFC 3986)`,
  };
  const body = JSON.stringify(outcome(issue('error', answer.code, answer.diagnostics)));
  socket.end(
    `HTTP/1.1 ${answer.status} ${answer.reason}\r\nContent-Type: application/fhir+json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}
