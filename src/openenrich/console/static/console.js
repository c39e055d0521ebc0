// The console: each page is a shell rendered by the server; this module fills it by calling
// the public HTTP API with the key the user signed in with. The key lives in this tab's
// sessionStorage only. Everything is built with DOM nodes and textContent, never HTML
// strings, so what the API returns is never parsed as markup.
"use strict";

const KEY = "openenrich.key";
const PAGE = document.body.dataset.page;

// -- the API ------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// The five surfaces' error bodies: {"error": "…"}, {"error": code, "detail": "…"},
// {"detail": "…"}, {"detail": [pydantic errors]} and {"error": {"code", "message"}}.
async function errorMessage(response) {
  let body;
  try {
    body = await response.json();
  } catch {
    return `${response.status} ${response.statusText || "error"}`;
  }
  const { error, detail } = body ?? {};
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => `${(d.loc ?? []).join(".")}: ${d.msg}`).join("; ");
  if (typeof error === "string") return error;
  if (error && typeof error.message === "string") return error.message;
  return JSON.stringify(body);
}

function headers(extra = {}) {
  return { Authorization: `Bearer ${sessionStorage.getItem(KEY) ?? ""}`, ...extra };
}

async function send(method, path, { body, accept = "application/json", extra = {} } = {}) {
  const init = { method, headers: headers({ Accept: accept, ...extra }) };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, `The server could not be reached (${error.message}).`);
  }
  if (response.status === 401 && PAGE !== "sign-in") {
    sessionStorage.removeItem(KEY);
    location.assign("/console/sign-in?expired=1");
  }
  if (!response.ok) throw new ApiError(response.status, await errorMessage(response));
  return response;
}

async function api(method, path, body) {
  const response = await send(method, path, { body });
  return response.status === 204 ? null : response.json();
}

const get = (path) => api("GET", path);
const post = (path, body = {}) => api("POST", path, body);

// Server-sent events read with fetch (EventSource cannot send the key). Calls onEvent for
// each event; resumes after the last id when the connection drops, until `done()` says the
// stream has nothing more to give.
async function follow(path, onEvent, done, signal) {
  let last = null;
  for (let attempt = 0; attempt < 20 && !signal.aborted; attempt++) {
    try {
      const response = await send("GET", path, {
        accept: "text/event-stream",
        extra: last === null ? {} : { "Last-Event-ID": last },
      });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      signal.addEventListener("abort", () => reader.cancel(), { once: true });
      let buffer = "";
      for (;;) {
        const { value, done: ended } = await reader.read();
        if (ended) break;
        buffer += value.replaceAll("\r\n", "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const event = parseEvent(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (event) {
            last = event.id ?? last;
            attempt = 0;
            onEvent(event);
          }
        }
      }
    } catch (error) {
      if (signal.aborted || (error instanceof ApiError && error.status)) throw error;
    }
    if (signal.aborted || (await done())) return;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function parseEvent(block) {
  const event = { id: null, type: "message", data: [] };
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (name === "data") event.data.push(value);
    else if (name === "event") event.type = value;
    else if (name === "id") event.id = value;
  }
  if (!event.data.length) return null;
  const text = event.data.join("\n");
  try {
    event.data = JSON.parse(text);
  } catch {
    event.data = text;
  }
  return event;
}

// -- the page -----------------------------------------------------------------------------

// h("a", {href: "…", onclick: f}, "text", child, …): an element; strings become text.
function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

const $ = (selector) => document.querySelector(selector);

function show(selector, ...nodes) {
  $(selector).replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined));
}

function text(value) {
  if (value instanceof Node) return value;
  if (value === null || value === undefined) return "";
  if (typeof value === "object") return h("code", {}, JSON.stringify(value));
  return String(value);
}

function count(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function when(value) {
  if (!value) return "";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : date.toLocaleString();
}

// columns: [[heading, row => value], …]
function table(columns, rows, { caption, empty = "Nothing here yet." } = {}) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: "scroll", tabindex: "0", role: "region", "aria-label": caption ?? "Table" },
    h(
      "table",
      {},
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, columns.map(([heading]) => h("th", { scope: "col" }, heading)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([, value]) => h("td", {}, text(value(row))))))),
    ),
  );
}

function facts(selector, pairs) {
  show(selector, pairs.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, text(value))]));
}

function pre(value) {
  return h("pre", { class: "json" }, typeof value === "string" ? value : JSON.stringify(value, null, 2));
}

// Runs `work` with the section's error line cleared, and shows any failure there, in words.
async function guarded(section, work) {
  const line = section.querySelector(".error") ?? $("#page-error");
  line.hidden = true;
  try {
    return await work();
  } catch (error) {
    line.textContent = error instanceof ApiError ? error.message : `Something went wrong: ${error.message}`;
    line.hidden = false;
    return undefined;
  }
}

function sectionOf(node) {
  return node.closest("section") ?? $("main");
}

