import type { SectionDiff } from "../../services/policy-diff";

const short = (v: unknown) => {
  const s = JSON.stringify(v);
  return s && s.length > 400 ? `${s.slice(0, 400)}…` : (s ?? "");
};

/** A per-section diff (history page and the editor's draft-versus-published panel). */
export function DiffSections(props: { sections: SectionDiff[] }) {
  return (
    <>
      {props.sections.length === 0 ? <p class="muted">No differences.</p> : null}
      {props.sections.map((s) => (
        <div>
          <h3>{s.section}</h3>
          <ul>
            {s.changes.map((ch) => (
              <li class={ch.kind}>
                <strong>{ch.kind}</strong> {ch.summary}
                {ch.before !== undefined || ch.after !== undefined ? (
                  <details>
                    <summary>details</summary>
                    {ch.before !== undefined ? <pre>- {short(ch.before)}</pre> : null}
                    {ch.after !== undefined ? <pre>+ {short(ch.after)}</pre> : null}
                  </details>
                ) : null}
              </li>
            ))}
          </ul>
        </div>
      ))}
    </>
  );
}
