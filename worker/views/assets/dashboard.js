// Progressive enhancement for the server-rendered dashboard: confirmations, charts (uPlot) and
// report tables filled from the same /api/v1 the API clients use. Never builds HTML from data:
// every value goes through textContent.
(() => {
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) {
        event.preventDefault();
        return;
      }
      // Confirmed here: the server skips its own confirmation page.
      if (!form.querySelector('input[name="_confirmed"]')) {
        const field = document.createElement("input");
        field.type = "hidden";
        field.name = "_confirmed";
        field.value = "1";
        form.append(field);
      }
    });
  }

  for (const button of document.querySelectorAll("[data-copy]")) {
    button.addEventListener("click", () => {
      const target = document.getElementById(button.dataset.copy);
      if (target && navigator.clipboard)
        navigator.clipboard.writeText(target.textContent.trim()).catch(() => {});
    });
  }

  const cache = new Map();
  const load = (url) => {
    if (!cache.has(url)) {
      cache.set(
        url,
        fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then((r) =>
          r.ok ? r.json() : null,
        ),
      );
    }
    return cache.get(url).catch(() => null);
  };

  const empty = (el, text) => {
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = text;
    el.replaceChildren(p);
  };

  const formatNumber = (n) => (n == null ? "–" : Number(n).toLocaleString("en"));
  const formatBytes = (n) => {
    if (n == null) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let v = Number(n);
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
  };

  const SERIES = {
    requests: { label: "Requests", color: "--chart-1" },
    allowed: { label: "Allowed", color: "--chart-3" },
    blocked: { label: "Blocked", color: "--chart-2" },
    bytesIn: { label: "Bytes in", color: "--chart-1" },
    bytesOut: { label: "Bytes out", color: "--chart-3" },
  };

  const charts = [];
  const drawChart = async (el) => {
    const data = await load(el.dataset.src);
    const points = data?.points ?? [];
    if (!window.uPlot || points.length === 0 || !points.some((p) => p.requests > 0)) {
      empty(el, data ? "No traffic recorded in this range yet." : "No report data available yet.");
      return;
    }
    const keys = el.dataset.series.split(",");
    const bytes = keys.some((k) => k.startsWith("bytes"));
    const axis = {
      stroke: css("--muted"),
      grid: { stroke: css("--border") },
      ticks: { stroke: css("--border") },
    };
    const opts = {
      width: Math.max(280, el.clientWidth),
      height: 240,
      scales: { x: { time: true } },
      axes: [
        axis,
        {
          ...axis,
          size: bytes ? 80 : 60,
          values: (_u, ticks) => ticks.map(bytes ? formatBytes : formatNumber),
        },
      ],
      series: [
        {},
        ...keys.map((k) => ({
          label: SERIES[k]?.label ?? k,
          stroke: css(SERIES[k]?.color ?? "--chart-1"),
          width: 2,
          value: (_u, v) => (bytes ? formatBytes(v) : formatNumber(v)),
        })),
      ],
    };
    const series = [points.map((p) => p.t / 1000), ...keys.map((k) => points.map((p) => p[k] ?? 0))];
    el.replaceChildren();
    charts.push({ el, plot: new window.uPlot(opts, series, el) });
  };

  const fillTop = async (table) => {
    const data = await load(table.dataset.src);
    const body = table.tBodies[0];
    const rows = data?.rows ?? [];
    if (rows.length === 0) {
      const tr = body.insertRow();
      const td = tr.insertCell();
      td.colSpan = table.tHead.rows[0].cells.length;
      td.className = "empty";
      td.textContent = data ? "No data in this range." : "No report data available yet.";
      return;
    }
    // Top-K lists: traffic of keys outside a node-hour's (or day's) top K is one "(other)" line.
    const shown = data.other ? [...rows, { ...data.other, label: "(other: outside the top K)" }] : rows;
    if (data.topK)
      table.title = `Top-K: ${data.topK.perNodeHour} keys per node-hour, ${data.topK.perDay} per day`;
    for (const row of shown) {
      const tr = body.insertRow();
      tr.insertCell().textContent = row.label ?? row.key;
      for (const [value, format] of [
        [row.requests, formatNumber],
        [row.blocked, formatNumber],
        [(row.bytesIn ?? 0) + (row.bytesOut ?? 0), formatBytes],
      ]) {
        const td = tr.insertCell();
        td.className = "num";
        td.textContent = format(value);
      }
    }
  };

  const fillSummary = async (el) => {
    const data = await load(el.dataset.src);
    for (const out of el.querySelectorAll("[data-key]")) {
      const key = out.dataset.key;
      const value = data ? (key === "bytes" ? (data.bytesIn ?? 0) + (data.bytesOut ?? 0) : data[key]) : null;
      out.textContent = key === "bytes" ? formatBytes(value) : formatNumber(value);
    }
    const gaps = document.querySelector("[data-gaps]");
    const incomplete = data?.incomplete ?? [];
    if (gaps && incomplete.length) {
      const list = gaps.querySelector("ul");
      for (const gap of incomplete) {
        const li = document.createElement("li");
        li.textContent = `${gap.hostname ?? gap.nodeId}: ${gap.missing ?? "records missing"}`;
        list.append(li);
      }
      gaps.hidden = false;
    }
    if (!data) {
      const none = document.querySelector("[data-nodata]");
      if (none) none.hidden = false;
    }
  };

  // "Applied on x of y nodes" after a publish: polled until every node has it (at most 10 min).
  for (const el of document.querySelectorAll("[data-applied]")) {
    let rounds = 0;
    const tick = async () => {
      rounds++;
      const r = await fetch(el.dataset.applied, { credentials: "same-origin" }).catch(() => null);
      const data = r?.ok ? await r.json() : null;
      if (data) {
        el.querySelector('[data-key="applied"]').textContent = String(data.applied);
        el.querySelector('[data-key="total"]').textContent = String(data.total);
        el.querySelector('[data-key="rejected-text"]').textContent = data.rejected
          ? `, ${data.rejected} rejected it`
          : "";
      }
      if (rounds < 300 && (!data || data.applied + data.rejected < data.total)) setTimeout(tick, 2000);
    };
    setTimeout(tick, 1000);
  }

  for (const el of document.querySelectorAll("[data-summary]")) fillSummary(el);
  for (const el of document.querySelectorAll("[data-chart]")) drawChart(el);
  for (const el of document.querySelectorAll("table[data-top]")) fillTop(el);

  let resizeTimer;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      for (const { el, plot } of charts) plot.setSize({ width: Math.max(280, el.clientWidth), height: 240 });
    }, 150);
  });
})();
