-- Alert delivery retries (services/alert-delivery.ts): a failed webhook delivery is tried again
-- with a growing pause while its alert is open; `attempts` counts the tries, `retry_at` is when the
-- next one is due (null: sent, off, or given up).
ALTER TABLE `alerts` ADD `attempts` integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE `alerts` ADD `retry_at` integer;--> statement-breakpoint
CREATE INDEX `alerts_retry_idx` ON `alerts` (`retry_at`) WHERE `retry_at` IS NOT NULL;
