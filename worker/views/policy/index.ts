// The policy editor, one file per tab; routes import from here.
export { AccessTab } from "./access-tab";
export { PolicyEditor } from "./editor";
export { JsonTab } from "./json-tab";
export { ListsTab } from "./lists-tab";
export { PolicyNav } from "./nav";
export { RuleForm } from "./rule-form";
export { RulesTab } from "./rules-tab";
export { SchedulesTab } from "./schedules-tab";
export { SettingsTab } from "./settings-tab";
export type { EditorState, PolicyTab } from "./shared";
export { UsersTab } from "./users-tab";
