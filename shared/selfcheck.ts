import { z } from 'zod';
import { canonicalJson } from './canonical-json.js';
import { TierSchema } from './policy.js';

/**
 * Self-inspection (自己点検, seed §6(9) and §7): the checks every terminal runs at start, daily and
 * on the server's `selfcheck` command, the shape of their results as journaled (`selfcheck.result`,
 * one entry per run) and the labels reports show. Pure and shared: the agent writes these results,
 * the server stores them and `selfcheck-report.ts` turns them into the per-department report.
 */

/** Every check, in the order runs and reports list them. Ids are stable (stored by the server). */
export const SELFCHECK_IDS = [
  'policy-current',
  'device-control',
  'exceptions',
  'mfa',
  'idle-lock',
  'disk-encryption',
  'os-updates',
  'time-sync',
  'agent-integrity',
  'software-inventory',
  'hardware-changes',
  'journal-upload',
] as const;
export type SelfcheckId = (typeof SELFCHECK_IDS)[number];
export const SelfcheckIdSchema = z.enum(SELFCHECK_IDS);

/** `unknown`: the check could not decide here (no data, unsupported platform, a tool missing) — never a pass. */
export const SELFCHECK_RESULTS = ['pass', 'fail', 'unknown'] as const;
export type SelfcheckResult = (typeof SELFCHECK_RESULTS)[number];
export const SelfcheckResultSchema = z.enum(SELFCHECK_RESULTS);

/** What started a run: the agent's start, the daily timer (trusted clock), or the server's command. */
export const SELFCHECK_TRIGGERS = ['start', 'daily', 'command'] as const;
export type SelfcheckTrigger = (typeof SELFCHECK_TRIGGERS)[number];

export interface Bilingual {
  readonly ja: string;
  readonly en: string;
}

/**
 * The clauses of the seed policy (情報セキュリティ基本方針, `../shared/seed/`) the checks serve. The
 * reference is how the policy numbers them: `6(3)①` is 6. 情報セキュリティ対策 (3) ①.
 */
export const SEED_CLAUSES = {
  '3(2)': { ja: '3(2) 規定違反（情報資産の無断持ち出し、無許可ソフトウェアの使用等）・操作・設定ミス', en: '3(2) Policy violations (unauthorised export, unauthorised software), operating and setting mistakes' },
  '6(3)①': { ja: '6(3)① マイナンバー利用事務系：端末からの情報持ち出し不可設定・多要素認証', en: '6(3)① My Number tier: no export of information from terminals, multi-factor authentication' },
  '6(4)': { ja: '6(4) 物理的セキュリティ（職員等のパソコン等の管理）', en: '6(4) Physical security (management of staff PCs)' },
  '6(6)': { ja: '6(6) 技術的セキュリティ（コンピュータ等の管理、アクセス制御、不正プログラム対策、不正アクセス対策）', en: '6(6) Technical security (computer management, access control, malware and intrusion countermeasures)' },
  '6(7)': { ja: '6(7) 運用（情報システムの監視、情報セキュリティポリシーの遵守状況の確認）', en: '6(7) Operations (monitoring, checking compliance with the security policy)' },
  '6(9)': { ja: '6(9) 評価・見直し（情報セキュリティ監査及び自己点検）', en: '6(9) Evaluation and review (security audits and self-inspection)' },
} as const satisfies Record<string, Bilingual>;
export type SeedClauseRef = keyof typeof SEED_CLAUSES;

export interface SelfcheckDefinition {
  readonly label: Bilingual;
  /** The seed clause the check serves. */
  readonly clause: SeedClauseRef;
  /** What passing means, for people reading a report. */
  readonly criterion: Bilingual;
}

