/**
 * Writes AuditEvents with group commit: events from concurrent requests that arrive while a
 * batch is being written are gathered into the next one, and each batch is a single
 * transaction (one multi-row insert per table). A request's promise resolves only after its
 * own batch has committed, so no response leaves before its audit record is durable, while
 * the database sees a few large transactions instead of one per request.
 */
import type { AuditEvent } from '@medplum/fhirtypes';
import { systemContext } from '../fhir/system-context';
import { logger } from '../logger';
import type { Services } from '../services';
import { runWriteTransaction } from '../store/write-tx';

interface Pending {
  events: AuditEvent[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface AuditWriterOptions {
  /** Most events in one transaction. */
  maxBatch: number;
  /** Transactions writing at the same time; more waiting events form the next batch. */
  maxInFlight: number;
}

export class AuditWriter {
  private queue: Pending[] = [];
  private inFlight = 0;
  private scheduled = false;
  private closed = false;

  constructor(
    private readonly services: Services,
    private readonly options: AuditWriterOptions = { maxBatch: 500, maxInFlight: 2 }
  ) {}

  /** Resolves once every event is committed; rejects if the batch holding them failed. */
  write(events: AuditEvent[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    if (this.closed) return Promise.reject(new Error('The audit writer is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ events, resolve, reject });
      this.schedule();
    });
  }

  /** Waits for everything queued to be written. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.queue.length || this.inFlight) {
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.options.maxInFlight || this.queue.length === 0) return;
    this.scheduled = true;
    // Let every request that finishes in this turn of the event loop join the batch.
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private takeBatch(): Pending[] {
    const batch: Pending[] = [];
    let count = 0;
    while (this.queue.length && (batch.length === 0 || count + this.queue[0].events.length <= this.options.maxBatch)) {
      const next = this.queue.shift() as Pending;
      batch.push(next);
      count += next.events.length;
    }
    return batch;
  }

  private async flush(): Promise<void> {
    const batch = this.takeBatch();
    if (batch.length === 0) return;
    this.inFlight++;
    try {
      await this.commit(batch);
      batch.forEach((p) => p.resolve());
    } catch (err) {
      if (batch.length === 1) {
        logger.error('audit batch failed', { events: batch[0].events.length, error: (err as Error).message });
        batch[0].reject(err);
      } else {
        // Events the database refuses (a bug upstream) must fail only the request they belong
        // to, not every request that happened to share its batch: each is written again alone.
        for (const pending of batch) {
          try {
            await this.commit([pending]);
            pending.resolve();
          } catch (alone) {
            logger.error('audit batch failed', { events: pending.events.length, error: (alone as Error).message });
            pending.reject(alone);
          }
        }
      }
    } finally {
      this.inFlight--;
      this.schedule();
    }
  }

  /** One transaction for the batch; it creates only queue rows, committed as one statement. */
  private async commit(batch: Pending[]): Promise<void> {
    await runWriteTransaction(this.services.db, this.services.indexer, async (tx) => {
      const ctx = systemContext(this.services, tx, 'audit-writer');
      for (const pending of batch) {
        for (const event of pending.events) {
          await this.services.repo.create(ctx, event, { internal: true });
        }
      }
    });
  }
}
