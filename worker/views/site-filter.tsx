/** The site `<select name="site">`: "All sites" or one site; used inside a page's own GET form. */
export function SiteSelect(props: { sites: string[]; current?: string | undefined; allLabel?: string }) {
  return (
    <label>
      Site{" "}
      <select name="site" data-testid="site-select">
        <option value="" selected={!props.current}>
          {props.allLabel ?? "All sites"}
        </option>
        {props.sites.map((s) => (
          <option value={s} selected={props.current === s}>
            {s}
          </option>
        ))}
      </select>
    </label>
  );
}

/** A GET form that narrows a list to one site (nodes list; `base` keeps the page's other query fields). */
export function SiteFilter(props: {
  sites: string[];
  current?: string;
  action: string;
  hidden?: Record<string, string>;
}) {
  return (
    <form method="get" action={props.action} class="inline" data-testid="site-filter">
      {Object.entries(props.hidden ?? {}).map(([k, v]) => (
        <input type="hidden" name={k} value={v} />
      ))}
      <SiteSelect sites={props.sites} current={props.current} />{" "}
      <button type="submit" class="small" data-testid="site-apply">
        Show
      </button>
    </form>
  );
}
