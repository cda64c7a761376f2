-- Alerts fired to the webhook (services/alerts.ts). One open alert per (kind, subject): the same
-- condition seen again updates last_seen_at and sends nothing; once it clears it is resolved and
-- may fire again. The webhook's configuration lives in settings (key 'alerts').
CREATE TABLE `alerts` (
  `id` text PRIMARY KEY NOT NULL,
  `kind` text NOT NULL,
  `subject` text NOT NULL,
  `summary` text NOT NULL,
  `details` text NOT NULL,
  `fired_at` integer NOT NULL,
  `last_seen_at` integer NOT NULL,
  `resolved_at` integer,
  `delivery` text NOT NULL,
  `delivered_at` integer,
  `delivery_error` text
);
CREATE UNIQUE INDEX `alerts_open_idx` ON `alerts` (`kind`, `subject`) WHERE `resolved_at` IS NULL;
CREATE INDEX `alerts_fired_idx` ON `alerts` (`fired_at`);