// A form whose submit runs `work(values, form)`; its button is disabled while it runs.
function onSubmit(selector, work) {
  const form = $(selector);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("[type=submit], button:not([type])");
    if (button) button.disabled = true;
    try {
      await guarded(form.querySelector(".error") ? form : sectionOf(form), () =>
        work(Object.fromEntries(new FormData(form)), form),
      );
    } finally {
      if (button) button.disabled = false;
    }
  });
}

function button(label, action, props = {}) {
  return h("button", { type: "button", class: "link", ...props, onclick: action }, label);
}

function copyButton(label, value) {
  const node = button(label, async () => {
    try {
      await navigator.clipboard.writeText(value());
      node.textContent = "Copied";
    } catch {
      node.textContent = "Select the text and copy it";
    }
    setTimeout(() => (node.textContent = label), 2000);
  });
  return node;
}

function saveFile(blob, name) {
  const link = h("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

function hashParam(name) {
  return new URLSearchParams(location.hash.slice(1)).get(name);
}

// Fields left empty are not sent, so the API's defaults apply.
function filled(values) {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== ""));
}

// A bar chart of counts, drawn as SVG: `label` says in words what it shows.
function barChart(values, label) {
  const width = 600;
  const height = 120;
  const top = Math.max(1, ...values);
  const step = width / Math.max(1, values.length);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  values.forEach((value, i) => {
    const bar = document.createElementNS(svg.namespaceURI, "rect");
    const size = Math.round((value / top) * (height - 4));
    bar.setAttribute("x", String(i * step + 1));
    bar.setAttribute("y", String(height - size));
    bar.setAttribute("width", String(Math.max(1, step - 2)));
    bar.setAttribute("height", String(size));
    svg.append(bar);
  });
  return svg;
}

// -- pages --------------------------------------------------------------------------------

const pages = {};

pages["sign-in"] = () => {
  if (new URLSearchParams(location.search).has("expired")) {
    const line = $("#sign-in .error");
    line.textContent = "Your key was refused (invalid, revoked or expired): sign in again.";
    line.hidden = false;
  }
  onSubmit("#sign-in", async ({ key }) => {
    const response = await fetch("/api/auth/me", { headers: { Authorization: `Bearer ${key.trim()}` } });
    if (!response.ok) throw new ApiError(response.status, await errorMessage(response));
    sessionStorage.setItem(KEY, key.trim());
    location.assign("/console/streams");
  });
};

pages.streams = async () => {
  const activity = async () => {
    await guarded($("#activity"), async () => {
      const stats = await get("/stats");
      const counts = stats.histogram.map((minute) => minute.events);
      const peak = Math.max(0, ...counts);
      show("#chart", barChart(counts, `Events per minute over the last hour; the busiest minute had ${peak}.`));
      $("#activity-summary").textContent =
        `${stats.status === "idle" ? "Idle" : "Receiving"}: ${count(stats.events, "event")} in ` +
        `${count(stats.requests, "request")} this hour, ${count(stats.errors, "error")}; busiest minute ${peak}.`;
    });
  };

  const list = async () => {
    await guarded($("#streams"), async () => {
      const { streams } = await get("/streams");
      show(
        "#stream-list",
        table(
          [
            ["Stream", (s) => h("a", { href: `#stream=${encodeURIComponent(s.stream_id)}` }, s.stream_id)],
            ["Schema mode", (s) => s.schema_mode],
            ["Template", (s) => s.template ?? "none"],
            ["Fields", (s) => Object.keys(s.fields ?? {}).length],
            ["Created", (s) => when(s.created_at)],
          ],
          streams,
          { caption: "Your streams", empty: "No streams yet: create one above." },
        ),
      );
    });
  };

  const detail = async () => {
    const id = hashParam("stream");
    const section = $("#stream");
    section.hidden = !id;
    if (!id) return;
    $("#stream-h").textContent = `Stream ${id}`;
    await guarded(section, async () => {
      const path = `/streams/${encodeURIComponent(id)}`;
      const [{ streams }, { schema_events }, dlq] = await Promise.all([
        get("/streams"),
        get(`${path}/schema-events`),
        get(`${path}/dlq`),
      ]);
      const stream = streams.find((s) => s.stream_id === id);
      const fields = Object.entries(stream?.fields ?? {});
      show(
        "#stream-schema",
        h("p", {}, `Mode ${stream?.schema_mode ?? "?"}.`),
        table([["Field", ([name]) => name], ["Type", ([, type]) => type]], fields, {
          caption: "Declared fields",
          empty: "No declared fields: every event is stored as it comes.",
        }),
      );
      show(
        "#schema-events",
        table(
          [
            ["Change", (e) => e.type],
            ["Field", (e) => e.field],
            ["Type", (e) => e.detected_type],
            ["Before", (e) => e.previous_type ?? ""],
            ["Events", (e) => e.event_count],
            ["Detected", (e) => when(e.detected_at)],
          ],
          schema_events,
          { caption: "Schema events", empty: "No schema changes." },
        ),
      );
      show(
        "#dlq",
        h("p", {}, `${count(dlq.dlq_count, "dead-lettered event")}.`),
        table(
          [
            ["Rejected", (e) => when(e.rejected_at)],
            ["Reason", (e) => e.reason],
            ["Field", (e) => e.field ?? ""],
            ["Original event", (e) => pre(e.original)],
          ],
          dlq.events,
          { caption: "Dead-lettered events, newest first", empty: "No dead letters." },
        ),
      );
    });
    section.scrollIntoView({ block: "start" });
  };

  const connect = async () => {
    await guarded($("#connect"), async () => {
      const details = await get("/connect");
      const snippets = Object.entries(details.sql ?? {});
      show(
        "#snippets",
        h("p", {}, `Files: ${details.path ?? details.bucket ?? ""}`),
        snippets.map(([tool, code]) => {
          const label = { duckdb: "DuckDB", clickhouse: "ClickHouse", python: "Python" }[tool] ?? tool;
          return h(
            "figure",
            { class: "snippet" },
            h("figcaption", {}, label, " ", copyButton(`Copy the ${label} snippet`, () => code)),
            h("pre", {}, code),
          );
        }),
      );
    });
  };

  $("#flush").addEventListener("click", () =>
    guarded($("#stream"), async () => {
      const { files } = await post(`/streams/${encodeURIComponent(hashParam("stream"))}/flush`);
      const rows = files.reduce((sum, file) => sum + file.rows, 0);
      $("#flushed").textContent = files.length
        ? `Wrote ${count(rows, "event")} in ${count(files.length, "file")}.`
        : "Nothing was waiting to be written.";
      await connect();
    }),
  );
  onSubmit("#create-stream", async (values, form) => {
    const body = { stream_id: values.stream_id, schema_mode: values.schema_mode };
    if (values.fields.trim()) {
      try {
        body.fields = JSON.parse(values.fields);
      } catch {
        throw new Error("the fields are not valid JSON");
      }
    }
    await post("/streams", body);
    form.reset();
    await list();
  });
  window.addEventListener("hashchange", detail);
  await Promise.all([activity(), list(), detail(), connect()]);
  setInterval(activity, 15000);
};

