-- Policy series (generation) and signing-key rotation: see docs/architecture.md.
-- Versions published before this migration belong to generation 0 and carry only the v1 signature.
ALTER TABLE `policy_versions` ADD `generation` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `policy_versions` ADD `signature_v2` text;--> statement-breakpoint
ALTER TABLE `policy_versions` ADD `next_key` text;
