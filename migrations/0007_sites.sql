-- Sites, staged rollouts and the proxy address PAC files publish (docs/fleet.md).
-- A site is named by its slug: rules say `"sites": ["berlin"]` and the PAC file is /pac/berlin.pac.
CREATE TABLE `sites` (
	`name` text PRIMARY KEY NOT NULL,
	`description` text DEFAULT '' NOT NULL,
	-- JSON {bypass: string[] (CIDRs and domains), allowDirect: boolean}
	`settings` text NOT NULL,
	`created_by` text NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`updated_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL
);
--> statement-breakpoint
ALTER TABLE `enrollment_keys` ADD `site` text;--> statement-breakpoint
ALTER TABLE `nodes` ADD `site` text;--> statement-breakpoint
-- When the node got its site (epoch ms): the signed site assertion carries it, so an agent never
-- goes back to an older assignment replayed at it.
ALTER TABLE `nodes` ADD `site_since` integer;--> statement-breakpoint
-- host:port clients should use for this node (admin-set); null: derived from the reported listen address.
ALTER TABLE `nodes` ADD `public_address` text;--> statement-breakpoint
CREATE INDEX `nodes_site_idx` ON `nodes` (`site`);--> statement-breakpoint
CREATE TABLE `rollouts` (
	`id` text PRIMARY KEY NOT NULL,
	-- pending (publishing), soaking (ring only), promoted, halted, rolled-back
	`state` text NOT NULL,
	`from_version` integer,
	`from_hash` text,
	`from_generation` integer,
	`to_version` integer,
	`to_hash` text,
	-- JSON {site} | {nodes: string[]} | {percent}: as asked
	`ring` text NOT NULL,
	-- JSON string[]: the ring resolved to node ids when the rollout started
	`ring_nodes` text NOT NULL,
	`soak_seconds` integer NOT NULL,
	-- JSON {maxErrorShareIncrease, maxBlockedShareIncrease, minRequests}
	`gates` text NOT NULL,
	`started_at` integer NOT NULL,
	`started_by` text NOT NULL,
	`ring_applied_at` integer,
	`ended_at` integer,
	`ended_by` text,
	`reason` text,
	`rollback_version` integer,
	-- JSON: the gate figures of the last evaluation
	`figures` text
);
--> statement-breakpoint
CREATE INDEX `rollouts_started_idx` ON `rollouts` (`started_at`);