pages.query = () => {
  const form = $("#query-form");
  const sql = () => $("#sql").value;
  onSubmit("#query-form", async () => {
    show("#results");
    $("#query-summary").textContent = "";
    const answer = await post("/query", { sql: sql() });
    const columns = answer.columns.map((column, i) => [column.name, (row) => row[i]]);
    show("#results", table(columns, answer.rows, { caption: "Results", empty: "No rows." }));
    $("#query-summary").textContent =
      count(answer.row_count, "row") + (answer.truncated ? `, cut short by the ${answer.truncated_by} limit` : "") + ".";
  });
  $("#sql").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
  $("#download-csv").addEventListener("click", () =>
    guarded(form, async () => {
      const response = await send("POST", "/query", { body: { sql: sql() }, accept: "text/csv" });
      saveFile(await response.blob(), "query.csv");
    }),
  );
};

pages.runs = async () => {
  let following = null;
  const ENDED = ["completed", "failed", "cancelled", "interrupted"];

  const list = async () => {
    await guarded($("#runs"), async () => {
      const { runs } = await get("/api/v1/runs?limit=50");
      show(
        "#run-list",
        table(
          [
            ["Run", (r) => h("a", { href: `#run=${r.id}` }, r.id)],
            ["Status", (r) => h("span", { class: `status ${r.status}` }, r.status)],
            ["Message", (r) => r.input.message],
            ["Workflow", (r) => r.input.workflow ?? ""],
            ["Credits", (r) => r.credits_used],
            ["Created", (r) => when(r.created_at)],
          ],
          runs,
          { caption: "Your runs, newest first", empty: "No runs yet." },
        ),
      );
    });
  };

  const render = (run) => {
    facts("#run-facts", [
      ["Status", h("span", { class: `status ${run.status}` }, run.status)],
      ["Message", run.input.message],
      ["Workflow", run.input.workflow ?? "none"],
      ["Credits used", run.credits_used],
      ["Started", when(run.started_at)],
      ["Finished", when(run.completed_at)],
    ]);
    $("#plan").hidden = run.status !== "requires_approval";
    if (run.plan) {
      const tasks = Array.isArray(run.plan.tasks) ? run.plan.tasks : [];
      show(
        "#plan-body",
        run.plan.summary ? h("p", {}, run.plan.summary) : null,
        tasks.length
          ? h("ol", {}, tasks.map((task) => h("li", {}, task.goal ?? task.tool ?? JSON.stringify(task))))
          : pre(run.plan),
      );
    }
    show("#answer", run.answer ? h("p", {}, run.answer) : h("p", { class: "empty" }, "No answer yet."));
    const report = run.report;
    show(
      "#report",
      report
        ? [
            run.report_url ? h("p", {}, h("a", { href: run.report_url, target: "_blank", rel: "noopener" }, "Report as PDF")) : null,
            table(
              [
                ["Check", (c) => c.name],
                ["Status", (c) => c.status],
                ["Credits", (c) => c.credits],
                ["Time (ms)", (c) => c.latency_ms ?? ""],
              ],
              run.tool_calls,
              { caption: "Checks", empty: "No checks ran." },
            ),
            h("details", {}, h("summary", {}, "The report as JSON"), pre(report)),
          ]
        : h("p", { class: "empty" }, run.error ? `No report: ${run.error.message ?? JSON.stringify(run.error)}` : "No report yet."),
    );
  };

  const detail = async () => {
    following?.abort();
    const id = hashParam("run");
    const section = $("#run");
    section.hidden = !id;
    if (!id) return;
    $("#run-h").textContent = `Run ${id}`;
    $("#timeline").replaceChildren();
    const controller = new AbortController();
    following = controller;
    await guarded(section, async () => {
      render(await get(`/api/v1/runs/${id}`));
      section.scrollIntoView({ block: "start" });
      await follow(
        `/api/v1/runs/${id}/events`,
        (event) => {
          const data = event.data ?? {};
          const said =
            [data.name ?? data.tool, data.status].filter(Boolean).join(" ") ||
            (data.message ?? data.summary ?? data.text ?? data.delta ?? "");
          $("#timeline").append(
            h("li", {}, h("time", {}, when(data.created_at ?? data.timestamp) || new Date().toLocaleTimeString()), " ",
              h("strong", {}, event.type), said ? ` ${typeof said === "string" ? said : JSON.stringify(said)}` : ""),
          );
          if (/approval|completed|failed|cancelled|interrupted|started|plan/.test(event.type)) {
            get(`/api/v1/runs/${id}`).then(render, () => {});
          }
        },
        async () => ENDED.includes((await get(`/api/v1/runs/${id}`)).status),
        controller.signal,
      );
      render(await get(`/api/v1/runs/${id}`));
      await list();
    });
  };

  const decide = (decision) =>
    guarded($("#run"), async () => {
      render(await post(`/api/v1/runs/${hashParam("run")}/approval`, { decision }));
    });
  $("#approve").addEventListener("click", () => decide("approved"));
  $("#decline").addEventListener("click", () => decide("declined"));

  onSubmit("#create-run", async (values, form) => {
    const run = await post("/api/v1/runs", filled(values));
    form.reset();
    await list();
    location.hash = `run=${run.id}`;
  });
  await guarded($("#new-run"), async () => {
    const workflows = await get("/api/v1/workflows");
    $("#workflow").append(
      ...workflows.filter((w) => w.is_active).map((w) => h("option", { value: w.slug }, `${w.name} (${w.slug})`)),
    );
  });
  window.addEventListener("hashchange", detail);
  await Promise.all([list(), detail()]);
};

