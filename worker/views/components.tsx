import type { Child } from "hono/jsx";
import { formatInstant, useZone } from "./time";

export function Csrf(props: { token: string }) {
  return <input type="hidden" name="_csrf" value={props.token} />;
}

/** A POST button in its own small form (revoke, delete, move…). */
export function ActionButton(props: {
  action: string;
  csrf: string;
  label: string;
  danger?: boolean;
  confirm?: string;
  fields?: Record<string, string>;
  testid?: string;
}) {
  return (
    <form method="post" action={props.action} class="inline" data-confirm={props.confirm}>
      <input type="hidden" name="_csrf" value={props.csrf} />
      {Object.entries(props.fields ?? {}).map(([k, v]) => (
        <input type="hidden" name={k} value={v} />
      ))}
      <button type="submit" class={`small${props.danger ? " danger" : ""}`} data-testid={props.testid}>
        {props.label}
      </button>
    </form>
  );
}

/**
 * A table that may scroll sideways (phones): a labelled region reachable with Tab, so keyboard
 * users can scroll it too (WCAG 2.1.1; axe's scrollable-region-focusable).
 */
export function ScrollRegion(props: { label: string; children?: Child }) {
  return (
    <section class="table-wrap" tabindex={0} aria-label={props.label}>
      {props.children}
    </section>
  );
}

/** The node picker of the report and request filters: "whole fleet" or one node by hostname. */
export function NodeSelect(props: { nodes: { id: string; hostname: string }[]; current?: string | null }) {
  return (
    <label>
      Node
      <select name="node">
        <option value="">whole fleet</option>
        {props.nodes.map((n) => (
          <option value={n.id} selected={props.current === n.id}>
            {n.hostname}
          </option>
        ))}
      </select>
    </label>
  );
}

export function Notice(props: { kind?: "ok" | "error" | "warn"; children?: Child }) {
  return (
    <div class={`notice ${props.kind ?? ""}`} role={props.kind === "error" ? "alert" : "status"}>
      {props.children}
    </div>
  );
}

export function FieldErrors(props: { messages?: string[] }) {
  if (!props.messages?.length) return null;
  return (
    <>
      {props.messages.map((m) => (
        <p class="field-error">{m}</p>
      ))}
    </>
  );
}

/** An instant in the person's chosen zone (TimeZoneContext), the UTC instant in `datetime`. */
export function Time(props: { at: number | null | undefined; seconds?: boolean }) {
  const zone = useZone();
  if (!props.at) return <span class="muted">never</span>;
  const iso = new Date(props.at).toISOString();
  return (
    <time datetime={iso} title={iso}>
      {formatInstant(props.at, zone, { seconds: props.seconds })}
    </time>
  );
}

export function Ago(props: { at: number | null | undefined; now: number }) {
  if (!props.at) return <span class="muted">never</span>;
  const s = Math.max(0, Math.round((props.now - props.at) / 1000));
  const text =
    s < 90
      ? `${s} s ago`
      : s < 5400
        ? `${Math.round(s / 60)} min ago`
        : s < 172800
          ? `${Math.round(s / 3600)} h ago`
          : `${Math.round(s / 86400)} d ago`;
  return <time datetime={new Date(props.at).toISOString()}>{text}</time>;
}

const BADGE: Record<string, string> = {
  online: "ok",
  "in-sync": "ok",
  applied: "ok",
  allow: "ok",
  offline: "warn",
  behind: "warn",
  never: "warn",
  revoked: "bad",
  rejected: "bad",
  block: "bad",
  auth: "warn",
  sent: "ok",
  failed: "bad",
  held: "warn",
  soaking: "warn",
  promoted: "ok",
  halted: "bad",
  "rolled-back": "warn",
};

export function Badge(props: { value: string }) {
  return <span class={`badge ${BADGE[props.value] ?? ""}`}>{props.value}</span>;
}

export interface PageInfo {
  page: number;
  pages: number;
  total: number;
}

export const PAGE_SIZE = 25;

export function paginate<T>(rows: T[], page: number, size = PAGE_SIZE): { rows: T[]; info: PageInfo } {
  const pages = Math.max(1, Math.ceil(rows.length / size));
  const current = Math.min(Math.max(1, page), pages);
  return {
    rows: rows.slice((current - 1) * size, current * size),
    info: { page: current, pages, total: rows.length },
  };
}

/** Previous/next links that keep the other query parameters. */
export function Pager(props: { info: PageInfo; base: string; param?: string }) {
  const { info } = props;
  if (info.pages <= 1) return null;
  const param = props.param ?? "page";
  const link = (p: number) => {
    const url = new URL(props.base, "http://x");
    url.searchParams.set(param, String(p));
    return `${url.pathname}${url.search}`;
  };
  return (
    <nav class="pager" aria-label="Pages">
      {info.page > 1 ? <a href={link(info.page - 1)}>← Previous</a> : <span class="muted">← Previous</span>}
      <span>
        Page {info.page} of {info.pages} ({info.total})
      </span>
      {info.page < info.pages ? <a href={link(info.page + 1)}>Next →</a> : <span class="muted">Next →</span>}
    </nav>
  );
}

export function formatBytes(n: number | null | undefined): string {
  if (n == null) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}
