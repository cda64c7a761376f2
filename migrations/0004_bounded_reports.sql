-- Reports within a storage budget (docs/reports.md, Storage). Hand-written; keep
-- worker/db/schema.ts in sync.
-- duration_ms was written and never read: one column less on every rollup row.
ALTER TABLE `rollups` DROP COLUMN `duration_ms`;
--> statement-breakpoint
-- Ledger rows older than 48 h collapse into runs of consecutive chunk ids per node and epoch:
-- duplicate detection and gap reports read runs, and a node-day costs a few rows, not thousands.
CREATE TABLE `log_chunk_runs` (
	`node_id` text NOT NULL,
	`epoch` text NOT NULL,
	`first_seq` integer NOT NULL,
	`last_seq` integer NOT NULL,
	`records` integer NOT NULL,
	`first_ts` integer NOT NULL,
	`last_ts` integer NOT NULL,
	PRIMARY KEY(`node_id`, `epoch`, `first_seq`)
) WITHOUT ROWID;
--> statement-breakpoint
CREATE INDEX `log_chunk_runs_last_ts_idx` ON `log_chunk_runs` (`last_ts`);
--> statement-breakpoint
-- How far compaction has gone: reports read day rows (and no per-node minute rows) before it.
-- Advanced before each compaction run, so a report never expects rows that are already gone.
CREATE TABLE `report_state` (
	`id` integer PRIMARY KEY NOT NULL CHECK (`id` = 1),
	`compacted_before` integer NOT NULL
);