pages.leads = async () => {
  const pipelineId = () => hashParam("pipeline");
  const base = () => `/v1/pipelines/${pipelineId()}`;
  let columns = [];
  let multiTemplates = new Map();

  const pipelines = async () => {
    await guarded($("#pipelines"), async () => {
      const { data } = await get("/v1/pipelines?limit=100");
      show(
        "#pipeline-list",
        table(
          [
            ["Pipeline", (p) => h("a", { href: `#pipeline=${p.pipeline_id}` }, p.pipeline_name)],
            ["Leads", (p) => p.total_leads],
            ["Enriched", (p) => p.enriched_leads],
            ["Validated", (p) => p.validated_leads],
            ["Updated", (p) => when(p.pipeline_updated_at)],
          ],
          data,
          { caption: "Your pipelines", empty: "No pipelines yet: create one above." },
        ),
      );
    });
  };

  const templates = async () => {
    await guarded($("#templates"), async () => {
      const { data } = await get("/v1/columns/ai-templates?limit=100");
      show(
        "#template-list",
        table(
          [
            ["Name", (t) => t.name],
            ["Id", (t) => h("code", {}, t.ai_column_template_id)],
            ["Model", (t) => `${t.model} (${t.provider})`],
            ["Prompt", (t) => t.prompt_template],
          ],
          data,
          { caption: "AI templates", empty: "No AI templates yet." },
        ),
      );
      const multi = (await get("/v1/columns/multi-ai-templates?limit=100")).data;
      multiTemplates = new Map(multi.map((t) => [t.multi_ai_id, t]));
      $("#enrichment-template").replaceChildren(
        h("optgroup", { label: "AI column" },
          data.map((t) => h("option", { value: `AI_COLUMN:${t.ai_column_template_id}` }, `${t.name} (${t.model})`))),
        h("optgroup", { label: "Multi-AI columns" },
          multi.map((t) => h("option", { value: `MULTI_AI_COLUMN:${t.multi_ai_id}` }, `${t.name}: ${t.output_fields.join(", ")} (${t.model})`))),
      );
    });
  };

  const leads = async () => {
    const [pipeline, listing, found] = await Promise.all([
      get(base()),
      get(`${base()}/leads?limit=100`),
      get(`${base()}/columns`),
    ]);
    columns = found.data;
    $("#pipeline-h").textContent = pipeline.pipeline_name;
    facts("#pipeline-stats", [
      ["Leads", pipeline.total_leads],
      ["Enriched", pipeline.enriched_leads],
      ["Validated", pipeline.validated_leads],
      ["Valid / invalid / risky / unknown emails",
        `${pipeline.valid_emails} / ${pipeline.invalid_emails} / ${pipeline.risky_emails} / ${pipeline.unknown_emails}`],
    ]);
    const shown = [
      ["Email", (r) => r.lead.lead_email],
      ["Name", (r) => [r.lead.lead_first_name, r.lead.lead_last_name].filter(Boolean).join(" ")],
      ["Company", (r) => r.lead.lead_company ?? ""],
      ["Email status", (r) => r.pipeline_lead_email_validation_status ?? ""],
      ["Enrichment", (r) => r.lead.lead_enrichment_status],
    ];
    for (const column of columns) {
      if (column.type === "base") {
        if (!["email", "first_name", "last_name", "company"].includes(column.key)) {
          shown.push([column.key, (r) => r.lead[`lead_${column.key}`] ?? ""]);
        }
      } else if (column.custom_field_key) {
        shown.push([`${column.custom_field_key} (${column.type})`, (r) => r.lead.lead_custom_fields?.[column.custom_field_key] ?? ""]);
      }
    }
    show(
      "#leads",
      h("p", {}, `Showing ${listing.data.length} of ${listing.pagination.total} leads, newest first.`),
      table(shown, listing.data, { caption: "Leads", empty: "No leads yet: upload a CSV above." }),
    );
    show(
      "#columns",
      table(
        [
          ["Type", (c) => c.type],
          ["Lead field or template", (c) => c.key ?? c.template_id],
          ["Output field", (c) => c.field ?? ""],
          ["Stored as", (c) => c.custom_field_key ?? ""],
        ],
        columns,
        { caption: "Columns", empty: "No columns: add one below to show enriched values." },
      ),
    );
  };

  const detail = async () => {
    const section = $("#pipeline");
    section.hidden = !pipelineId();
    if (pipelineId()) await guarded(section, leads);
  };

  const watch = async (kind, job) => {
    $("#job").hidden = false;
    $("#job-label").textContent = `${kind} job ${job.job_id}`;
    const path = `/v1/${kind}/jobs/${job.job_id}`;
    $("#job-cancel").onclick = () => guarded($("#pipeline"), () => post(`${path}/cancel`));
    let progress = job;
    for (;;) {
      $("#job-progress").value = progress.progress_percentage ?? 0;
      $("#job-status").textContent =
        `${progress.status}: ${progress.processed_leads} of ${progress.total_leads} leads, ${progress.failed_leads} failed`;
      const ended = ["COMPLETED", "FAILED", "CANCELLED"].includes(progress.status);
      $("#job-cancel").hidden = ended;
      if (ended) break;
      progress = await get(`${path}/progress?wait=10`);
    }
    if (progress.error) $("#job-status").textContent += ` (${progress.error})`;
    await leads();
  };

  onSubmit("#create-pipeline", async (values, form) => {
    const pipeline = await post("/v1/pipelines", filled(values));
    form.reset();
    await pipelines();
    location.hash = `pipeline=${pipeline.pipeline_id}`;
  });
  onSubmit("#upload", async (values, form) => {
    const rows = parseCsv(await values.file.text());
    if (!rows.length) throw new Error("the file has no rows under its header");
    const totals = { created: 0, skipped: 0, failed: 0, dropped: 0 };
    for (let start = 0; start < rows.length; start += 1000) {
      const answer = await post(`${base()}/leads`, rows.slice(start, start + 1000).map(leadOf));
      for (const name of Object.keys(totals)) totals[name] += answer[name];
      $("#upload-summary").textContent = `Uploaded ${Math.min(start + 1000, rows.length)} of ${rows.length} rows…`;
    }
    $("#upload-summary").textContent =
      `${rows.length} rows: ${totals.created} created, ${totals.skipped} skipped, ${totals.failed} failed` +
      (totals.dropped ? `, ${totals.dropped} over the quota` : "") + ".";
    form.reset();
    await Promise.all([leads(), pipelines()]);
  });
  // The template's columns are added first (adding one the pipeline has is a no-op), so
  // the values show in the table as they come.
  onSubmit("#start-enrichment", async ({ template }) => {
    const [type, id] = template.split(":");
    const body = { pipeline_id: pipelineId(), enrichment_type: type };
    if (type === "AI_COLUMN") {
      await post(`${base()}/columns`, { type: "ai", template_id: id });
      body.ai_template_id = id;
    } else {
      for (const field of multiTemplates.get(id)?.output_fields ?? []) {
        await post(`${base()}/columns`, { type: "multi_ai", template_id: id, field });
      }
      body.multi_ai_template_id = id;
    }
    await watch("enrichment", await post("/v1/enrichment/start", body));
  });
  onSubmit("#start-validation", async ({ service }) => {
    await watch("validation", await post("/v1/validation/start", { pipeline_id: pipelineId(), service }));
  });
  onSubmit("#add-column", async (values) => {
    await post(`${base()}/columns`, filled(values));
    await leads();
  });
  onSubmit("#create-ai-template", async (values, form) => {
    await post("/v1/columns/ai-templates", values);
    form.reset();
    await templates();
  });
  for (const format of ["csv", "ndjson"]) {
    $(`#export-${format}`).addEventListener("click", () =>
      guarded($("#pipeline"), async () => {
        const response = await send("GET", `${base()}/leads?format=${format}`, { accept: "*/*" });
        saveFile(await response.blob(), `leads.${format}`);
      }),
    );
  }
  window.addEventListener("hashchange", detail);
  await Promise.all([pipelines(), templates(), detail()]);
};

