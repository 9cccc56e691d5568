import type Database from 'better-sqlite3';
import type { EnrollmentTokenRecord, EnrollmentTokenSummary } from './store.js';

/**
 * The `enrollment_tokens` table (migration 9) and `devices.enrollment_token_id`, for SqliteStore.
 *
 * A token has `max_uses` and `uses_left`. Spending one is a single conditional UPDATE (`uses_left > 0`,
 * not expired, not revoked) that decrements and returns the token's id, run inside the caller's
 * IMMEDIATE transaction with the device insert: the write lock is taken before the check, so two
 * enrolments racing for the last use — in one process or in two sharing the database file — cannot
 * both see it, and a device exists exactly when a use was spent for it.
 */

interface TokenRow {
  id: string;
  created_at: string;
  created_by: string;
  expires_at: string;
  max_uses: number;
  uses_left: number;
  last_used_at: string | null;
  revoked_at: string | null;
  enrolled_devices: number;
}

const SUMMARY_COLUMNS = `t.id, t.created_at, t.created_by, t.expires_at, t.max_uses, t.uses_left, t.last_used_at, t.revoked_at,
  (SELECT COUNT(*) FROM devices d WHERE d.enrollment_token_id = t.id) AS enrolled_devices`;

export class SqliteEnrollmentTables {
  private readonly statements;

  constructor(db: Database.Database) {
    this.statements = {
      add: db.prepare<{ id: string | null; tokenHash: string; createdAt: string; createdBy: string; expiresAt: string; maxUses: number }>(
        `INSERT INTO enrollment_tokens (id, token_hash, created_at, created_by, expires_at, max_uses, uses_left)
         VALUES (coalesce(@id, 'enr_' || lower(hex(randomblob(12)))), @tokenHash, @createdAt, @createdBy, @expiresAt, @maxUses, @maxUses)`,
      ),
      spend: db.prepare<{ tokenHash: string; now: string }, { id: string }>(
        `UPDATE enrollment_tokens SET uses_left = uses_left - 1, last_used_at = @now
         WHERE token_hash = @tokenHash AND uses_left > 0 AND expires_at > @now AND revoked_at IS NULL
         RETURNING id`,
      ),
      markDevice: db.prepare<[string, string]>('UPDATE devices SET enrollment_token_id = ? WHERE id = ?'),
      list: db.prepare<[], TokenRow>(`SELECT ${SUMMARY_COLUMNS} FROM enrollment_tokens t ORDER BY t.created_at DESC, t.id`),
      get: db.prepare<[string], TokenRow>(`SELECT ${SUMMARY_COLUMNS} FROM enrollment_tokens t WHERE t.id = ?`),
      revoke: db.prepare<{ id: string; at: string }>(
        'UPDATE enrollment_tokens SET uses_left = 0, revoked_at = coalesce(revoked_at, @at) WHERE id = @id',
      ),
    };
  }

  add(token: EnrollmentTokenRecord): void {
    const maxUses = token.maxUses ?? 1;
    if (!(Number.isSafeInteger(maxUses) && maxUses >= 1)) throw new RangeError(`token uses ${maxUses} out of range`);
    this.statements.add.run({
      id: token.id ?? null,
      tokenHash: token.tokenHash,
      createdAt: token.createdAt,
      createdBy: token.createdBy ?? 'cli',
      expiresAt: token.expiresAt,
      maxUses,
    });
  }

  /**
   * Spends one use of the token with hash `tokenHash` if it has one left and is neither expired at
   * `now` nor revoked; returns the token's id, or null (nothing changed). Call inside a transaction.
   */
  spend(tokenHash: string, now: string): string | null {
    return this.statements.spend.get({ tokenHash, now })?.id ?? null;
  }

  /** Records on the device which token enrolled it. */
  markDevice(deviceId: string, tokenId: string): void {
    this.statements.markDevice.run(tokenId, deviceId);
  }

  list(): EnrollmentTokenSummary[] {
    return this.statements.list.all().map(toSummary);
  }

  /** Revokes the token (no use left from now on; the first revocation's time is kept); null for an unknown id. */
  revoke(id: string, at: string): EnrollmentTokenSummary | null {
    this.statements.revoke.run({ id, at });
    const row = this.statements.get.get(id);
    return row ? toSummary(row) : null;
  }
}

function toSummary(row: TokenRow): EnrollmentTokenSummary {
  return {
    id: row.id,
    createdAt: row.created_at,
    createdBy: row.created_by,
    expiresAt: row.expires_at,
    maxUses: row.max_uses,
    usesLeft: row.uses_left,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
    enrolledDevices: row.enrolled_devices,
  };
}
