/**
 * Building the page from data, text only. Every string — above all what terminals sent (host
 * names, user names, device names and serials, event data) — becomes a Text node or an attribute
 * value; nothing is ever parsed as HTML (no innerHTML, insertAdjacentHTML, outerHTML or
 * document.write in the dashboard). Event-handler attributes cannot be set through `h`.
 */

export type Child = Node | string | number | null | undefined | false;

export interface Props {
  readonly class?: string;
  /** Attributes (never `on…`: handlers are added with `on`). */
  readonly attrs?: Readonly<Record<string, string | undefined>>;
  readonly on?: { readonly [K in keyof HTMLElementEventMap]?: (event: HTMLElementEventMap[K]) => void };
}

/** `document.createElement(tag)` with attributes, listeners and children (strings become Text nodes). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props | null = null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (props?.class !== undefined) element.className = props.class;
  for (const [name, value] of Object.entries(props?.attrs ?? {})) {
    if (value === undefined) continue;
    if (/^on/i.test(name)) throw new Error(`h(): event attribute ${name} refused; use props.on`);
    element.setAttribute(name, value);
  }
  for (const [type, listener] of Object.entries(props?.on ?? {})) {
    element.addEventListener(type, listener as EventListener);
  }
  append(element, ...children);
  return element;
}

/** Appends children; strings and numbers as Text nodes. */
export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
}

/** Removes every child of `node`. */
export function clear(node: Node): void {
  while (node.firstChild) node.removeChild(node.firstChild);
}

/** Replaces the children of `node`. */
export function replace(node: Node, ...children: Child[]): void {
  clear(node);
  append(node, ...children);
}

/** A table with a header row and one row per item. */
export function table<T>(headers: readonly string[], items: readonly T[], row: (item: T) => HTMLTableRowElement): HTMLTableElement {
  return h(
    'table',
    null,
    h('thead', null, h('tr', null, ...headers.map((header) => h('th', { attrs: { scope: 'col' } }, header)))),
    h('tbody', null, ...items.map(row)),
  );
}

/** A `<dl>` of label → value pairs. */
export function summary(pairs: readonly (readonly [string, Child])[]): HTMLDListElement {
  return h('dl', { class: 'summary' }, ...pairs.flatMap(([label, value]) => [h('dt', null, label), h('dd', null, value)]));
}

/** Longest data text shown whole in a table cell; longer text folds into a `<details>`. */
const FOLD_AT = 300;

/** A table cell of data text (JSON from a terminal…): long text is folded, everything stays text. */
export function dataCell(text: string): HTMLTableCellElement {
  if (text.length <= FOLD_AT) return h('td', { class: 'data' }, text);
  return h('td', { class: 'data' }, h('details', null, h('summary', null, `${text.slice(0, FOLD_AT - 100)}…`), text));
}
