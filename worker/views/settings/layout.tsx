import type { Child } from "hono/jsx";
import { Notice } from "../components";
import { Layout, type PageContext } from "../layout";

const TABS = [
  { href: "/settings/keys", label: "Enrollment keys" },
  { href: "/settings/allowlist", label: "Agent allow list" },
  { href: "/settings/users", label: "Users and roles" },
  { href: "/settings/tokens", label: "API tokens" },
  { href: "/settings/alerts", label: "Alerts" },
  { href: "/settings/audit", label: "Audit log" },
];

export function SettingsLayout(props: {
  page: PageContext;
  tab: string;
  title: string;
  notice?: string;
  error?: string;
  children?: Child;
}) {
  return (
    <Layout title={props.title} section="/settings" page={props.page}>
      <h1>Settings</h1>
      <nav class="tabs" aria-label="Settings">
        {TABS.map((t) => (
          <a href={t.href} aria-current={t.href === props.tab ? "page" : undefined}>
            {t.label}
          </a>
        ))}
      </nav>
      {props.notice ? <Notice kind="ok">{props.notice}</Notice> : null}
      {props.error ? <Notice kind="error">{props.error}</Notice> : null}
      {props.children}
    </Layout>
  );
}
