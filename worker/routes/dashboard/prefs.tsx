import { setCookie } from "hono/cookie";
import { TZ_COOKIE } from "../../views/time";
import { dashboardSection } from "./app";

export const prefPages = dashboardSection();

/** A same-origin path only: anything else goes back to the overview. */
const safeBack = (back: string | undefined) =>
  back && /^\/(?!\/)[^\s\\]*$/.test(back) && back.length <= 2000 ? back : "/overview";

// A GET that changes nothing on the server, only this browser's cookie: works without JavaScript
// and needs no CSRF token (a cross-site link can at most switch someone's display zone).
prefPages.get("/tz", (c) => {
  const choice = c.req.query("tz");
  // "browser": the page script fills in the zone on the next page view.
  setCookie(c, TZ_COOKIE, choice === "UTC" ? "UTC" : "auto:", {
    path: "/",
    sameSite: "Lax",
    secure: new URL(c.req.url).protocol === "https:",
    maxAge: 365 * 24 * 3600,
  });
  return c.redirect(safeBack(c.req.query("back")), 303);
});
