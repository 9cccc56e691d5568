import { LockAttemptResultSchema } from '../shared/ipc.js';
import { UserNameSchema } from '../shared/ipc.js';
import { callAgent } from './ipc/ipc-client.js';

/**
 * `sekimori-agent pam-verify`: the Linux login's second factor. A PAM service stacks
 *
 *     auth required pam_exec.so quiet expose_authtok /usr/lib/sekimori/bin/sekimori-agent pam-verify
 *
 * pam_exec runs it as root with `PAM_USER`, `PAM_SERVICE` and `PAM_TYPE` in the environment and
 * the typed password on stdin (NUL-terminated). The password field carries the PIN followed by
 * the 6-digit code, without a separator (`mypin1` + `123456` → `mypin1123456`): one prompt, as
 * with RADIUS OTP logins. The helper asks the running agent, which checks both factors, counts
 * failures and journals the attempt; it never logs or prints what was typed.
 * Exit 0 only when both factors passed; anything else (wrong, locked out, agent not running,
 * malformed input) is a failure — a login must never pass because the agent could not be asked.
 */

/** Longest authtok read (PAM_MAX_RESP_SIZE is 512). */
export const MAX_AUTHTOK_BYTES = 512;
const CODE_LENGTH = 6;

export type SplitAuthtok = { ok: true; pin: string; code: string } | { ok: false; reason: string };

/** Splits `PIN + code`: NFKC first, so full-width digits from a Japanese IME count as digits. */
export function splitAuthtok(raw: Buffer): SplitAuthtok {
  let text = raw.subarray(0, MAX_AUTHTOK_BYTES).toString('utf8');
  // pam_exec writes the NUL terminator too; a shell test may add a newline.
  text = text.replace(/\0[\s\S]*$/, '').replace(/\r?\n$/, '').normalize('NFKC');
  const code = text.slice(-CODE_LENGTH);
  if (text.length <= CODE_LENGTH || !/^\d{6}$/.test(code)) return { ok: false, reason: 'the password must be the PIN followed by the 6-digit code' };
  return { ok: true, pin: text.slice(0, -CODE_LENGTH), code };
}

export interface PamVerifyInput {
  readonly endpoint: string;
  readonly env: NodeJS.ProcessEnv;
  readonly stdin: Buffer;
}

/** Returns the exit code and one line for stderr (never containing the secret). */
export async function pamVerify(input: PamVerifyInput): Promise<{ code: number; message: string }> {
  const user = UserNameSchema.safeParse(input.env.PAM_USER ?? '');
  if (!user.success) return { code: 1, message: 'sekimori: PAM_USER missing or invalid' };
  const type = input.env.PAM_TYPE;
  if (type !== undefined && type !== 'auth') return { code: 1, message: `sekimori: pam-verify only handles auth, not ${type.slice(0, 20)}` };
  const split = splitAuthtok(input.stdin);
  if (!split.ok) return { code: 1, message: `sekimori: ${split.reason}` };
  const service = (input.env.PAM_SERVICE ?? '').slice(0, 64) || undefined;
  try {
    const answer = await callAgent(input.endpoint, { id: 1, method: 'auth.verify', params: { user: user.data, pin: split.pin, code: split.code, ...(service ? { service } : {}) } });
    if (!answer.ok) return { code: 1, message: `sekimori: the agent refused: ${answer.error.code}` };
    const result = LockAttemptResultSchema.safeParse(answer.result);
    if (!result.success) return { code: 1, message: 'sekimori: unexpected answer from the agent' };
    if (result.data.ok) return { code: 0, message: '' };
    return { code: 1, message: `sekimori: ${result.data.error?.code ?? 'refused'} (${result.data.view.remainingAttempts} attempts left)` };
  } catch (error) {
    return { code: 1, message: `sekimori: the agent could not be asked: ${error instanceof Error ? error.message : String(error)}` };
  }
}
