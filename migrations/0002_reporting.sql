CREATE TABLE `log_chunks` (
	`node_id` text NOT NULL,
	`epoch` text NOT NULL,
	`seq` integer NOT NULL,
	`records` integer NOT NULL,
	`first_ts` integer NOT NULL,
	`last_ts` integer NOT NULL,
	`received_at` integer NOT NULL,
	PRIMARY KEY(`node_id`, `epoch`, `seq`)
);
--> statement-breakpoint
CREATE INDEX `log_chunks_last_ts_idx` ON `log_chunks` (`last_ts`);--> statement-breakpoint
CREATE TABLE `rollups` (
	`kind` integer NOT NULL,
	`node_id` text NOT NULL,
	`bucket` integer NOT NULL,
	`key` text NOT NULL,
	`requests` integer NOT NULL,
	`blocked` integer NOT NULL,
	`auth` integer NOT NULL,
	`errors` integer NOT NULL,
	`bytes_in` integer NOT NULL,
	`bytes_out` integer NOT NULL,
	`duration_ms` integer NOT NULL,
	PRIMARY KEY(`kind`, `node_id`, `bucket`, `key`)
) WITHOUT ROWID;
