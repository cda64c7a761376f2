import { Layout, type PageContext } from "./layout";

/**
 * The server's own confirmation for a destructive POST: the same form again with `_confirmed`,
 * so it is safe without JavaScript (with it, the browser dialog adds the field and skips this).
 */
export function ConfirmPage(props: {
  page: PageContext;
  action: string;
  message: string;
  fields: Record<string, string>;
  back: string;
}) {
  return (
    <Layout title="Confirm" section="" page={props.page}>
      <h1>Are you sure?</h1>
      <section class="panel" data-testid="confirm">
        <p>{props.message}</p>
        <form method="post" action={props.action} class="row">
          {Object.entries(props.fields).map(([k, v]) => (
            <input type="hidden" name={k} value={v} />
          ))}
          <input type="hidden" name="_confirmed" value="1" />
          <button type="submit" class="danger">
            Yes, continue
          </button>
          <a class="button" href={props.back}>
            Cancel
          </a>
        </form>
      </section>
    </Layout>
  );
}