const LEAD_FIELDS = [
  "email", "first_name", "last_name", "company", "title", "phone", "linkedin_url",
  "company_website", "company_description", "company_size", "industry", "location",
];

// A CSV row as a lead: known columns as fields, the others in custom_fields.
function leadOf(row) {
  const lead = {};
  const custom = {};
  for (const [name, value] of Object.entries(row)) {
    const key = name.trim().toLowerCase().replace(/[\s-]+/g, "_");
    if (LEAD_FIELDS.includes(key)) lead[key] = value === "" && key !== "email" ? null : value;
    else if (value !== "") custom[name] = value;
  }
  if (Object.keys(custom).length) lead.custom_fields = custom;
  return lead;
}

// RFC 4180: quoted fields may hold commas, quotes ("") and line breaks.
function parseCsv(source) {
  const records = [];
  let record = [];
  let field = "";
  let quoted = false;
  const input = source.replace(/^\uFEFF/, "");
  for (let i = 0; i < input.length; i++) {
    const c = input[i];
    if (quoted) {
      if (c === '"' && input[i + 1] === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") record.push(field), (field = "");
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && input[i + 1] === "\n") i++;
      record.push(field);
      if (record.some((v) => v !== "")) records.push(record);
      record = [];
      field = "";
    } else field += c;
  }
  record.push(field);
  if (record.some((v) => v !== "")) records.push(record);
  const [header, ...rows] = records;
  if (!header) return [];
  return rows.map((values) => Object.fromEntries(header.map((name, i) => [name, values[i] ?? ""])));
}

