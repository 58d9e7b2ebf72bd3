/**
 * The audit module: every interaction, successful, failed or refused, leaves an
 * AuditEvent that is durable before the response leaves. AuditEvents are immutable
 * through the API (405 on update, patch, delete).
 */
import type { ServerModule } from '../services';
import { toAuditEvents } from './balp';
import { AuditWriter } from './writer';

export const auditModule: ServerModule = {
  name: 'audit',
  install(services) {
    services.immutableTypes.add('AuditEvent');
    if (!services.config.auditEnabled) {
      return;
    }
    const writer = new AuditWriter(services);
    services.audit = {
      async write(ctx, records) {
        const recorded = new Date().toISOString();
        const events = records.flatMap((record) =>
          toAuditEvents(
            record,
            { principal: ctx.principal, requestId: ctx.requestId, remoteAddress: ctx.remoteAddress, baseUrl: ctx.baseUrl },
            recorded
          )
        );
        await writer.write(events);
      },
    };
    services.onClose.push(() => writer.close());
  },
};
