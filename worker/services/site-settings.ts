/** A site's settings (sites.settings): what its PAC file says besides the nodes. */
export interface SiteSettings {
  /** CIDRs and domains clients reach without a proxy (PAC bypass). */
  bypass: string[];
  /** The PAC file ends with DIRECT: clients go direct when no node answers. */
  allowDirect: boolean;
}