/** Label, clause and pass criterion of every check. */
export const SELFCHECK_DEFINITIONS: Readonly<Record<SelfcheckId, SelfcheckDefinition>> = {
  'policy-current': {
    label: { ja: 'ポリシーが最新で署名が有効', en: 'Policy current and signature valid' },
    clause: '6(7)',
    criterion: { ja: 'サーバーが署名したポリシーが適用され、署名を再検証でき、その後に拒否されたポリシーがない', en: 'a server-signed policy is in force, its signature re-verifies, and no later policy was refused' },
  },
  'device-control': {
    label: { ja: 'デバイス制御が有効（強制モード）', en: 'Device control active in enforce mode' },
    clause: '6(3)①',
    criterion: { ja: 'USB機器の制御が強制モードで動作し、すべてのルートハブが既定拒否', en: 'USB device control runs in enforce mode and every root hub is default-deny' },
  },
  exceptions: {
    label: { ja: '一時許可の一覧と有効期限', en: 'Exceptions and their expiry' },
    clause: '6(3)①',
    criterion: { ja: '期限切れの一時許可がポリシーに残っていない', en: 'no expired exception is still listed in the policy' },
  },
  mfa: {
    label: { ja: '多要素認証の登録と適用', en: 'Multi-factor authentication enrolled and enforced' },
    clause: '6(3)①',
    criterion: { ja: 'すべてのローカル利用者が2要素を登録し、ポリシーが2要素を要求し、OSのログインにも適用されている', en: 'every local user has enrolled two factors, the policy requires two, and the OS login enforces them' },
  },
  'idle-lock': {
    label: { ja: '無操作時ロックの時間', en: 'Idle lock time' },
    clause: '6(6)',
    criterion: { ja: '無操作ロックが有効で、区分の上限以下', en: 'idle lock is on and no longer than the tier allows' },
  },
  'disk-encryption': {
    label: { ja: 'ディスク全体の暗号化', en: 'Full-disk encryption' },
    clause: '6(4)',
    criterion: { ja: 'システムのディスクが暗号化されている（BitLocker / LUKS）', en: 'the system disk is encrypted (BitLocker / LUKS)' },
  },
  'os-updates': {
    label: { ja: 'OSのセキュリティ更新', en: 'OS security updates' },
    clause: '6(6)',
    criterion: { ja: '最後の更新適用から規定日数以内', en: 'the last update was applied within the allowed number of days' },
  },
  'time-sync': {
    label: { ja: '時刻の同期', en: 'Time synchronised' },
    clause: '6(7)',
    criterion: { ja: '端末の時計とサーバーの時刻の差が規定秒数以内', en: 'the terminal clock is within the allowed seconds of the server' },
  },
  'agent-integrity': {
    label: { ja: '保護サービスの稼働とファイル権限', en: 'Agent running and file permissions intact' },
    clause: '6(6)',
    criterion: { ja: '保護サービスが稼働し、状態ディレクトリと秘密ファイルが管理者のみ読み書き可能', en: 'the agent runs and its state directory and secret files are owner-only' },
  },
  'software-inventory': {
    label: { ja: 'ソフトウェアの許可一覧との照合', en: 'Software inventory against the allow-list' },
    clause: '3(2)',
    criterion: { ja: '許可一覧にないソフトウェア・禁止ソフトウェアがない', en: 'no unapproved or forbidden software is installed' },
  },
  'hardware-changes': {
    label: { ja: '前回点検からのハードウェア変更', en: 'Hardware changes since the last inspection' },
    clause: '6(4)',
    criterion: { ja: 'ネットワークアダプタ・記憶装置の追加や取り外しがない', en: 'no network adapter or storage device was added or removed' },
  },
  'journal-upload': {
    label: { ja: '監査ログの送信状況', en: 'Audit journal upload healthy' },
    clause: '6(7)',
    criterion: { ja: '監査ログがサーバーに届き、連鎖が正常で、最終通信が新しい', en: 'the journal reaches the server, its chain is intact and the last contact is recent' },
  },
};

export const SELFCHECK_RESULT_LABELS: Readonly<Record<SelfcheckResult, Bilingual>> = {
  pass: { ja: '適合', en: 'Pass' },
  fail: { ja: '不適合', en: 'Fail' },
  unknown: { ja: '判定不能', en: 'Unknown' },
};

export const SELFCHECK_TRIGGER_LABELS: Readonly<Record<SelfcheckTrigger, Bilingual>> = {
  start: { ja: '起動時', en: 'At start' },
  daily: { ja: '定期（日次）', en: 'Daily' },
  command: { ja: '管理者の指示', en: 'Administrator request' },
};

/** Largest canonical JSON of one check's evidence: twelve checks must fit one journal entry (16 KiB). */
export const MAX_EVIDENCE_CHARS = 1000;

const evidence = z.record(z.string(), z.json()).refine((value) => canonicalJson(value).length <= MAX_EVIDENCE_CHARS, {
  message: `evidence larger than ${MAX_EVIDENCE_CHARS} characters`,
});

/** One check's result in a run. `evidence` is small JSON that names what was seen (never a secret). */
export const SelfcheckCheckSchema = z.strictObject({
  id: SelfcheckIdSchema,
  result: SelfcheckResultSchema,
  clause: z.string().max(20),
  evidence,
});
export type SelfcheckCheck = z.infer<typeof SelfcheckCheckSchema>;

