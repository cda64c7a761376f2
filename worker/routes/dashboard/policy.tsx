import { dashboardSection } from "./app";
export const policyPages = dashboardSection();