pages.entities = async () => {
  const list = async (query = {}) => {
    await guarded($("#records"), async () => {
      const params = new URLSearchParams({ page_size: "50", ...filled(query) });
      const { records, total } = await get(`/api/records?${params}`);
      show(
        "#record-list",
        h("p", {}, `${count(total, "record")}, newest first.`),
        table(
          [
            ["Entity", (r) => h("a", { href: `#record=${r.id}` }, r.entity_name || "(unnamed)")],
            ["Type", (r) => r.type],
            ["Model", (r) => r.model],
            ["Schema", (r) => `${r.schema_id} v${r.schema_version}`],
            ["Cost", (r) => r.cost],
            ["Created", (r) => when(r.created_at)],
          ],
          records,
          { caption: "Records", empty: "No records yet." },
        ),
      );
    });
  };

  const fields = (outputs) => [...new Set(outputs.flatMap((o) => Object.keys(o ?? {})))];

  const sideBySide = (records) => {
    const names = fields(records.map((r) => r.structured_output));
    show(
      "#outputs",
      table(
        [["Field", (name) => name], ...records.map((r) => [r.model, (name) => r.structured_output?.[name]])],
        names,
        { caption: "Each model's answer", empty: "No structured output." },
      ),
    );
  };

  const fusion = (record) => {
    $("#fusion-part").hidden = false;
    show(
      "#fusion",
      table(
        [
          ["Field", ([name]) => name],
          ["Fused value", ([, f]) => f.value],
          ["Agreed", ([, f]) => (f.agreed ? "yes" : "no")],
          ["Confidence", ([, f]) => (typeof f.confidence === "number" ? `${Math.round(f.confidence * 100)}%` : f.confidence)],
          ["Decided by", ([, f]) => f.decided_by],
          ["Candidates", ([, f]) => (f.candidates ?? []).map((c) => `${JSON.stringify(c.value)} (${c.models.join(", ")})`).join("; ")],
        ],
        Object.entries(record.fusion ?? {}),
        { caption: "Fused fields" },
      ),
    );
  };

  const detail = async () => {
    const id = hashParam("record");
    const section = $("#record");
    section.hidden = !id;
    $("#fusion-part").hidden = true;
    $("#fuse").hidden = true;
    if (!id) return;
    await guarded(section, async () => {
      const record = await get(`/api/records/${id}`);
      $("#record-h").textContent = record.entity_name || "Record";
      facts("#record-facts", [
        ["Type", record.type],
        ["Models", (record.models ?? [record.model]).join(", ")],
        ["Schema", `${record.schema_id} v${record.schema_version}`],
        ["Valid", record.valid === false ? `no: ${(record.validation_errors ?? []).join("; ")}` : "yes"],
        ["Cost", record.cost],
      ]);
      show("#entity-data", pre(record.entity_data));
      if (record.type === "fusion") {
        $("#outputs-h").textContent = "Structured output";
        const sources = record.fusion ? fields([record.structured_output]) : [];
        show("#outputs", table([["Field", (n) => n], ["Value", (n) => record.structured_output?.[n]]], sources));
        fusion(record);
        return;
      }
      $("#outputs-h").textContent = "Structured output by model";
      // The other models' records of the same entity in the same job, side by side.
      const { records } = await get(`/api/records?page_size=100&type=enrichment&schema_id=${record.schema_id}`);
      const siblings = records.filter(
        (r) => r.job_id && r.job_id === record.job_id && r.entity_index === record.entity_index,
      );
      const full = await Promise.all(
        siblings.filter((r) => r.id !== record.id).map((r) => get(`/api/records/${r.id}`)),
      );
      const all = [record, ...full];
      sideBySide(all);
      if (all.length > 1) {
        $("#fuse").hidden = false;
        $("#fuse").onclick = () =>
          guarded(section, async () => fusion(await post("/api/fusion/merge", { record_ids: all.map((r) => r.id) })));
      }
    });
    section.scrollIntoView({ block: "start" });
  };

  onSubmit("#record-filter", (values) => list(values));
  window.addEventListener("hashchange", detail);
  await Promise.all([list(), detail()]);
};

