import type { Logger } from 'winston';
import type { Journal } from '../journal/journal.js';
import type { CertificateRejection } from './transport.js';

/** Distinct failures remembered; past this, further new ones are logged but not journaled (a server rotating certificates per connection must not fill the journal). */
const MAX_DISTINCT = 32;

/**
 * Reports a refused server certificate once per distinct failure (host, reason, code, presented
 * pin) for the life of the process: logged as an error and journaled as `tamper.detected` kind
 * `server-certificate`. `tamper.detected` rather than a new event type: a certificate the
 * installer's CA or pins do not vouch for is either someone in the middle of the agent's channel
 * or a server whose key changed without a new installer config; both need an administrator, and
 * the server counts `tamper.detected` per terminal and forwards it to the SIEM. The entry reaches
 * the server only once a trusted connection works again (it stays in the journal until then).
 * The back-off itself is the reporter's: to it the server is simply unreachable.
 */
export class ServerCertificateAlarm {
  private readonly seen = new Set<string>();

  constructor(
    private readonly journal: Pick<Journal, 'append'>,
    private readonly logger: Pick<Logger, 'error'> | null,
  ) {}

  async report(rejection: CertificateRejection): Promise<void> {
    const key = [rejection.host, rejection.reason, rejection.code, rejection.presentedPin ?? ''].join('\n');
    if (this.seen.has(key)) return;
    const journaled = this.seen.size < MAX_DISTINCT;
    if (journaled) this.seen.add(key);
    this.logger?.error('server certificate rejected: nothing was sent to this server', { ...rejection, journaled });
    if (!journaled) return;
    try {
      await this.journal.append('tamper.detected', {
        kind: 'server-certificate',
        host: rejection.host,
        reason: rejection.reason,
        code: rejection.code,
        presentedPin: rejection.presentedPin,
        chainPins: [...rejection.chainPins],
      });
    } catch (error) {
      // Journal I/O failed: forget the key so the next attempt tries again.
      this.seen.delete(key);
      this.logger?.error('could not journal the rejected server certificate', { error: error instanceof Error ? error.message : String(error) });
    }
  }
}
