import type { RolloutRow } from "../services/rollout-active";
import type { GateFigures } from "../services/rollout-gates";
import { ActionButton, Ago, Badge, Notice } from "./components";
import { Layout, type PageContext } from "./layout";

export interface RolloutPanelView {
  rollout: RolloutRow;
  figures: GateFigures | null;
  /** Nodes outside the ring that still run the previous version. */
  held: number;
  fleetSize: number;
}

const pct = (x: number | undefined) => `${((x ?? 0) * 100).toFixed(1)}%`;

function GateTable(props: { figures: GateFigures; gates: Record<string, number> }) {
  const f = props.figures;
  return (
    <table data-testid="gates">
      <thead>
        <tr>
          <th>Gate</th>
          <th>Before (1 h)</th>
          <th>Ring since applied</th>
          <th>Limit</th>
        </tr>
      </thead>
      <tbody>
        <tr>
          <td>NACKs in the ring</td>
          <td>–</td>
          <td>{f.nacks.length}</td>
          <td>0</td>
        </tr>
        <tr>
          <td>Error share</td>
          <td>{pct(f.before.errorShare)}</td>
          <td>
            {pct(f.during.errorShare)} <span class="muted">of {f.during.requests} requests</span>
          </td>
          <td>+{pct(props.gates.maxErrorShareIncrease)}</td>
        </tr>
        <tr>
          <td>Blocked share</td>
          <td>{pct(f.before.blockedShare)}</td>
          <td>{pct(f.during.blockedShare)}</td>
          <td>+{pct(props.gates.maxBlockedShareIncrease)}</td>
        </tr>
      </tbody>
    </table>
  );
}

function Progress(props: { label: string; done: number; total: number; testid: string }) {
  return (
    <p data-testid={props.testid}>
      {props.label}: <strong>{props.done}</strong> / {props.total}{" "}
      <progress max={Math.max(1, props.total)} value={props.done} aria-label={props.label} />
    </p>
  );
}

export function RolloutPanel(props: { view: RolloutPanelView; page: PageContext; now: number }) {
  const { rollout: r, figures: f } = props.view;
  const admin = props.page.user.role === "admin";
  const active = r.state === "soaking" || r.state === "pending";
  const gates = r.gates as Record<string, number>;
  return (
    <section class="panel" id={r.id} data-testid="rollout-panel" data-state={r.state}>
      <h2>
        Rollout <code>{r.id}</code> <Badge value={r.state} />
      </h2>
      <p>
        v{r.fromVersion ?? "–"} → v{r.toVersion ?? "…"} · ring {JSON.stringify(r.ring)} · soak {r.soakSeconds}{" "}
        s · started <Ago at={r.startedAt} now={props.now} /> by {r.startedBy}
      </p>
      {r.state === "halted" ? (
        <Notice kind="error">
          Halted: {r.reason}. The ring went back to v{r.fromVersion}
          {r.rollbackVersion ? ` (republished as v${r.rollbackVersion})` : ""}; the other nodes kept it.
        </Notice>
      ) : null}
      {r.state === "promoted" ? (
        <Notice kind="ok">
          Promoted: {r.reason}. Every node gets v{r.toVersion}.
        </Notice>
      ) : null}
      {r.state === "rolled-back" ? (
        <Notice kind="warn">
          Rolled back: the fleet went back to v{r.fromVersion} (as v{r.rollbackVersion}).
        </Notice>
      ) : null}
      <h3>Ring 1 (canary)</h3>
      <Progress
        label="Ring nodes on the new version"
        done={f?.ringApplied ?? 0}
        total={r.ringNodes.length}
        testid="ring-progress"
      />
      <p class="muted">
        {r.ringAppliedAt ? (
          <>
            Ring applied <Ago at={r.ringAppliedAt} now={props.now} />
            {active && f?.soakRemainingSeconds !== null && f?.soakRemainingSeconds !== undefined
              ? `; soak ends in ${f.soakRemainingSeconds} s`
              : ""}
          </>
        ) : (
          "Waiting for every online ring node to apply."
        )}
      </p>
      <h3>Ring 2 (the rest of the fleet)</h3>
      {active ? (
        <Progress
          label="Held on the previous version"
          done={props.view.held}
          total={props.view.fleetSize - r.ringNodes.length}
          testid="held-progress"
        />
      ) : (
        <p class="muted">Not held any more.</p>
      )}
      {f ? <GateTable figures={f} gates={gates} /> : <p class="muted">No gate figures yet.</p>}
      {f?.nacks.length ? (
        <ul>
          {f.nacks.map((n) => (
            <li>
              <a href={`/nodes/${n.nodeId}`}>{n.nodeId}</a>: {n.error}
            </li>
          ))}
        </ul>
      ) : null}
      {admin ? (
        <div class="actions">
          {r.state === "soaking" ? (
            <>
              <ActionButton
                action={`/rollouts/${r.id}/promote`}
                csrf={props.page.csrf}
                label="Promote now"
                testid="promote"
              />
              <ActionButton
                action={`/rollouts/${r.id}/halt`}
                csrf={props.page.csrf}
                label="Halt (ring rolls back)"
                danger
                confirm="Halt this rollout and roll the ring back?"
                testid="halt"
              />
            </>
          ) : null}
          {r.state === "promoted" ? (
            <ActionButton
              action={`/rollouts/${r.id}/rollback`}
              csrf={props.page.csrf}
              label="Roll back the fleet"
              danger
              confirm="Roll every node back to the version before this rollout?"
              testid="rollback"
            />
          ) : null}
        </div>
      ) : null}
    </section>
  );
}

export function RolloutsPage(props: {
  page: PageContext;
  panels: RolloutPanelView[];
  now: number;
  notice?: { kind: "ok" | "error"; text: string };
}) {
  return (
    <Layout title="Rollouts" section="/rollouts" page={props.page}>
      <h1>Rollouts</h1>
      {props.notice ? <Notice kind={props.notice.kind}>{props.notice.text}</Notice> : null}
      {props.panels.length === 0 ? (
        <p class="panel muted">
          No rollouts yet. Start one with <code>POST /api/v1/rollouts</code> (docs/fleet.md).
        </p>
      ) : (
        props.panels.map((view) => <RolloutPanel view={view} page={props.page} now={props.now} />)
      )}
    </Layout>
  );
}
