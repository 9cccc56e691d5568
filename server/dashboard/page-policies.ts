import { ApiFailure, apiPaths } from './api-client.js';
import type { PageContext } from './app.js';
import { h, replace, summary, table } from './dom.js';
import { POLICY_TEMPLATE, editablePolicy, fill, formatTime, parseEditorJson, policyProblems, tierLabel } from './format.js';

/**
 * Policies per tier: the current signed version and its history; role admin edits the JSON and
 * publishes it. The server validates with the shared validator (every USB rule, errors with line
 * and column) and signs; its problems are listed one per line. JSON syntax errors are shown with
 * line and column before anything is sent. Version, issuedAt and tier are the server's: the
 * editor leaves them out.
 */

interface CurrentPolicy {
  readonly version: number;
  readonly keyId: string;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly policy: Readonly<Record<string, unknown>>;
}

interface PolicyVersion {
  readonly version: number;
  readonly keyId: string;
  readonly createdAt: string;
  readonly createdBy: string;
}

const TIERS = ['mynumber', 'lgwan', 'internet'] as const;
let selectedTier: (typeof TIERS)[number] = 'mynumber';

export async function renderPolicies(context: PageContext): Promise<void> {
  const { text, main, locale } = context;
  const tabs = h(
    'div',
    { class: 'tabs', attrs: { role: 'group', 'aria-label': text('admin.terminals.tier') } },
    ...TIERS.map((tier) => {
      const button = h('button', { attrs: { type: 'button', id: `policy-tier-${tier}`, 'aria-pressed': String(tier === selectedTier) } }, tierLabel(tier, locale));
      button.addEventListener('click', () => {
        selectedTier = tier;
        context.reload();
      });
      return button;
    }),
  );
  const currentBox = h('div', { attrs: { id: 'policy-current' } });
  const historyBox = h('div', { attrs: { id: 'policy-history' } });
  const editor = h('textarea', { attrs: { id: 'policy-editor', rows: '24', spellcheck: 'false', 'aria-describedby': 'policy-problems' } });
  editor.readOnly = !context.canWrite;
  const problems = h('div', { attrs: { id: 'policy-problems', role: 'alert', 'aria-live': 'assertive' } });
  const publish = h('button', { attrs: { type: 'button', id: 'policy-publish' } }, text('admin.policies.publish'));
  const tier = selectedTier;
  const base = `${apiPaths.adminPolicies}/${tier}`;

  publish.addEventListener('click', () => {
    replace(problems);
    const parsed = parseEditorJson(editor.value);
    if (!parsed.ok) {
      const where = parsed.line === null ? '' : fill(text('admin.policies.at'), { line: parsed.line, column: parsed.column ?? 0 });
      replace(problems, h('p', { class: 'error' }, `${text('admin.policies.notJson')} ${where}`), h('p', { class: 'muted' }, parsed.message));
      return;
    }
    publish.disabled = true;
    void (async () => {
      try {
        const published = await context.api.put<{ version: number }>(base, parsed.value);
        replace(problems, h('p', { class: 'ok', attrs: { id: 'policy-published' } }, fill(text('admin.policies.published'), { version: published.version })));
        await loadHistory();
      } catch (failure) {
        if (failure instanceof ApiFailure && failure.status === 400) {
          replace(
            problems,
            h('p', { class: 'error' }, text('admin.policies.invalid')),
            h('ul', { class: 'issues error' }, ...policyProblems(failure.message).map((problem) => h('li', null, problem))),
          );
        } else {
          replace(problems, context.failure(failure));
        }
      } finally {
        publish.disabled = false;
      }
    })();
  });

  const loadHistory = async (): Promise<void> => {
    const { versions } = await context.api.get<{ versions: PolicyVersion[] }>(`${base}/history`);
    if (!context.current()) return;
    replace(
      historyBox,
      versions.length === 0
        ? h('p', { class: 'muted' }, text('admin.policies.noHistory'))
        : table([text('admin.policies.version'), text('admin.policies.createdAt'), text('admin.policies.createdBy'), text('admin.policies.keyId')], versions, (version) =>
            h('tr', null, h('td', { class: 'num' }, version.version), h('td', null, formatTime(version.createdAt, locale)), h('td', null, version.createdBy), h('td', null, version.keyId)),
          ),
    );
  };

  replace(
    main,
    h('h1', null, text('admin.policies.title')),
    tabs,
    currentBox,
    h('h2', null, context.canWrite ? text('admin.policies.edit') : text('admin.policies.document')),
    context.canWrite ? h('p', { class: 'muted' }, text('admin.policies.editHint')) : null,
    editor,
    problems,
    context.canWrite ? h('div', { class: 'actions' }, publish) : null,
    h('h2', null, text('admin.policies.history')),
    historyBox,
  );

  try {
    const current = await context.api.get<CurrentPolicy>(base);
    if (!context.current()) return;
    replace(
      currentBox,
      summary([
        [text('admin.policies.version'), h('span', { attrs: { id: 'policy-version' } }, String(current.version))],
        [text('admin.policies.createdAt'), formatTime(current.createdAt, locale)],
        [text('admin.policies.createdBy'), current.createdBy],
        [text('admin.policies.keyId'), current.keyId],
      ]),
    );
    editor.value = editablePolicy(current.policy);
  } catch (failure) {
    if (!context.current()) return;
    if (!(failure instanceof ApiFailure) || failure.status !== 404) throw failure;
    replace(currentBox, h('p', { class: 'muted', attrs: { id: 'policy-version' } }, text('admin.policies.none')));
    editor.value = JSON.stringify(POLICY_TEMPLATE, null, 2);
  }
  await loadHistory();
}
