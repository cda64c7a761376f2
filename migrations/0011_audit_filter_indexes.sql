-- The audit log's filters (actor, action or an action prefix, target), newest first, walk an index
-- each instead of the whole log: a rare target was a scan of every entry (services/audit-search.ts).
CREATE INDEX `audit_log_actor_idx` ON `audit_log` (`actor`,`id`);--> statement-breakpoint
CREATE INDEX `audit_log_action_idx` ON `audit_log` (`action`,`id`);--> statement-breakpoint
CREATE INDEX `audit_log_target_idx` ON `audit_log` (`target`,`id`);