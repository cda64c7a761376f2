import type { Child } from "hono/jsx";
import type { Role } from "../env";
import { type TimeZoneChoice, TimeZoneContext } from "./time";

export interface PageUser {
  name: string;
  role: Role;
}

export interface PageContext {
  nonce: string;
  csrf: string;
  user: PageUser;
  /** The time zone every time on the page is shown in. */
  tz?: TimeZoneChoice;
  /** The path and query of this page (the time-zone switch returns here). */
  path?: string;
}

const SECTIONS = [
  { href: "/overview", label: "Overview" },
  { href: "/nodes", label: "Nodes" },
  { href: "/policy", label: "Policy" },
  { href: "/rollouts", label: "Rollouts" },
  { href: "/reports", label: "Reports" },
  { href: "/requests", label: "Requests" },
  { href: "/settings", label: "Settings" },
] as const;

function Head(props: { title: string; nonce: string; charts?: boolean }) {
  return (
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta name="color-scheme" content="light dark" />
      <title>{`${props.title} · Fleetgate`}</title>
      <link rel="icon" href="data:," />
      <link rel="stylesheet" href="/assets/dashboard.css" />
      {props.charts ? <link rel="stylesheet" href="/assets/uplot.css" /> : null}
    </head>
  );
}

export function Scripts(props: { nonce: string; charts?: boolean }) {
  return (
    <>
      {props.charts ? <script nonce={props.nonce} src="/assets/uplot.js" /> : null}
      <script nonce={props.nonce} src="/assets/dashboard.js" defer />
    </>
  );
}

export function Layout(props: {
  title: string;
  section: string;
  page: PageContext;
  charts?: boolean;
  children?: Child;
}) {
  const { page } = props;
  return (
    <html lang="en">
      <Head title={props.title} nonce={page.nonce} charts={props.charts} />
      <body data-csrf={page.csrf} data-tz={page.tz?.zone ?? "UTC"} data-tz-mode={page.tz?.mode ?? "browser"}>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="top">
          <a class="brand" href="/overview">
            Fleetgate
          </a>
          <nav aria-label="Sections">
            {SECTIONS.map((s) => (
              <a href={s.href} aria-current={props.section === s.href ? "page" : undefined}>
                {s.label}
              </a>
            ))}
          </nav>
          <div class="who">
            <span data-testid="who">{page.user.name}</span>
            <span class={`badge ${page.user.role === "admin" ? "ok" : ""}`}>{page.user.role}</span>
            <form method="post" action="/logout" class="inline">
              <input type="hidden" name="_csrf" value={page.csrf} />
              <button type="submit" class="small">
                Log out
              </button>
            </form>
          </div>
        </header>
        <TimeZoneContext.Provider value={page.tz?.zone ?? "UTC"}>
          <main id="main" tabindex={-1}>
            {props.children}
          </main>
          <ZoneFooter page={page} />
        </TimeZoneContext.Provider>
        <Scripts nonce={page.nonce} charts={props.charts} />
      </body>
    </html>
  );
}

/** Which zone the page uses, and a switch (a GET that only sets the cookie, so it works without JS). */
function ZoneFooter(props: { page: PageContext }) {
  const tz = props.page.tz ?? { zone: "UTC", mode: "browser" as const };
  return (
    <footer class="zone">
      <form method="get" action="/prefs/tz" class="row" data-testid="tz-form">
        <input type="hidden" name="back" value={props.page.path ?? "/overview"} />
        <label>
          Times shown in
          <select name="tz">
            <option value="browser" selected={tz.mode === "browser"}>
              {`browser time zone (now ${tz.zone})`}
            </option>
            <option value="UTC" selected={tz.mode === "utc"}>
              UTC
            </option>
          </select>
        </label>
        <button type="submit" class="small">
          Set
        </button>
      </form>
    </footer>
  );
}

/** Pages before sign-in (setup, login, errors): no navigation. */
export function BareLayout(props: { title: string; nonce: string; children?: Child }) {
  return (
    <html lang="en">
      <Head title={props.title} nonce={props.nonce} />
      <body>
        <main class="center">{props.children}</main>
        <Scripts nonce={props.nonce} />
      </body>
    </html>
  );
}
