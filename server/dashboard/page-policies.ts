import { ApiFailure, apiPaths } from './api-client.js';
import type { PageContext } from './app.js';
import { h, replace, summary, table } from './dom.js';
import { POLICY_TEMPLATE, editablePolicy, fill, formatTime, parseEditorJson, policyProblems, tierLabel } from './format.js';

/**
 * Policies per tier and per group (a department, 所属, of the tier): the current signed version and
 * its history; role admin edits the JSON and publishes it, or deletes a department's policy (its
 * terminals go back to the tier's). The server validates with the shared validator (every USB rule, errors with line
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
  readonly keyId: string | null;
  readonly createdAt: string;
  readonly createdBy: string;
  /** Group history only: the group's policy was deleted at this version. */
  readonly deleted?: boolean;
}

const TIERS = ['mynumber', 'lgwan', 'internet'] as const;
let selectedTier: (typeof TIERS)[number] = 'mynumber';
/** The department whose group policy is shown; null: the tier's own policy. */
let selectedDepartment: string | null = null;

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
  const department = selectedDepartment;
  const tierBase = `${apiPaths.adminPolicies}/${tier}`;
  const base = department === null ? tierBase : `${tierBase}/groups/${encodeURIComponent(department)}`;

  // The group chooser: a department name (with the tier's departments that have a policy offered), or none.
  const departmentInput = h('input', { attrs: { type: 'text', id: 'policy-department', maxlength: '100', list: 'policy-departments', value: department ?? '' } });
  const departmentList = h('datalist', { attrs: { id: 'policy-departments' } });
  const show = h('button', { attrs: { type: 'submit', id: 'policy-department-show' } }, text('admin.policies.groupShow'));
  const wholeTier = h('button', { class: 'secondary', attrs: { type: 'button', id: 'policy-department-clear' } }, text('admin.policies.groupTier'));
  const chooser = h('form', { class: 'actions', attrs: { id: 'policy-group-form' } }, h('label', null, text('admin.policies.group'), ' ', departmentInput, departmentList), show, wholeTier);
  chooser.addEventListener('submit', (event) => {
    event.preventDefault();
    const name = departmentInput.value.trim();
    selectedDepartment = name === '' ? null : name;
    context.reload();
  });
  wholeTier.addEventListener('click', () => {
    selectedDepartment = null;
    context.reload();
  });
  const groupsBox = h('div', { attrs: { id: 'policy-groups' } });
  const remove = h('button', { class: 'secondary', attrs: { type: 'button', id: 'policy-delete' } }, text('admin.policies.delete'));
  remove.addEventListener('click', () => {
    replace(problems);
    remove.disabled = true;
    void (async () => {
      try {
        const deleted = await context.api.delete<{ version: number }>(base);
        replace(problems, h('p', { class: 'ok', attrs: { id: 'policy-deleted' } }, fill(text('admin.policies.deleted'), { version: deleted.version })));
        replace(currentBox, h('p', { class: 'muted', attrs: { id: 'policy-version' } }, text('admin.policies.groupNone')));
        await Promise.all([loadHistory(), loadGroups()]);
      } catch (failure) {
        replace(problems, context.failure(failure));
      } finally {
        remove.disabled = false;
      }
    })();
  });

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
        await Promise.all([loadHistory(), loadGroups()]);
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
            h(
              'tr',
              version.deleted === true ? { class: 'muted' } : null,
              h('td', { class: 'num' }, version.version),
              h('td', null, formatTime(version.createdAt, locale)),
              h('td', null, version.createdBy),
              h('td', null, version.deleted === true ? text('admin.policies.deletedMark') : (version.keyId ?? '')),
            ),
          ),
    );
  };

  const loadGroups = async (): Promise<void> => {
    const { groups } = await context.api.get<{ groups: (PolicyVersion & { department: string })[] }>(`${tierBase}/groups`);
    if (!context.current()) return;
    replace(departmentList, ...groups.map((group) => h('option', { attrs: { value: group.department } })));
    replace(
      groupsBox,
      groups.length === 0
        ? h('p', { class: 'muted' }, text('admin.policies.groupsNone'))
        : table([text('admin.policies.group'), text('admin.policies.version'), text('admin.policies.createdAt'), text('admin.policies.createdBy')], groups, (group) => {
            const open = h('a', { attrs: { href: '#/policies', 'data-department': group.department } }, group.department);
            open.addEventListener('click', (event) => {
              event.preventDefault();
              selectedDepartment = group.department;
              context.reload();
            });
            return h('tr', null, h('td', null, open), h('td', { class: 'num' }, group.version), h('td', null, formatTime(group.createdAt, locale)), h('td', null, group.createdBy));
          }),
    );
  };

  replace(
    main,
    h('h1', null, text('admin.policies.title')),
    tabs,
    chooser,
    h('p', { class: 'muted' }, text('admin.policies.groupHint')),
    department === null ? null : h('h2', { attrs: { id: 'policy-group-heading' } }, fill(text('admin.policies.groupHeading'), { department })),
    currentBox,
    h('h2', null, context.canWrite ? text('admin.policies.edit') : text('admin.policies.document')),
    context.canWrite ? h('p', { class: 'muted' }, text('admin.policies.editHint')) : null,
    editor,
    problems,
    context.canWrite ? h('div', { class: 'actions' }, publish, department === null ? null : remove) : null,
    h('h2', null, text('admin.policies.history')),
    historyBox,
    h('h2', null, text('admin.policies.groups')),
    groupsBox,
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
    replace(currentBox, h('p', { class: 'muted', attrs: { id: 'policy-version' } }, text(department === null ? 'admin.policies.none' : 'admin.policies.groupNone')));
    editor.value = JSON.stringify(POLICY_TEMPLATE, null, 2);
    // A new department policy starts from the tier's current document when there is one.
    if (department !== null) {
      const tierCurrent = await context.api.get<CurrentPolicy>(tierBase).catch(() => null);
      if (tierCurrent !== null && context.current()) editor.value = editablePolicy(tierCurrent.policy);
    }
  }
  await Promise.all([loadHistory(), loadGroups()]);
}
