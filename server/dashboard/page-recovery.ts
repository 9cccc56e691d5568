import type { RecoveryAnswer } from '../../shared/api.js';
import { ApiFailure, apiPaths, paths } from './api-client.js';
import type { PageContext } from './app.js';
import { h, replace, summary } from './dom.js';
import { codeGroups, fill, formatTime, recoveryActionLabel } from './format.js';

/**
 * Challenge–response recovery (DESIGN.md §6), in two steps so the administrator confirms before
 * answering: (1) the challenge the caller reads out is decoded — action, time, and the terminals
 * and users whose tags match (`POST /admin/recovery/decode`, nothing answered yet); (2) after the
 * administrator picks the terminal and ticks that the caller, terminal and user were checked, the
 * response is asked for (`POST /admin/recovery`, recorded in the admin trail) and shown in groups.
 * Role admin only.
 */
export function renderRecovery(context: PageContext): Promise<void> {
  const { text, main } = context;
  if (!context.canWrite) {
    replace(main, h('h1', null, text('admin.recovery.title')), h('p', { class: 'error' }, text('admin.error.forbidden')));
    return Promise.resolve();
  }
  const challenge = h('input', { attrs: { id: 'recovery-challenge', type: 'text', inputmode: 'numeric', autocomplete: 'off', maxlength: '200', size: '48' } });
  const decodeButton = h('button', { attrs: { type: 'submit', id: 'recovery-decode' } }, text('admin.recovery.decode'));
  const error = h('p', { class: 'error', attrs: { id: 'recovery-error', role: 'alert' } });
  const decodedBox = h('div', { attrs: { id: 'recovery-decoded' } });
  const responseBox = h('div', { attrs: { id: 'recovery-response', 'aria-live': 'polite' } });

  const form = h(
    'form',
    {
      class: 'stack',
      attrs: { id: 'recovery-form', novalidate: '' },
      on: {
        submit: (event) => {
          event.preventDefault();
          replace(error);
          replace(decodedBox);
          replace(responseBox);
          decodeButton.disabled = true;
          const code = challenge.value.trim();
          void (async () => {
            try {
              const answer = await context.api.post<RecoveryAnswer>(paths.recoveryDecode, { challenge: code });
              if (context.current()) showDecoded(context, code, answer, decodedBox, responseBox);
            } catch (failure) {
              replace(error, recoveryError(context, failure));
            } finally {
              decodeButton.disabled = false;
            }
          })();
        },
      },
    },
    h('label', { attrs: { for: 'recovery-challenge' } }, text('admin.recovery.challenge')),
    challenge,
    decodeButton,
  );
  replace(main, h('h1', null, text('admin.recovery.title')), h('p', null, text('admin.recovery.intro')), form, error, decodedBox, responseBox);
  challenge.focus();
  return Promise.resolve();
}

function showDecoded(context: PageContext, challenge: string, answer: RecoveryAnswer, box: HTMLElement, responseBox: HTMLElement): void {
  const { text, locale } = context;
  const { decoded, matches } = answer;
  const confirmed = h('input', { attrs: { id: 'recovery-confirmed', type: 'checkbox' } });
  const respond = h('button', { attrs: { type: 'button', id: 'recovery-respond' } }, text('admin.recovery.respond'));
  let chosen: string | null = matches.length === 1 ? (matches[0]?.deviceId ?? null) : null;
  const update = (): void => {
    respond.disabled = chosen === null || !confirmed.checked;
  };
  confirmed.addEventListener('change', update);

  const matchList =
    matches.length === 0
      ? h('p', { class: 'bad', attrs: { id: 'recovery-no-match' } }, text('admin.recovery.noMatch'))
      : h(
          'fieldset',
          { attrs: { id: 'recovery-matches' } },
          h('legend', null, text(matches.length === 1 ? 'admin.recovery.match' : 'admin.recovery.matches')),
          ...matches.map((match, index) => {
            const id = `recovery-match-${index}`;
            const radio = h('input', { attrs: { type: 'radio', name: 'recovery-match', id, value: match.deviceId } });
            radio.checked = match.deviceId === chosen;
            radio.addEventListener('change', () => {
              chosen = match.deviceId;
              update();
            });
            return h(
              'div',
              { class: 'recovery-match' },
              radio,
              h(
                'label',
                { attrs: { for: id } },
                h('span', { class: 'match-hostname' }, match.hostname),
                ' — ',
                h('span', { class: 'muted' }, match.deviceId),
                ' — ',
                h('span', { class: 'match-users' }, match.users.length === 0 ? text('admin.recovery.noUser') : fill(text('admin.recovery.users'), { users: match.users.join(', ') })),
              ),
            );
          }),
        );

  respond.addEventListener('click', () => {
    if (chosen === null) return;
    respond.disabled = true;
    const deviceId = chosen;
    void (async () => {
      try {
        const answered = await context.api.post<RecoveryAnswer>(apiPaths.adminRecovery, { challenge, deviceId });
        if (!context.current()) return;
        const response = answered.response ?? '';
        replace(
          responseBox,
          h('h2', null, text('admin.recovery.response')),
          h('p', null, text('admin.recovery.readOut')),
          h('ol', { class: 'groups', attrs: { id: 'recovery-response-groups', 'data-response': response } }, ...codeGroups(response).map((group) => h('li', null, group))),
        );
      } catch (failure) {
        replace(responseBox, h('p', { class: 'error', attrs: { role: 'alert' } }, recoveryError(context, failure)));
        update();
      }
    })();
  });

  replace(
    box,
    h(
      'section',
      { class: 'panel' },
      h('h2', null, text('admin.recovery.decoded')),
      summary([
        [text('admin.recovery.action'), h('span', { attrs: { id: 'recovery-action' } }, recoveryActionLabel(decoded.action, locale))],
        [text('admin.recovery.issuedAt'), formatTime(decoded.issuedAt, locale)],
        [text('admin.recovery.deviceTag'), decoded.deviceTag],
        [text('admin.recovery.userTag'), decoded.userTag],
        [text('admin.recovery.keyEpoch'), String(decoded.keyEpoch)],
      ]),
      matchList,
      matches.length === 0
        ? null
        : h('p', null, confirmed, ' ', h('label', { attrs: { for: 'recovery-confirmed' } }, text('admin.recovery.confirm'))),
      matches.length === 0 ? null : respond,
    ),
  );
  update();
}

function recoveryError(context: PageContext, failure: unknown): string {
  const { text } = context;
  if (failure instanceof ApiFailure) {
    if (failure.groups.length > 0) return fill(text('admin.recovery.groupError'), { groups: failure.groups.join(', ') });
    if (failure.code === 'expired') return text('admin.recovery.expired');
    if (failure.status === 400) return `${text('admin.recovery.badChallenge')} (${failure.message})`;
  }
  return context.failure(failure).textContent ?? '';
}
