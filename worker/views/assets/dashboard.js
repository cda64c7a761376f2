// Progressive enhancement for the server-rendered dashboard: confirmations, charts (uPlot) and
// report tables filled from the same /api/v1 the API clients use. Never builds HTML from data:
// every value goes through textContent.
(() => {
  // The browser's time zone, remembered for the server (cookie fg_tz = "auto:<zone>") unless the
  // person chose UTC. When the page was rendered in another zone, it is rendered again once.
  const zone = document.body.dataset.tz || "UTC";
  if (document.body.dataset.tzMode === "browser") {
    const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    if (browserZone !== zone) {
      const secure = location.protocol === "https:" ? "; Secure" : "";
      // IANA names (letters, "/", "_", "-", "+") are cookie-safe as they are.
      document.cookie = `fg_tz=auto:${browserZone}; Path=/; Max-Age=31536000; SameSite=Lax${secure}`;
      if (!sessionStorage.getItem("fg_tz_reloaded")) {
        sessionStorage.setItem("fg_tz_reloaded", "1");
        location.reload();
        return;
      }
    }
  }

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

  const BYTE_STEPS = [];
  for (let unit = 1; unit <= 1024 ** 5; unit *= 1024)
    for (const m of [1, 2, 5, 10, 20, 50, 100, 200, 500]) BYTE_STEPS.push(m * unit);

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
      // Axes and legend in the page's zone (the same one the tables and range fields use).
      tzDate: (ts) => window.uPlot.tzDate(new Date(ts * 1000), zone),
      axes: [
        axis,
        {
          ...axis,
          size: bytes ? 80 : 60,
          values: (_u, ticks) => ticks.map(bytes ? formatBytes : formatNumber),
          // Byte axes tick at 1024-based steps (1 MiB, 2 MiB, 5 MiB…), not 190.7 MiB.
          ...(bytes ? { incrs: BYTE_STEPS } : {}),
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

  for (const el of document.querySelectorAll("[data-chart]")) drawChart(el);

  // Overview: reload itself every data-refresh seconds while visible (the "as of" time says when).
  const refresh = document.querySelector("[data-refresh]");
  if (refresh) {
    setInterval(() => {
      if (document.visibilityState === "visible" && !document.querySelector("form :focus")) location.reload();
    }, Number(refresh.dataset.refresh) * 1000);
  }

  let resizeTimer;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      for (const { el, plot } of charts) plot.setSize({ width: Math.max(280, el.clientWidth), height: 240 });
    }, 150);
  });
})();
