// The node's site as the master asserts it: signed with the policy key, bound to the node id and
// the time the site was set, so a node applies only what the master said, for itself, newest first.
// Carried in the enrollment answer and in the SITE_HEADER of every poll answer (docs/fleet.md).
import { z } from "zod";
import { fromBase64Url, toBase64Url, utf8 } from "./encoding";
import { type SigningKey, signMessage, type TrustedKey, verifyMessage } from "./signing";

export const SITE_HEADER = "X-Fleetgate-Site";

export const SiteAssertion = z.object({
  nodeId: z.string().min(1).max(100),
  /** sites.name, or null: the node belongs to no site. */
  site: z.string().min(1).max(64).nullable(),
  /** Epoch ms when the master set this site; an agent never goes back to an older one. */
  since: z.number().int().min(0),
  kid: z.string().min(1).max(64),
  sig: z.string().min(1).max(200),
});
export type SiteAssertion = z.infer<typeof SiteAssertion>;

function siteMessage(nodeId: string, site: string | null, since: number) {
  return utf8(`fleetgate-site-v1\n${nodeId}\n${site ?? ""}\n${since}`);
}

export async function signSiteAssertion(
  key: SigningKey,
  nodeId: string,
  site: string | null,
  since: number,
): Promise<SiteAssertion> {
  const sig = await signMessage(key, siteMessage(nodeId, site, since));
  return { nodeId, site, since, kid: key.kid, sig };
}

/** The header value: base64url of the assertion's JSON (one token, no quoting rules to get wrong). */
export function formatSiteHeader(assertion: SiteAssertion): string {
  return toBase64Url(utf8(JSON.stringify(assertion)));
}

export function parseSiteHeader(value: string | null): SiteAssertion | null {
  if (!value || value.length > 2_000) return null;
  try {
    const parsed = SiteAssertion.safeParse(JSON.parse(new TextDecoder().decode(fromBase64Url(value))));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** True when one of the trusted keys signed this assertion for `nodeId`. */
export async function verifySiteAssertion(
  assertion: SiteAssertion,
  nodeId: string,
  trusted: readonly TrustedKey[],
): Promise<boolean> {
  if (assertion.nodeId !== nodeId) return false;
  const key = trusted.find((k) => k.kid === assertion.kid);
  if (!key) return false;
  try {
    return await verifyMessage(
      key,
      assertion.sig,
      siteMessage(assertion.nodeId, assertion.site, assertion.since),
    );
  } catch {
    return false;
  }
}
