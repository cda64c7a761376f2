// Settings pages, one file each; routes import from here.
export { AlertsPage } from "./alerts";
export { AllowlistPage } from "./allowlist";
export { type AuditFilterView, AuditPage } from "./audit";
export { type KeyRow, KeysPage } from "./keys";
export { SettingsLayout } from "./layout";
export { type TokenRow, TokensPage } from "./tokens";
export { type UserRowView, UsersPage } from "./users";
