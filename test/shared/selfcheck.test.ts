import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../shared/canonical-json.js';
import { MAX_EVIDENCE_CHARS, SEED_CLAUSES, SELFCHECK_DEFINITIONS, SELFCHECK_IDS, SelfcheckRunSchema, boundEvidence, summarize } from '../../shared/selfcheck.js';

describe('self-inspection schema (shared with the server)', () => {
  it('gives every check a Japanese and an English label, a pass criterion and a seed clause that exists', () => {
    for (const id of SELFCHECK_IDS) {
      const definition = SELFCHECK_DEFINITIONS[id];
      expect(definition.label.ja).toMatch(/[\u3040-\u30ff\u4e00-\u9fff]/);
      expect(definition.label.en.length).toBeGreaterThan(0);
      expect(definition.criterion.ja.length).toBeGreaterThan(0);
      expect(SEED_CLAUSES[definition.clause]).toBeDefined();
    }
  });

  it('summarises: any fail fails the run, else any unknown makes it unknown', () => {
    expect(summarize([{ result: 'pass' }, { result: 'unknown' }])).toEqual({ pass: 1, fail: 0, unknown: 1, overall: 'unknown' });
    expect(summarize([{ result: 'pass' }, { result: 'fail' }, { result: 'unknown' }]).overall).toBe('fail');
    expect(summarize([{ result: 'pass' }]).overall).toBe('pass');
  });

  it('refuses a run whose summary does not match its checks, duplicate checks, unknown fields and oversized evidence', () => {
    const base = {
      runId: '1-1',
      trigger: 'start',
      startedAt: '2026-11-25T00:00:00.000Z',
      finishedAt: '2026-11-25T00:00:01.000Z',
      tier: 'lgwan',
      policyVersion: 1,
      policyOrigin: 'built-in',
      agentVersion: '0.1.0',
      platform: 'linux',
      summary: { pass: 1, fail: 0, unknown: 0, overall: 'pass' },
      checks: [{ id: 'mfa', result: 'pass', clause: '6(3)①', evidence: {} }],
    };
    expect(SelfcheckRunSchema.safeParse(base).success).toBe(true);
    expect(SelfcheckRunSchema.safeParse({ ...base, summary: { ...base.summary, overall: 'fail' } }).success).toBe(false);
    expect(SelfcheckRunSchema.safeParse({ ...base, checks: [...base.checks, ...base.checks], summary: { pass: 2, fail: 0, unknown: 0, overall: 'pass' } }).success).toBe(false);
    expect(SelfcheckRunSchema.safeParse({ ...base, extra: 1 }).success).toBe(false);
    expect(SelfcheckRunSchema.safeParse({ ...base, checks: [{ ...base.checks[0], evidence: { big: 'x'.repeat(MAX_EVIDENCE_CHARS) } }] }).success).toBe(false);
  });

  it('bounds evidence by cutting lists and long texts, saying how many were left out', () => {
    const bounded = boundEvidence({ count: 3000, unapproved: Array.from({ length: 3000 }, (_, i) => `pkg-${i}`), detail: 'y'.repeat(400) });
    expect(canonicalJson(bounded).length).toBeLessThanOrEqual(MAX_EVIDENCE_CHARS);
    expect(bounded.count).toBe(3000);
    expect(JSON.stringify(bounded)).toMatch(/more/);
    expect(boundEvidence({ small: [1, 2] })).toEqual({ small: [1, 2] });
  });
});
