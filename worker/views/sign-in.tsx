import { FieldErrors, Notice } from "./components";
import { BareLayout } from "./layout";

export function SetupPage(props: {
  nonce: string;
  error?: string;
  errors?: Record<string, string[]>;
  name?: string;
}) {
  const e = props.errors ?? {};
  return (
    <BareLayout title="First-run setup" nonce={props.nonce}>
      <h1>Set up Fleetgate</h1>
      <p class="muted">
        Create the first admin. Prove you run this master with its bootstrap token (the
        <code>FLEETGATE_BOOTSTRAP_TOKEN</code> secret; <code>.dev.vars</code> locally).
      </p>
      {props.error ? <Notice kind="error">{props.error}</Notice> : null}
      <form method="post" action="/setup" class="stack panel">
        <label>
          Bootstrap token
          <input
            name="token"
            type="password"
            autocomplete="off"
            required
            aria-invalid={e.token ? "true" : undefined}
          />
          <FieldErrors messages={e.token} />
        </label>
        <label>
          Admin name
          <input
            name="name"
            autocomplete="username"
            required
            value={props.name ?? ""}
            aria-invalid={e.name ? "true" : undefined}
          />
          <FieldErrors messages={e.name} />
        </label>
        <label>
          Password (at least 10 characters)
          <input name="password" type="password" autocomplete="new-password" required minlength={10} />
          <FieldErrors messages={e.password} />
        </label>
        <label>
          Password again
          <input name="password2" type="password" autocomplete="new-password" required minlength={10} />
          <FieldErrors messages={e.password2} />
        </label>
        <button type="submit" class="primary">
          Create admin and sign in
        </button>
      </form>
    </BareLayout>
  );
}

export function LoginPage(props: {
  nonce: string;
  error?: string;
  name?: string;
  next?: string;
  notice?: string;
  access?: boolean;
}) {
  return (
    <BareLayout title="Sign in" nonce={props.nonce}>
      <h1>Sign in to Fleetgate</h1>
      {props.notice ? <Notice kind="ok">{props.notice}</Notice> : null}
      {props.error ? <Notice kind="error">{props.error}</Notice> : null}
      <form method="post" action="/login" class="stack panel">
        <input type="hidden" name="next" value={props.next ?? "/overview"} />
        <label>
          Name
          <input name="name" autocomplete="username" required value={props.name ?? ""} autofocus />
        </label>
        <label>
          Password
          <input name="password" type="password" autocomplete="current-password" required />
        </label>
        <button type="submit" class="primary">
          Sign in
        </button>
      </form>
      {props.access ? (
        <p class="muted">Single sign-on through Cloudflare Access is enabled for this master.</p>
      ) : null}
    </BareLayout>
  );
}

export function ErrorPage(props: { nonce: string; status: number; message: string; requestId: string }) {
  return (
    <BareLayout title={`Error ${props.status}`} nonce={props.nonce}>
      <h1>
        {props.status === 403 ? "Not allowed" : props.status === 404 ? "Not found" : "Something went wrong"}
      </h1>
      <Notice kind="error">{props.message}</Notice>
      <p class="muted">
        Request id <code>{props.requestId}</code>. <a href="/overview">Back to the dashboard</a>
      </p>
    </BareLayout>
  );
}
