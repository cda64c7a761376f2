import { mkdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import type { z } from "zod";
import type { PolicyBundle } from "../../protocol/wire";
import type { SyncStore } from "../sync/types";
import { writeFileAtomic } from "./atomic-write";
import { Credentials, NodeConfig, RuntimeState } from "./schemas";

export const DEFAULT_STATE_DIR = "/var/lib/fleetgate";

/** `--state-dir`, else FLEETGATE_STATE_DIR, else the packaged default. */
export function resolveStateDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(flag || env.FLEETGATE_STATE_DIR || DEFAULT_STATE_DIR);
}

export class StateFileError extends Error {}

/** The agent's node-local state directory; every write is atomic, secrets are 0600. */
export class StateDir implements SyncStore {
  readonly configPath: string;
  readonly credentialsPath: string;
  readonly lastGoodPath: string;
  readonly runtimePath: string;
  readonly eventsPath: string;

  constructor(readonly root: string) {
    this.configPath = path.join(root, "config.json");
    this.credentialsPath = path.join(root, "credentials.json");
    this.lastGoodPath = path.join(root, "policy", "last-good.json");
    this.runtimePath = path.join(root, "runtime.json");
    this.eventsPath = path.join(root, "events.log");
  }

  async ensure(): Promise<void> {
    await mkdir(path.join(this.root, "policy"), { recursive: true, mode: 0o750 });
  }

  readConfig(): Promise<NodeConfig | null> {
    return this.readJson(this.configPath, NodeConfig);
  }

  writeConfig(config: NodeConfig): Promise<void> {
    return writeFileAtomic(this.configPath, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o644 });
  }

  readCredentials(): Promise<Credentials | null> {
    return this.readJson(this.credentialsPath, Credentials);
  }

  writeCredentials(credentials: Credentials): Promise<void> {
    return writeFileAtomic(this.credentialsPath, `${JSON.stringify(credentials, null, 2)}\n`, {
      mode: 0o600,
    });
  }

  readRuntime(): Promise<RuntimeState | null> {
    return this.readJson(this.runtimePath, RuntimeState);
  }

  writeRuntime(state: RuntimeState): Promise<void> {
    return writeFileAtomic(this.runtimePath, `${JSON.stringify(state, null, 2)}\n`);
  }

  /** Moves the pin (a key rotation announced by the pinned key): credentials.json keeps the token. */
  async saveMasterKeys(keys: Pick<Credentials, "masterKey" | "nextMasterKey">): Promise<void> {
    const current = await this.readCredentials();
    if (!current) throw new StateFileError(`${this.credentialsPath} is missing`);
    const { nextMasterKey: _previous, ...rest } = current;
    await this.writeCredentials({
      ...rest,
      masterKey: keys.masterKey,
      ...(keys.nextMasterKey ? { nextMasterKey: keys.nextMasterKey } : {}),
    });
  }

  /** The raw cached bundle; the sync loop parses and re-verifies it before trusting it. */
  async loadLastGood(): Promise<unknown | null> {
    const text = await readOptional(this.lastGoodPath);
    if (text === null) return null;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return { unreadable: "last-good.json is not JSON" };
    }
  }

  /** The parsed bundle, or its bytes as downloaded (no re-serialising a large policy on the event loop). */
  saveLastGood(bundle: PolicyBundle | Uint8Array): Promise<void> {
    const data = bundle instanceof Uint8Array ? bundle : `${JSON.stringify(bundle)}\n`;
    return writeFileAtomic(this.lastGoodPath, data, { mode: 0o640 });
  }

  async clearLastGood(): Promise<void> {
    await rm(this.lastGoodPath, { force: true });
  }

  private async readJson<T extends z.ZodType>(file: string, schema: T): Promise<z.infer<T> | null> {
    const text = await readOptional(file);
    if (text === null) return null;
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      throw new StateFileError(`${file} is not valid JSON`);
    }
    const parsed = schema.safeParse(data);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new StateFileError(
        `${file}: ${issue?.path.join(".") || "(root)"} ${issue?.message ?? "invalid"}`,
      );
    }
    return parsed.data;
  }
}

async function readOptional(file: string): Promise<string | null> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}