pages.admin = async () => {
  const account = async () => {
    await guarded($("#account"), async () => {
      const [me, credits, usage] = await Promise.all([get("/api/auth/me"), get("/api/v1/usage"), get("/usage")]);
      facts("#account-facts", [
        ["Organisation", me.organization],
        ["Environment", me.environment],
        ["Plan", me.plan],
        ["Your role", me.role],
        ["Run credits used", credits.credits_used],
        ["Run credits left", credits.credits_remaining ?? "unlimited"],
        ["Events stored, last 30 days", usage.totals?.event_count ?? 0],
        ["Bytes stored, last 30 days", usage.totals?.bytes_stored ?? 0],
      ]);
      show(
        "#stream-usage",
        table(
          [["Date", (u) => u.date], ["Stream", (u) => u.stream_id], ["Events", (u) => u.event_count], ["Files", (u) => u.file_count]],
          usage.usage,
          { caption: "Stream usage by day", empty: "No stored events in the last 30 days." },
        ),
      );
    });
  };

  const keys = async () => {
    await guarded($("#api-keys"), async () => {
      const { api_keys } = await get("/api/auth/api-keys");
      show(
        "#key-list",
        table(
          [
            ["Key", (k) => h("code", {}, `${k.prefix}…`)],
            ["Name", (k) => k.name],
            ["Role", (k) => k.role],
            ["Created", (k) => when(k.created_at)],
            ["Last used", (k) => when(k.last_used_at) || "never"],
            ["State", (k) => (k.revoked_at ? `revoked ${when(k.revoked_at)}` : k.expires_at ? `expires ${when(k.expires_at)}` : "active")],
            ["", (k) => (k.revoked_at ? "" : button(`Revoke ${k.prefix}`, () => revoke(k.prefix)))],
          ],
          api_keys,
          { caption: "API keys of this environment" },
        ),
      );
    });
  };

  const revoke = (prefix) =>
    guarded($("#api-keys"), async () => {
      if (!confirm(`Revoke ${prefix}…? Requests with it are refused from now on.`)) return;
      await api("DELETE", `/api/auth/api-keys/${prefix}`);
      await keys();
    });

  const once = (selector, label, secret) => {
    const box = $(selector);
    box.hidden = false;
    box.replaceChildren(
      h("p", {}, `${label}: shown this once, copy it now.`),
      h("code", { class: "secret" }, secret),
      " ",
      copyButton("Copy", () => secret),
    );
  };

  const providerKeys = async () => {
    await guarded($("#provider-keys"), async () => {
      const { api_keys } = await get("/v1/settings/api-keys");
      show(
        "#provider-key-list",
        table(
          [
            ["Provider", (k) => k.provider],
            ["Key", (k) => (k.key_prefix ? h("code", {}, `${k.key_prefix}…`) : "")],
            ["Base URL", (k) => k.base_url ?? ""],
            ["Set by", (k) => (k.source === "server" ? "the server's operator" : "your organisation")],
            ["", (k) => (k.source === "tenant" ? button(`Remove ${k.provider}`, () => removeProvider(k.provider)) : "")],
          ],
          api_keys,
          { caption: "Provider keys", empty: "No provider keys." },
        ),
      );
    });
  };

  const removeProvider = (provider) =>
    guarded($("#provider-keys"), async () => {
      await api("DELETE", `/v1/settings/api-keys/${provider}`);
      await providerKeys();
    });

  const webhooks = async () => {
    await guarded($("#webhooks"), async () => {
      const endpoints = await get("/api/v1/webhooks");
      show(
        "#webhook-list",
        table(
          [
            ["URL", (w) => w.url],
            ["Events", (w) => (w.event_types?.length ? w.event_types.join(", ") : "all")],
            ["State", (w) => (w.is_active ? "active" : `disabled${w.disabled_reason ? `: ${w.disabled_reason}` : ""}`)],
            ["", (w) => button(`Deliveries to ${w.url}`, () => deliveries(w))],
            ["", (w) => button(`Remove ${w.url}`, () => removeWebhook(w))],
          ],
          endpoints,
          { caption: "Webhook endpoints", empty: "No webhook endpoints." },
        ),
      );
    });
  };

  const deliveries = (endpoint) =>
    guarded($("#webhooks"), async () => {
      const found = await get(`/api/v1/webhooks/${endpoint.id}/deliveries`);
      $("#deliveries-part").hidden = false;
      $("#deliveries-h").textContent = `Deliveries to ${endpoint.url}`;
      show(
        "#deliveries",
        table(
          [
            ["Event", (d) => d.event_type],
            ["Status", (d) => d.status],
            ["Attempts", (d) => d.attempts],
            ["Last answer", (d) => d.last_status_code ?? d.last_error ?? ""],
            ["Created", (d) => when(d.created_at)],
            ["Delivered", (d) => when(d.delivered_at)],
          ],
          found,
          { caption: "Deliveries, newest first", empty: "Nothing delivered yet." },
        ),
      );
    });

  const removeWebhook = (endpoint) =>
    guarded($("#webhooks"), async () => {
      if (!confirm(`Remove ${endpoint.url}? Deliveries not yet made are dropped.`)) return;
      await api("DELETE", `/api/v1/webhooks/${endpoint.id}`);
      await webhooks();
    });

  let ownWorkflows = new Set();
  const workflows = async () => {
    await guarded($("#workflows"), async () => {
      const found = await get("/api/v1/workflows");
      ownWorkflows = new Set(found.filter((w) => w.scope === "org").map((w) => w.slug));
      show(
        "#workflow-list",
        table(
          [
            ["Workflow", (w) => w.name],
            ["Slug", (w) => h("code", {}, w.slug)],
            ["Scope", (w) => w.scope],
            ["Active", (w) => (w.is_active ? "yes" : "no")],
            ["Checks", (w) => w.checks.join(", ")],
            ["", (w) => button(`Edit ${w.slug}`, () => edit(w.slug))],
          ],
          found,
          { caption: "Workflows" },
        ),
      );
    });
  };

  const edit = (slug) =>
    guarded($("#workflows"), async () => {
      const workflow = await get(`/api/v1/workflows/${slug}`);
      $("#workflow-slug").value = workflow.slug;
      $("#workflow-content").value = workflow.content;
      $("#workflow-saved").textContent =
        workflow.scope === "built-in" ? "Built in: saving makes your organisation's own copy." : "";
      $("#workflow-content").focus();
    });

  onSubmit("#create-key", async (values, form) => {
    const body = filled(values);
    if (body.expires_in_days) body.expires_in_days = Number(body.expires_in_days);
    const made = await post("/api/auth/api-keys", body);
    form.reset();
    once("#new-key", `New ${made.role} key ${made.prefix}…`, made.key);
    await keys();
  });
  onSubmit("#set-provider-key", async ({ provider, api_key, base_url }, form) => {
    const body = filled({ api_key, base_url });
    await api("PUT", `/v1/settings/api-keys/${encodeURIComponent(provider.trim())}`, body);
    form.reset();
    await providerKeys();
  });
  onSubmit("#create-webhook", async (values, form) => {
    const body = filled({ url: values.url, description: values.description });
    const types = values.event_types.split(",").map((t) => t.trim()).filter(Boolean);
    if (types.length) body.event_types = types;
    const made = await post("/api/v1/webhooks", body);
    form.reset();
    once("#new-webhook", `Signing secret of ${made.url}`, made.secret);
    await webhooks();
  });
  onSubmit("#workflow-editor", async ({ slug, content }) => {
    const saved = ownWorkflows.has(slug)
      ? await api("PATCH", `/api/v1/workflows/${slug}`, { content })
      : await post("/api/v1/workflows", { slug, content });
    $("#workflow-saved").textContent = `Saved ${saved.slug}: checks ${saved.checks.join(", ")}.`;
    await workflows();
  });
  await Promise.all([account(), keys(), providerKeys(), webhooks(), workflows()]);
};

// -- start --------------------------------------------------------------------------------

async function start() {
  if (PAGE !== "sign-in" && PAGE !== "not-found") {
    if (!sessionStorage.getItem(KEY)) {
      location.replace("/console/sign-in");
      return;
    }
    $("#sign-out").addEventListener("click", () => {
      sessionStorage.removeItem(KEY);
      location.assign("/console/sign-in");
    });
    guarded($("main"), async () => {
      const me = await get("/api/auth/me");
      $("#who").textContent = `${me.organization} · ${me.environment} · ${me.role} · ${me.key_prefix}…`;
    });
  }
  await pages[PAGE]?.();
}

start();
