-- Index of raw access-log chunks archived in R2 (bucket LOG_ARCHIVE). One row per accepted
-- chunk, written in the same D1 batch as its ledger row, so the index is exact. The R2 key is
-- derived from (first_ts, node_id, epoch, seq) (worker/services/chunk-archive.ts), not stored.
-- `id` orders chunks by acceptance: the export cursor (id, line) never skips a late upload.
CREATE TABLE `log_archive` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`node_id` text NOT NULL,
	`epoch` text NOT NULL,
	`seq` integer NOT NULL,
	`first_ts` integer NOT NULL,
	`last_ts` integer NOT NULL,
	`records` integer NOT NULL,
	`bytes` integer NOT NULL,
	-- How far a record's time may lie below the newest time before it in the chunk (0 = sorted):
	-- lets a newest-first search stop scanning a chunk backwards early, exactly.
	`lag_ms` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `log_archive_first_ts_idx` ON `log_archive` (`first_ts`);
--> statement-breakpoint
-- Chunks spanning more than an hour (clock steps, very old spool segments) are rare; this partial
-- index finds them so a window lookup on first_ts can stay bounded to [from - 1 h, to).
CREATE INDEX `log_archive_wide_idx` ON `log_archive` (`last_ts`) WHERE `last_ts` - `first_ts` > 3600000;
