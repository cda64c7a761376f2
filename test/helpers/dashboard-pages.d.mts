export const DASHBOARD_PAGES: string[];
