import { dashboardSection } from "./app";
export const reportPages = dashboardSection();
