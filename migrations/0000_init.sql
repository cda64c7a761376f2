CREATE TABLE `api_tokens` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`role` text NOT NULL,
	`token_hash` text NOT NULL,
	`prefix` text NOT NULL,
	`created_by` text NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`expires_at` integer,
	`last_used_at` integer,
	`revoked_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `api_tokens_hash_idx` ON `api_tokens` (`token_hash`);--> statement-breakpoint
CREATE TABLE `audit_log` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`at` integer NOT NULL,
	`actor` text NOT NULL,
	`action` text NOT NULL,
	`target` text,
	`before` text,
	`after` text,
	`request_id` text,
	`address` text
);
--> statement-breakpoint
CREATE INDEX `audit_log_at_idx` ON `audit_log` (`at`);--> statement-breakpoint
CREATE TABLE `enrollment_keys` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`key_hash` text NOT NULL,
	`prefix` text NOT NULL,
	`max_uses` integer,
	`uses` integer DEFAULT 0 NOT NULL,
	`expires_at` integer,
	`created_by` text NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`last_used_at` integer,
	`revoked_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `enrollment_keys_hash_idx` ON `enrollment_keys` (`key_hash`);--> statement-breakpoint
CREATE TABLE `node_events` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`node_id` text NOT NULL,
	`at` integer NOT NULL,
	`type` text NOT NULL,
	`version` integer,
	`detail` text
);
--> statement-breakpoint
CREATE INDEX `node_events_node_at_idx` ON `node_events` (`node_id`,`at`);--> statement-breakpoint
CREATE TABLE `nodes` (
	`id` text PRIMARY KEY NOT NULL,
	`instance_id` text NOT NULL,
	`hostname` text NOT NULL,
	`token_hash` text NOT NULL,
	`enrollment_key_id` text,
	`enrolled_at` integer NOT NULL,
	`agent_version` text NOT NULL,
	`proxy_kind` text NOT NULL,
	`proxy_listen` text,
	`proxy_version` text,
	`last_seen_at` integer,
	`last_address` text,
	`applied_version` integer,
	`applied_hash` text,
	`sync_state` text,
	`last_error` text,
	`last_error_at` integer,
	`last_status_at` integer,
	`uptime_seconds` integer,
	`spool` text,
	`revoked_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `nodes_instance_idx` ON `nodes` (`instance_id`);--> statement-breakpoint
CREATE UNIQUE INDEX `nodes_token_idx` ON `nodes` (`token_hash`);--> statement-breakpoint
CREATE TABLE `policy_chunks` (
	`version` integer NOT NULL,
	`seq` integer NOT NULL,
	`data` text NOT NULL,
	PRIMARY KEY(`version`, `seq`)
);
--> statement-breakpoint
CREATE TABLE `policy_versions` (
	`version` integer PRIMARY KEY NOT NULL,
	`hash` text NOT NULL,
	`size` integer NOT NULL,
	`chunks` integer NOT NULL,
	`issued_at` text NOT NULL,
	`kid` text NOT NULL,
	`signature` text NOT NULL,
	`message` text NOT NULL,
	`created_by` text NOT NULL,
	`rollback_of` integer,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL
);
--> statement-breakpoint
CREATE TABLE `rate_limits` (
	`key` text PRIMARY KEY NOT NULL,
	`window_start` integer NOT NULL,
	`count` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `settings` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL,
	`updated_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`updated_by` text
);