export const SelfcheckSummarySchema = z.strictObject({
  pass: z.int().min(0),
  fail: z.int().min(0),
  unknown: z.int().min(0),
  /** `fail` when any check failed, else `unknown` when any is unknown, else `pass`. */
  overall: SelfcheckResultSchema,
});
export type SelfcheckSummary = z.infer<typeof SelfcheckSummarySchema>;

const isoInstant = z.iso.datetime({ offset: true });

/** The data of one `selfcheck.result` journal entry: one run, every check, and a summary. */
export const SelfcheckRunSchema = z
  .strictObject({
    /** Unique per run on this terminal (`<trusted ms>-<n>`). */
    runId: z.string().min(1).max(64),
    trigger: z.enum(SELFCHECK_TRIGGERS),
    /** The server command that asked for the run (trigger `command`). */
    commandId: z.string().min(1).max(100).optional(),
    /** Trusted-clock times (server time plus monotonic time: the user cannot backdate a run). */
    startedAt: isoInstant,
    finishedAt: isoInstant,
    tier: TierSchema,
    policyVersion: z.int().min(0),
    policyOrigin: z.enum(['built-in', 'signed']),
    agentVersion: z.string().min(1).max(50),
    platform: z.string().min(1).max(20),
    summary: SelfcheckSummarySchema,
    checks: z.array(SelfcheckCheckSchema).min(1).max(SELFCHECK_IDS.length),
  })
  .superRefine((run, context) => {
    const seen = new Set<string>();
    for (const [index, check] of run.checks.entries()) {
      if (seen.has(check.id)) context.addIssue({ code: 'custom', path: ['checks', index, 'id'], message: `duplicate check ${check.id}` });
      seen.add(check.id);
    }
    const expected = summarize(run.checks);
    if (expected.pass !== run.summary.pass || expected.fail !== run.summary.fail || expected.unknown !== run.summary.unknown || expected.overall !== run.summary.overall) {
      context.addIssue({ code: 'custom', path: ['summary'], message: 'summary does not match the checks' });
    }
  });
export type SelfcheckRun = z.infer<typeof SelfcheckRunSchema>;

/** Counts and the overall result of a list of checks. */
export function summarize(checks: readonly { readonly result: SelfcheckResult }[]): SelfcheckSummary {
  let pass = 0;
  let fail = 0;
  let unknown = 0;
  for (const check of checks) {
    if (check.result === 'pass') pass += 1;
    else if (check.result === 'fail') fail += 1;
    else unknown += 1;
  }
  return { pass, fail, unknown, overall: fail > 0 ? 'fail' : unknown > 0 ? 'unknown' : 'pass' };
}

/**
 * Evidence bounded to MAX_EVIDENCE_CHARS: arrays are cut (with a note of how many were dropped)
 * until it fits, and as a last resort only the scalar fields are kept. Never throws for JSON input.
 */
export function boundEvidence(value: Record<string, unknown>): Record<string, z.core.util.JSONType> {
  const fits = (candidate: unknown): boolean => canonicalJson(candidate).length <= MAX_EVIDENCE_CHARS;
  let current = JSON.parse(JSON.stringify(value)) as Record<string, z.core.util.JSONType>;
  if (fits(current)) return current;
  for (const limit of [20, 10, 5, 2, 0]) {
    current = cutArrays(current, limit) as Record<string, z.core.util.JSONType>;
    if (fits(current)) return current;
  }
  const scalars: Record<string, z.core.util.JSONType> = { truncated: true };
  for (const [key, item] of Object.entries(current)) {
    if (item === null || typeof item !== 'object') scalars[key] = typeof item === 'string' ? item.slice(0, 100) : item;
    if (!fits(scalars)) {
      delete scalars[key];
      break;
    }
  }
  return scalars;
}

function cutArrays(value: z.core.util.JSONType, limit: number): z.core.util.JSONType {
  if (Array.isArray(value)) {
    const kept = value.slice(0, limit).map((item) => cutArrays(item, limit));
    return value.length > limit ? [...kept, `… ${value.length - limit} more`] : kept;
  }
  if (value !== null && typeof value === 'object') {
    const out: Record<string, z.core.util.JSONType> = {};
    for (const [key, item] of Object.entries(value)) out[key] = cutArrays(item, limit);
    return out;
  }
  return typeof value === 'string' && value.length > 200 ? `${value.slice(0, 200)}…` : value;
}
