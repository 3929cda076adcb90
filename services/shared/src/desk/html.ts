/** Small helpers to write the Desk's HTML safely: every value goes through `esc` or `html`. */
import type { DeskTexts } from "./texts.js";

/** Text made safe for HTML content and quoted attribute values. */
export function esc(value: unknown): string {
  return String(value ?? "")
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

/** Markup already made safe (built by `html` or `esc`). */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export type Part = Html | string | number | undefined | null | false | readonly Part[];

function part(p: Part): string {
  if (p === undefined || p === null || p === false) return "";
  if (p instanceof Html) return p.value;
  if (Array.isArray(p)) return (p as readonly Part[]).map(part).join("");
  return esc(p);
}

/** A template tag: interpolated values are escaped unless they are Html. */
export function html(strings: TemplateStringsArray, ...values: Part[]): Html {
  let out = strings[0] ?? "";
  values.forEach((v, i) => {
    out += part(v) + (strings[i + 1] ?? "");
  });
  return new Html(out);
}

export interface PageFrame {
  t: DeskTexts;
  title: string;
  /** The organisation's display name. */
  orgName: string;
  /** The signed-in person, when there is one. */
  person?: { name: string; csrf: string };
  nav?: readonly { href: string; label: string; current: boolean }[];
  /** Shown once above the content. */
  flash?: { kind: "ok" | "error"; text: string };
  /** The current path, for the language switch to come back to. */
  path: string;
  /** Where the page's script hears of changes (Server-Sent Events); else it polls. */
  events?: string;
}

/** A whole page: skip link, header with the organisation, navigation, language and sign-out. */
export function page(frame: PageFrame, body: Html): string {
  const { t } = frame;
  const nav =
    frame.nav === undefined || frame.nav.length === 0
      ? ""
      : html`<nav aria-label="${t.nav}">
          <ul>
            ${frame.nav.map(
              (n) =>
                html`<li>
                  <a href="${n.href}" ${n.current ? new Html('aria-current="page"') : ""}
                    >${n.label}</a
                  >
                </li>`,
            )}
          </ul>
        </nav>`;
  const person =
    frame.person === undefined
      ? ""
      : html`<span>${t.signedInAs} ${frame.person.name}</span>
          <form method="post" action="/desk/logout">
            <input type="hidden" name="_csrf" value="${frame.person.csrf}" />
            <button type="submit">${t.signOut}</button>
          </form>`;
  const flash =
    frame.flash === undefined
      ? ""
      : html`<p class="${frame.flash.kind === "ok" ? "notice" : "alert"}" role="status">
          ${frame.flash.text}
        </p>`;
  return `<!doctype html>
${
  html`<html lang="${t.lang}">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <title>${frame.title} · ${frame.orgName} · ${t.appName}</title>
      <link rel="stylesheet" href="/desk/assets/desk.css" />
      <script src="/desk/assets/desk.js" defer></script>
    </head>
    <body ${frame.events === undefined ? "" : new Html(`data-events="${frame.events}"`)}>
      <a class="skip" href="#main">${t.skip}</a>
      <header>
        <span class="org">${t.appName} · ${frame.orgName}</span>
        ${nav} ${person}
        <a
          href="/desk/lang?to=${t.otherLang}&amp;back=${encodeURIComponent(frame.path)}"
          lang="${t.otherLang}"
          >${t.otherLangName}</a
        >
      </header>
      <main id="main" tabindex="-1">${flash}${body}</main>
    </body>
  </html>`.value
}`;
}
