// Plain counters and gauges and their Prometheus text exposition (format 0.0.4): no dependency,
// nothing on the request path but an increment. Gauges are read when scraped.

type Labels = Record<string, string>;

interface Family {
  name: string;
  help: string;
  type: "counter" | "gauge";
  /** Label set (serialised) → value, for counters and set gauges. */
  values: Map<string, number>;
  /** Gauges computed at scrape time. */
  read?: () => { labels?: Labels; value: number }[];
}

export class Registry {
  private readonly families = new Map<string, Family>();

  counter(name: string, help: string): (labels?: Labels, by?: number) => void {
    const family = this.add({ name, help, type: "counter", values: new Map() });
    return (labels, by = 1) => {
      const key = labelText(labels);
      family.values.set(key, (family.values.get(key) ?? 0) + by);
    };
  }

  /**
   * One series of a registered counter, its labels serialised once: it shows 0 before its first
   * event, and an increment is one Map update (what the request path calls).
   */
  series(name: string, labels?: Labels): (by?: number) => void {
    const family = this.families.get(name);
    if (family?.type !== "counter" || family.read) throw new Error(`no counter ${name}`);
    const key = labelText(labels);
    if (!family.values.has(key)) family.values.set(key, 0);
    return (by = 1) => {
      family.values.set(key, (family.values.get(key) ?? 0) + by);
    };
  }

  /** Read at scrape time; `type: "counter"` for a total someone else keeps (e.g. on disk). */
  gauge(
    name: string,
    help: string,
    read: () => number | null | { labels?: Labels; value: number }[],
    type: "gauge" | "counter" = "gauge",
  ): void {
    this.add({
      name,
      help,
      type,
      values: new Map(),
      read: () => {
        const value = read();
        if (value === null) return [];
        return typeof value === "number" ? [{ value }] : value;
      },
    });
  }

  /** The text exposition: HELP and TYPE for every family, then its samples. */
  render(): string {
    const lines: string[] = [];
    for (const family of this.families.values()) {
      lines.push(`# HELP ${family.name} ${family.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
      lines.push(`# TYPE ${family.name} ${family.type}`);
      const samples = family.read
        ? family.read().map((s) => [labelText(s.labels), s.value] as const)
        : [...family.values.entries()];
      for (const [labels, value] of samples) lines.push(`${family.name}${labels} ${formatValue(value)}`);
    }
    return `${lines.join("\n")}\n`;
  }

  private add(family: Family): Family {
    if (this.families.has(family.name)) throw new Error(`metric ${family.name} registered twice`);
    this.families.set(family.name, family);
    return family;
  }
}

function labelText(labels: Labels | undefined): string {
  if (!labels) return "";
  const parts = Object.entries(labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(
      ([name, value]) =>
        `${name}="${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`,
    );
  return parts.length > 0 ? `{${parts.join(",")}}` : "";
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "+Inf" : "-Inf";
  return String(value);
}
