/**
 * The CodeMirror 6 setup of the editor page: YAML highlighting (colours from CSS variables, so
 * light and dark themes both read), schema completion and hover, and a linter fed by POST /validate.
 */
import { autocompletion, closeBrackets, completionKeymap } from '@codemirror/autocomplete';
import { defaultKeymap, history, historyKeymap, indentWithTab } from '@codemirror/commands';
import { yaml } from '@codemirror/lang-yaml';
import { HighlightStyle, bracketMatching, indentOnInput, syntaxHighlighting } from '@codemirror/language';
import { lintGutter, lintKeymap, linter, type Diagnostic } from '@codemirror/lint';
import { EditorState, type Extension } from '@codemirror/state';
import { EditorView, drawSelection, highlightActiveLine, highlightActiveLineGutter, hoverTooltip, keymap, lineNumbers } from '@codemirror/view';
import { tags as t } from '@lezer/highlight';
import { schemaCompletion, schemaHover } from './yaml-schema.ts';

const highlight = HighlightStyle.define([
  { tag: [t.definition(t.propertyName), t.propertyName], color: 'var(--hl-key)' },
  { tag: [t.string, t.special(t.string), t.content], color: 'var(--hl-string)' },
  { tag: [t.number, t.bool, t.null, t.atom, t.keyword], color: 'var(--hl-atom)' },
  { tag: [t.comment, t.lineComment, t.meta], color: 'var(--hl-comment)', fontStyle: 'italic' },
  { tag: [t.punctuation, t.separator, t.squareBracket, t.brace], color: 'var(--hl-punct)' },
]);

const theme = EditorView.theme({
  '&': { height: '100%', backgroundColor: 'var(--panel)', color: 'var(--fg)' },
  '.cm-content': { caretColor: 'var(--fg)' },
  '.cm-gutters': { backgroundColor: 'var(--panel-2)', color: 'var(--muted)', border: 'none' },
  '.cm-activeLine': { backgroundColor: 'var(--active-line)' },
  '.cm-activeLineGutter': { backgroundColor: 'var(--active-line)' },
  '&.cm-focused .cm-selectionBackground, .cm-selectionBackground': { backgroundColor: 'var(--selection) !important' },
  '.cm-tooltip': { backgroundColor: 'var(--panel)', color: 'var(--fg)', border: '1px solid var(--border)' },
  '.cm-tooltip-autocomplete ul li[aria-selected]': { backgroundColor: 'var(--accent)', color: 'var(--accent-fg)' },
  '.cm-scroller': { fontFamily: 'var(--mono)', fontSize: '13px' },
});

export interface EditorHooks {
  schema: Record<string, any>;
  /** Diagnostics of the text (POST /validate), as editor positions. */
  lint(view: EditorView): Promise<Diagnostic[]>;
  onChange(text: string): void;
}

/** The page's CSP nonce (the server writes it into index.html): CodeMirror's <style> elements need it. */
function cspNonce(): string {
  return document.querySelector<HTMLMetaElement>('meta[name="csp-nonce"]')?.content ?? '';
}

export function createEditor(parent: HTMLElement, doc: string, hooks: EditorHooks): EditorView {
  const extensions: Extension[] = [
    EditorView.cspNonce.of(cspNonce()),
    lineNumbers(), highlightActiveLineGutter(), highlightActiveLine(), history(), drawSelection(),
    indentOnInput(), bracketMatching(), closeBrackets(),
    yaml(), syntaxHighlighting(highlight), theme,
    autocompletion({ override: [schemaCompletion(hooks.schema)], activateOnTyping: true }),
    hoverTooltip(schemaHover(hooks.schema), { hoverTime: 300 }),
    linter((view) => hooks.lint(view), { delay: 400 }), lintGutter(),
    keymap.of([indentWithTab, ...defaultKeymap, ...historyKeymap, ...completionKeymap, ...lintKeymap]),
    EditorState.tabSize.of(2),
    // Long expressions wrap rather than scroll sideways on a laptop screen.
    EditorView.lineWrapping,
    EditorView.updateListener.of((u) => { if (u.docChanged) hooks.onChange(u.state.doc.toString()); }),
  ];
  return new EditorView({ parent, state: EditorState.create({ doc, extensions }) });
}

export function setText(view: EditorView, text: string): void {
  view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
}
