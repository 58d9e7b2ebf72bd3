/**
 * Requests that Node's HTTP parser refuses (raw non-ASCII bytes in the URL, as `curl
 * 'Patient?family=王'` sends them, malformed or oversized headers) never reach Express. Node
 * would answer them with an empty 400; a FHIR client gets an OperationOutcome saying why.
 */
import type { Duplex } from 'node:stream';
import { issue, outcome } from '../fhir/outcome';

const TOO_LARGE = new Set(['HPE_HEADER_OVERFLOW']);

export function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const status = TOO_LARGE.has(err.code ?? '') ? 431 : 400;
  const reason = status === 431 ? 'Request Header Fields Too Large' : 'Bad Request';
  const diagnostics =
    status === 431
      ? 'The request headers are too large'
      : `The request is not valid HTTP (${err.code ?? err.message}); characters outside ASCII in the URL must be percent-encoded (RFC 3986)`;
  const body = JSON.stringify(outcome(issue('error', status === 431 ? 'too-long' : 'invalid', diagnostics)));
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/fhir+json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}
