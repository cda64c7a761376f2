// Destructive dashboard POSTs confirm on the server: without `_confirmed=1` the handler is not
// reached and a confirmation page posts the same fields again.

import { createMiddleware } from "hono/factory";
import type { DashContext, DashEnv } from "../../middleware/session";
import { ConfirmPage } from "../../views/confirm";
import { FORM_STATUS, formFields, pageContext } from "./app";

/** A same-origin path to go back to: the Referer's path, else `fallback`. */
function backTo(c: DashContext, fallback: string) {
  const referer = c.req.header("Referer");
  if (!referer) return fallback;
  try {
    const url = new URL(referer);
    return url.origin === new URL(c.req.url).origin ? `${url.pathname}${url.search}` : fallback;
  } catch {
    return fallback;
  }
}

export function confirmFirst(options: {
  message: (form: Record<string, string>, c: DashContext) => string | Promise<string>;
  /** Only some submissions are destructive (a user form that also disables): confirm those. */
  when?: (form: Record<string, string>, c: DashContext) => boolean | Promise<boolean>;
  back: string;
}) {
  return createMiddleware<DashEnv>(async (c, next) => {
    const form = await formFields(c);
    if (form._confirmed === "1") return next();
    if (options.when && !(await options.when(form, c))) return next();
    const { _confirmed: _, ...fields } = form;
    return c.html(
      <ConfirmPage
        page={pageContext(c)}
        action={c.req.path}
        message={await options.message(form, c)}
        fields={fields}
        back={backTo(c, options.back)}
      />,
      FORM_STATUS,
    );
  });
}
