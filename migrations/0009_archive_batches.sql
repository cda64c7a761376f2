-- Archive batches: one R2 object per ingest-coalescer flush; an index row names its chunk by object and byte offset (docs/reports.md).
ALTER TABLE `log_archive` ADD `object` text;--> statement-breakpoint
ALTER TABLE `log_archive` ADD `offset` integer;