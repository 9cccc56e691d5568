import type { ScryptParams } from '../server/admin-accounts.js';
import { FIRST_ADMIN_USER, createFirstAdmin, createdAdminLines } from '../server/cli-commands.js';

/**
 * `npm start`'s first administrator (issue: "the first admin is created by a CLI command or printed
 * once at first start by `npm start`"). On the first start of a data directory whose database holds
 * no administrator account, creates `admin` through `sekimori-server create-admin`'s own code
 * (`createFirstAdmin`: scrypt hash, sealed TOTP secret, `account.created` in the trail) and returns
 * the lines to show the developer: the dashboard URL, the name, the initial password and the TOTP
 * secret. They exist only in this answer: the caller writes them to its own terminal, never to a log
 * file, and no later start can show them again. On every later start: one line saying how to create
 * another account.
 *
 * `serverData` must hold the database already (call it once the server listens); `url` is the
 * server's base URL (`http://127.0.0.1:8443`).
 */
export async function firstAdminNotice(
  serverData: string,
  url: string,
  options: { readonly now?: Date; readonly scrypt?: ScryptParams } = {},
): Promise<{ readonly created: boolean; readonly lines: readonly string[] }> {
  const created = await createFirstAdmin(serverData, options.now ?? new Date(), { user: FIRST_ADMIN_USER, scrypt: options.scrypt });
  if (created === null) {
    return {
      created: false,
      lines: [`  Dashboard:      ${url}/dashboard/  (an admin exists; create another with: npx sekimori-server create-admin --data ${serverData} --user NAME)`],
    };
  }
  return {
    created: true,
    lines: [
      `  Dashboard:      ${url}/dashboard/`,
      '  First administrator — shown this once, never again and nowhere else (not logged):',
      ...createdAdminLines(created).map((line) => `    ${line}`),
    ],
  };
}
