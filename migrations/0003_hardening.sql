-- Re-enrollment without the node's token only inside an admin's restore window (epoch ms).
ALTER TABLE `nodes` ADD `reenroll_until` integer;--> statement-breakpoint
-- The user an API token acts for (its creator, or its creating token's owner); NULL = bootstrap.
ALTER TABLE `api_tokens` ADD `owner_user_id` text;--> statement-breakpoint
CREATE INDEX `api_tokens_owner_idx` ON `api_tokens` (`owner_user_id`);--> statement-breakpoint
-- Node events and audit entries are pruned by age (housekeeping).
CREATE INDEX `node_events_at_idx` ON `node_events` (`at`);
