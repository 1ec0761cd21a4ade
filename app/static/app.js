// The page talks only to the public API: /predict, /feedback, /monitoring, /models, /models/{name}/...,
// /models/compare.
"use strict";

const COLORS = ["#3558d4", "#d4533f", "#2f9e6e", "#a855c7", "#d49a1f", "#1f9bd4"];
const $ = (selector) => document.querySelector(selector);
const percent = (value, digits = 1) => `${(value * 100).toFixed(digits)}%`;
const number = (value) => value.toLocaleString("en-US");

let models = [];        // GET /models "models"
let currentImage = null; // the Blob last classified, reused when the model choice changes

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

async function getJSON(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(await explain(response));
  return response.json();
}

// Turn an API error into a sentence a person can act on.
async function explain(response) {
  let detail = "";
  try { detail = (await response.json()).detail; } catch { /* not JSON */ }
  if (Array.isArray(detail)) detail = detail.map((d) => d.msg).join("; ");
  const plain = {
    400: "The image could not be read: it looks empty, cut short or damaged.",
    404: "That model or version does not exist.",
    413: "That file is too large. Please choose a smaller image (the limit is 10 MB and 40 megapixels).",
    415: "That file is not an image the service understands. Use a PNG, JPEG, GIF, BMP or WebP image.",
    422: "The request was not understood.",
    503: "The model is still loading. Please try again in a moment.",
  }[response.status] || `The server answered with an error (${response.status}).`;
  return detail ? `${plain} (${detail})` : plain;
}

function showError(message) {
  const box = $("#error");
  box.textContent = message;
  box.hidden = !message;
}

// ---- classifying -------------------------------------------------------------------
async function classify(blob, label = "your image") {
  currentImage = blob;
  showError("");
  const preview = $("#preview");
  preview.src = URL.createObjectURL(blob);
  preview.alt = `Preview of ${label}`;
  preview.hidden = false;
  $("#dropzone-text").textContent = "Drop, paste or choose another image";
  const names = $("#all-models").checked ? models.filter((m) => m.served_version).map((m) => m.name)
                                         : [$("#model-select").value];
  const results = $("#results");
  results.replaceChildren(element("p", { class: "muted", text: "Classifying…" }));
  const answers = await Promise.all(names.map((name) => predict(blob, name)));
  results.replaceChildren();
  const failures = answers.filter((answer) => answer.error);
  if (failures.length) showError(failures[0].error);
  for (const answer of answers.filter((a) => !a.error)) results.append(resultCard(answer));
}

async function predict(blob, model) {
  const form = new FormData();
  form.append("file", blob, blob.name || "image");
  try {
    const response = await fetch(`/predict?model=${encodeURIComponent(model)}&top_k=5`, { method: "POST", body: form });
    if (!response.ok) return { error: await explain(response) };
    return response.json();
  } catch {
    return { error: "The service could not be reached. Is it running?" };
  }
}

// in_distribution false: the novelty score says the image looks like none of the ten classes. The
// classes are still shown, greyed, since the probabilities keep their meaning among the ten.
function resultCard(prediction) {
  const unknown = prediction.in_distribution === false;
  const card = element("div", { class: unknown ? "result unknown" : "result", "data-model": prediction.model });
  card.append(element("h3", { text: `${prediction.model} v${prediction.version}` }));
  if (unknown) {
    card.append(element("p", { class: "ood-warning", role: "status",
      text: "This does not look like any of the ten classes." }));
  }
  card.append(element("p", { class: "verdict", text: `${prediction.class_name} · ${percent(prediction.probability)}` }));
  for (const entry of prediction.top_k) {
    const fill = element("div", { class: "fill" });
    fill.style.width = percent(entry.probability, 2);
    card.append(element("div", { class: "bar" },
      element("span", { text: entry.name }),
      element("div", { class: "track", role: "meter", "aria-valuenow": entry.probability.toFixed(3),
                       "aria-valuemin": "0", "aria-valuemax": "1", "aria-label": entry.name }, fill),
      element("span", { class: "value", text: percent(entry.probability) })));
  }
  card.append(feedbackForm(prediction));
  return card;
}

// "Wrong? pick the right class": the answer's prediction_id and the true class go to POST /feedback,
// which turns into the live accuracy of GET /monitoring.
function feedbackForm(prediction) {
  const form = element("form", { class: "feedback" });
  const id = `feedback-${prediction.prediction_id}`;
  const select = element("select", { id, name: "label" });
  select.append(element("option", { value: "", text: "Wrong? pick the right class" }));
  for (const name of Object.keys(prediction.probabilities)) {
    if (name !== prediction.class_name) select.append(element("option", { value: name, text: name }));
  }
  const status = element("span", { class: "muted", role: "status" });
  form.append(element("label", { for: id, class: "visually-hidden", text: "The right class" }), select,
              element("button", { type: "submit", text: "Send" }), status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!select.value) { status.textContent = "Choose the class the image really shows."; return; }
    const response = await fetch("/feedback", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ prediction_id: prediction.prediction_id, label: select.value }),
    });
    status.textContent = response.ok ? `Thanks: recorded as ${select.value}.` : await explain(response);
  });
  return form;
}

function setUpInput() {
  const zone = $("#dropzone");
  const input = $("#file-input");
  input.addEventListener("change", () => input.files[0] && classify(input.files[0], input.files[0].name));
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); input.click(); }
  });
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (event) => { event.preventDefault(); zone.classList.add("dragging"); });
  }
  for (const type of ["dragleave", "drop"]) {
    zone.addEventListener(type, () => zone.classList.remove("dragging"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    const file = event.dataTransfer.files[0];
    if (file) classify(file, file.name);
  });
  document.addEventListener("paste", (event) => {
    const item = [...event.clipboardData.items].find((i) => i.kind === "file");
    if (item) classify(item.getAsFile(), "the pasted image");
  });
  const rerun = () => currentImage && classify(currentImage);
  $("#model-select").addEventListener("change", rerun);
  $("#all-models").addEventListener("change", rerun);
}

async function showSamples() {
  const samples = await getJSON("/static/samples/samples.json");
  const strip = $("#samples");
  for (const sample of samples) {
    const button = element("button", { type: "button", role: "listitem", "aria-pressed": "false",
      title: `Test image ${sample.test_index}: ${sample.class_name}`,
      "aria-label": `Classify test image ${sample.test_index} (a ${sample.class_name})` },
      element("img", { src: `/static/samples/${sample.file}`, alt: sample.class_name }));
    button.addEventListener("click", async () => {
      strip.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", "false"));
      button.setAttribute("aria-pressed", "true");
      const blob = await (await fetch(`/static/samples/${sample.file}`)).blob();
      classify(new File([blob], sample.file, { type: "image/png" }), `a ${sample.class_name}`);
    });
    strip.append(button);
  }
}

// ---- model cards -------------------------------------------------------------------
async function showCards(defaultModel) {
  const container = $("#model-cards");
  container.replaceChildren();
  for (const model of models.filter((m) => m.served_version)) {
    const card = $("#card-template").content.firstElementChild.cloneNode(true);
    card.dataset.model = model.name;
    card.querySelector("h3").textContent = `${model.name} v${model.served_version}${model.name === defaultModel ? " (default)" : ""}`;
    card.querySelector(".description").textContent = model.description || "";
    container.append(card);
    fillCard(card, model).catch((error) => card.append(element("p", { class: "error", text: error.message })));
  }
}

// The stored accuracy is that of the procedure the service runs, test-time augmentation included.
const TTA_NAMES = { hflip: "mirror", hflip_shift: "mirror + a 1-pixel shift", hflip_translate: "mirror + 1-pixel shifts" };

function ttaNote(metrics) {
  const name = TTA_NAMES[metrics.test_time_augmentation];
  if (!name) return "";
  const plain = metrics.test_accuracy_without_tta;
  return ` with ${name} TTA` + (plain === undefined ? "" : `; ${percent(plain, 2)} on single views`);
}

async function fillCard(card, model) {
  const base = `/models/${encodeURIComponent(model.name)}`;
  const [summary, metrics] = await Promise.all([getJSON(`${base}/summary`), getJSON(`${base}/metrics`)]);
  const facts = [
    ["Parameters", number(summary.total_params)],
    ["Test accuracy", percent(metrics.test_accuracy, 2) + ttaNote(metrics)],
    ["Epochs", metrics.epochs],
    ["Seconds per epoch", metrics.seconds_per_epoch.toFixed(1)],
    ["Training time", `${(metrics.training_seconds / 60).toFixed(1)} min`],
    ["Versions", model.versions.map(versionNote).join(", ")],
  ];
  for (const version of model.versions.filter((v) => v.held_back)) facts.push([`Held back: v${version.version}`, version.held_back]);
  if (model.policy_error) facts.push(["Serving policy", model.policy_error]);
  if (metrics.reference) facts.push(["Tutorial's result", `${percent(metrics.reference.test_accuracy, 2)} after ${metrics.reference.epochs} epochs`]);
  if (metrics.robustness) facts.push(["On re-encoded uploads", robustnessNote(metrics.robustness)]);
  if (metrics.corruption) facts.push(["On damaged photos", corruptionNote(metrics.corruption)]);
  if (metrics.probability_scores) facts.push(["Calibration", calibrationNote(metrics)]);
  const served = model.versions.find((v) => v.version === model.served_version);
  if (served?.backend) facts.push(["Runtime", runtimeNote(served, metrics)]);
  card.querySelector(".facts").append(...facts.flatMap(([k, v]) => [element("dt", { text: k }), element("dd", { text: String(v) })]));
  const table = card.querySelector(".layers");
  table.append(element("tr", {}, ...["Layer", "Type", "Output shape", "Params"].map((h) => element("th", { text: h }))));
  for (const row of summary.layers) {
    table.append(element("tr", {}, element("td", { text: row.name }), element("td", { text: row.type }),
      element("td", { text: `(${row.output_shape.map((d) => d ?? "None").join(", ")})` }), element("td", { text: number(row.params) })));
  }
  const perClass = card.querySelector(".per-class");
  for (const [name, accuracy] of Object.entries(metrics.per_class_accuracy)) {
    const fill = element("div", { class: "fill" });
    fill.style.width = percent(accuracy, 2);
    perClass.append(element("div", { class: "bar" }, element("span", { text: name }),
      element("div", { class: "track" }, fill), element("span", { class: "value", text: percent(accuracy) })));
  }
  card.querySelector(".curves").src = `${base}/plots/curves.png?version=${model.served_version}`;
  card.querySelector(".confusion").src = `${base}/plots/confusion.png?version=${model.served_version}`;
  const reliability = card.querySelector(".reliability");
  if (metrics.probability_scores) reliability.src = `${base}/plots/calibration.png?version=${model.served_version}`;
  else reliability.closest("details").remove();  // Versions of format 1 have no reliability diagram.
}

// The int8 model is held to TensorFlow's accuracy (within 0.1 point): show both.
function runtimeNote(version, metrics) {
  const int8 = version.int8_accuracy;
  if (!int8) return version.backend;
  const pair = (key, label) => `${label} ${percent(int8[key], 2)} (TensorFlow ${percent(metrics.robustness?.[key] ?? metrics.test_accuracy, 2)})`;
  let text = `${version.backend}: ${pair("lossless", "lossless")}, ${pair("jpeg_q75", "JPEG q75")}`;
  if (int8.corruption_mean != null && metrics.corruption) {
    text += `, damaged photos ${percent(int8.corruption_mean, 2)} (TensorFlow ${percent(metrics.corruption.mean_accuracy, 2)})`;
  }
  return text;
}

// "v3 available (stable, canary)": state and labels; the served one says so.
function versionNote(version) {
  const labels = version.labels.length ? ` (${version.labels.join(", ")})` : "";
  return `v${version.version} ${version.state}${labels}`;
}

const CONDITION_NAMES = { jpeg_q95: "JPEG q95", jpeg_q75: "JPEG q75", jpeg_q50: "JPEG q50", downscale_16px: "16 px upscaled" };

function robustnessNote(robustness) {
  return Object.entries(CONDITION_NAMES).filter(([key]) => key in robustness)
    .map(([key, label]) => `${label} ${percent(robustness[key], 1)}`).join(", ");
}

// The corruption benchmark: 18 kinds of everyday damage at 5 severities (training/corruptions.py).
function corruptionNote(report) {
  const seen = report.seen_in_training.length ? `; ${report.seen_in_training.length} kinds also used in training, unseen ones ${percent(report.unseen_mean_accuracy, 1)}` : "";
  return `mean ${percent(report.mean_accuracy, 1)} over ${Object.keys(report.by_corruption).length} kinds x 5 severities, ` +
    `severity 5 ${percent(report.by_severity["5"], 1)}, ECE ${report.ece.toFixed(3)}${seen}`;
}

// ECE: how far, on average, the stated probability is from how often the model is right.
function calibrationNote(metrics) {
  const scores = metrics.probability_scores;
  const calibration = metrics.calibration;
  let text = `ECE ${scores.ece.toFixed(3)}, mean confidence ${percent(scores.mean_confidence, 1)}`;
  if (calibration) text += ` (temperature ${calibration.temperature.toFixed(2)}; ECE ${calibration.before.ece.toFixed(3)} before)`;
  return text;
}

// ---- comparison --------------------------------------------------------------------
function setUpComparison() {
  const choices = $("#compare-choices");
  const served = models.filter((m) => m.served_version);
  const initial = served.filter((m) => ["model_1", "model_2"].includes(m.name));
  const checked = new Set((initial.length ? initial : served.slice(0, 2)).map((m) => m.name));
  for (const model of served) {
    const box = element("input", { type: "checkbox", value: model.name, id: `compare-${model.name}` });
    box.checked = checked.has(model.name);
    box.addEventListener("change", compare);
    choices.append(element("label", { for: box.id }, box, ` ${model.name}`));
  }
  compare();
}

async function compare() {
  const names = [...document.querySelectorAll("#compare-choices input:checked")].map((box) => box.value);
  const summary = $("#compare-summary");
  if (!names.length) { summary.textContent = "Pick at least one model."; return; }
  try {
    const result = await getJSON(`/models/compare?names=${names.map(encodeURIComponent).join(",")}`);
    summary.textContent = result.summary;
    compareTable(result.models);
    lineChart($("#chart-accuracy"), result.models, "val_accuracy", (v) => percent(v, 0));
    lineChart($("#chart-loss"), result.models, "loss", (v) => v.toFixed(2));
    showStatistics(result.statistics);
  } catch (error) {
    summary.textContent = error.message;
  }
}

function compareTable(rows) {
  const fields = [
    ["Parameters", (r) => number(r.params)],
    ["Epochs", (r) => r.epochs],
    ["Seconds per epoch", (r) => r.seconds_per_epoch.toFixed(1)],
    ["Final training loss", (r) => r.final_loss?.toFixed(3) ?? "–"],
    ["Final training accuracy", (r) => (r.final_accuracy == null ? "–" : percent(r.final_accuracy, 2))],
    ["Final validation loss", (r) => r.final_val_loss?.toFixed(3) ?? "–"],
    ["Final validation accuracy", (r) => (r.final_val_accuracy == null ? "–" : percent(r.final_val_accuracy, 2))],
    ["Test accuracy", (r) => percent(r.test_accuracy, 2)],
    ["Accuracy on JPEG q75", (r) => (r.robustness?.jpeg_q75 == null ? "–" : percent(r.robustness.jpeg_q75, 2))],
    ["Expected calibration error", (r) => r.ece?.toFixed(3) ?? "–"],
    ["Accuracy on damaged photos (mean)", (r) => (r.corruption == null ? "–" : percent(r.corruption.mean_accuracy, 2))],
    ["ECE on damaged photos", (r) => r.corruption?.ece.toFixed(3) ?? "–"],
  ];
  const table = $("#compare-table");
  table.replaceChildren(element("tr", {}, element("th", { text: "" }), ...rows.map((r) => element("th", { text: r.name }))));
  for (const [label, value] of fields) {
    table.append(element("tr", {}, element("th", { text: label }), ...rows.map((r) => element("td", { text: String(value(r)) }))));
  }
}

// Repeated runs: per model and budget, the spread over seeds and where the tutorial's figure falls.
function showStatistics(statistics) {
  const section = $("#statistics");
  section.hidden = !statistics;
  if (!statistics) return;
  $("#statistics-conclusion").textContent = statistics.conclusion;
  const table = $("#statistics-table");
  const headers = ["Model", "Epochs", "Seeds", "Mean", "SD (points)", "95% CI", "Tutorial's run"];
  table.replaceChildren(element("tr", {}, ...headers.map((h) => element("th", { text: h }))));
  const groups = [];
  for (const [name, byGroup] of Object.entries(statistics.models)) {
    for (const group of Object.values(byGroup)) {
      groups.push({ name, ...group });
      const tutorial = group.tutorial && group.tutorial.epochs === group.epochs
        ? `${percent(group.tutorial.test_accuracy, 2)} (${group.tutorial.position_vs_ci95} the CI)` : "–";
      const interval = group.ci95 ? `${percent(group.ci95[0], 2)} – ${percent(group.ci95[1], 2)}` : "–";
      table.append(element("tr", {}, ...[name, group.epochs, group.n, percent(group.mean, 2),
        (group.sd * 100).toFixed(2), interval, tutorial].map((v) => element("td", { text: String(v) }))));
    }
  }
  bandChart($("#chart-bands"), groups);
}

function bandChart(svg, groups) {
  const points = groups.flatMap((g) => g.curve);
  const chart = chartFrame(svg, points.map((p) => p.epoch), points.flatMap((p) => [p.mean - p.sd, p.mean + p.sd]),
    (v) => percent(v, 0), 120);
  if (!chart) return;
  const { x, y, add } = chart;
  groups.forEach((group, index) => {
    const color = COLORS[index % COLORS.length];
    const upper = group.curve.map((p) => `${x(p.epoch)},${y(p.mean + p.sd)}`);
    const lower = group.curve.map((p) => `${x(p.epoch)},${y(p.mean - p.sd)}`).reverse();
    add("polygon", { points: [...upper, ...lower].join(" "), fill: color, "fill-opacity": 0.18, stroke: "none" });
    add("polyline", { points: group.curve.map((p) => `${x(p.epoch)},${y(p.mean)}`).join(" "), fill: "none", stroke: color, "stroke-width": 2 });
    const last = group.curve[group.curve.length - 1];
    add("text", { x: x(last.epoch) + 6, y: y(last.mean) + 4, fill: color }, `${group.name} (${group.epochs} ep.)`);
  });
}

// An SVG chart's axes (no chart library needed): returns scales and a node helper, or null without data.
function chartFrame(svg, epochs, values, format, right = 90, ends = null) {
  const width = 420, height = 240, left = 44, top = 10, bottom = 28;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren();
  if (!epochs.length) return null;
  const maxEpoch = Math.max(...epochs);
  let low = Math.min(...values), high = Math.max(...values);
  if (high === low) { high += 0.5; low -= 0.5; }
  const x = (epoch) => left + ((epoch - 1) / Math.max(maxEpoch - 1, 1)) * (width - left - right);
  const y = (value) => top + (1 - (value - low) / (high - low)) * (height - top - bottom);
  const ns = "http://www.w3.org/2000/svg";
  const add = (tag, attributes, text) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
  };
  for (const value of [low, (low + high) / 2, high]) {
    add("line", { x1: left, x2: width - right, y1: y(value), y2: y(value), stroke: "#e3e6ee" });
    add("text", { x: 4, y: y(value) + 4 }, format(value));
  }
  const [first, last] = ends || ["epoch 1", `epoch ${maxEpoch}`];
  add("text", { x: left, y: height - 8 }, first);
  add("text", { x: width - right - 40, y: height - 8, "text-anchor": "end" }, last);
  return { x, y, add };
}

// Overlaid per-epoch curves, one per model.
function lineChart(svg, rows, key, format) {
  const series = rows.map((r) => r.history.filter((h) => h[key] != null).map((h) => [h.epoch, h[key]]));
  const points = series.flat();
  const chart = chartFrame(svg, points.map((p) => p[0]), points.map((p) => p[1]), format);
  if (!chart) return;
  const { x, y, add } = chart;
  series.forEach((line, index) => {
    const color = COLORS[index % COLORS.length];
    add("polyline", { points: line.map(([e, v]) => `${x(e)},${y(v)}`).join(" "), fill: "none", stroke: color, "stroke-width": 2 });
    const [lastEpoch, lastValue] = line[line.length - 1];
    add("text", { x: x(lastEpoch) + 6, y: y(lastValue) + 4, fill: color }, rows[index].name);
  });
}

// ---- live traffic (GET /monitoring) ------------------------------------------------
async function showMonitoring() {
  const box = $("#monitoring-versions");
  let report;
  try {
    report = await getJSON("/monitoring");
  } catch (error) {
    box.replaceChildren(element("p", { class: "muted", text: `Monitoring is unavailable. ${error.message}` }));
    return;
  }
  if (!report.versions.length) {
    box.replaceChildren(element("p", { class: "muted", text: "No predictions logged in this window yet." }));
    return;
  }
  box.replaceChildren(...report.versions.map(monitoringCard));
}

function monitoringCard(version) {
  const card = element("article", { class: "card log-card", "data-log-model": version.model });
  const facts = element("dl", { class: "facts" });
  const fact = (term, value) => facts.append(element("dt", { text: term }), element("dd", { text: value }));
  fact("Predictions", number(version.predictions));
  fact("Mean top probability", `${percent(version.mean_top_probability)}` +
    (version.test_mean_top_probability != null ? ` (test set ${percent(version.test_mean_top_probability)})` : ""));
  if (version.drift) {
    const verdict = version.drift.drifted == null ? "too few predictions to tell"
      : version.drift.drifted ? "drifted" : "no drift";
    fact("Predicted classes vs test set", `PSI ${version.drift.population_stability_index.toFixed(3)}: ${verdict}`);
  }
  fact("None of the ten classes", version.unknown_rate == null ? "not scored (no novelty score)"
    : `${percent(version.unknown_rate)} of the answers`);
  fact("Live accuracy", version.live_accuracy == null ? "no feedback yet"
    : `${percent(version.live_accuracy)} of ${number(version.labelled)} labelled ` +
      `(95% CI ${percent(version.live_accuracy_interval[0])} to ${percent(version.live_accuracy_interval[1])})`);
  const volume = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  volume.setAttribute("role", "img");
  volume.setAttribute("aria-label", `Predictions over time, ${version.model} v${version.version}`);
  timeChart(volume, version.timeline, "predictions", (value) => (value < 10 ? value.toFixed(1) : number(Math.round(value))));
  card.append(element("h3", { text: `${version.model} v${version.version}` }), facts,
              element("figure", {}, element("figcaption", {
                text: "Predictions (line), unknown rate (red squares) and live accuracy (green dots) over the window" }), volume));
  return card;
}

// Volume per bucket (blue) and, on the volume's scale as a share of its top, the unknown rate (red,
// where answers were scored) and the live accuracy (green, where there is feedback).
function timeChart(svg, timeline, key, format) {
  const times = timeline.map((point) => new Date(point.start));
  const indexes = timeline.map((_, index) => index + 1);
  const ends = times.length ? [times[0].toLocaleTimeString(), times[times.length - 1].toLocaleTimeString()] : null;
  const chart = chartFrame(svg, indexes, timeline.map((point) => point[key]).concat([0]), format, 40, ends);
  if (!chart) return;
  const { x, y, add } = chart;
  const top = Math.max(...timeline.map((point) => point[key]), 1);
  add("polyline", { points: timeline.map((p, i) => `${x(i + 1)},${y(p[key])}`).join(" "), fill: "none",
                    stroke: COLORS[0], "stroke-width": 2 });
  timeline.forEach((point, index) => {
    if (point.unknown_rate != null) {
      add("rect", { x: x(index + 1) - 3, y: y(point.unknown_rate * top) - 3, width: 6, height: 6, fill: COLORS[1] },
          `none of the ten classes ${percent(point.unknown_rate)}`);
    }
    if (point.live_accuracy == null) return;
    add("circle", { cx: x(index + 1), cy: y(point.live_accuracy * top), r: 4, fill: COLORS[2] },
        `live accuracy ${percent(point.live_accuracy)}`);
  });
}

async function main() {
  setUpInput();
  showMonitoring();
  $("#monitoring-refresh").addEventListener("click", showMonitoring);
  showSamples().catch((error) => showError(error.message));
  try {
    const listing = await getJSON("/models");
    models = listing.models;
    const select = $("#model-select");
    for (const model of models.filter((m) => m.served_version)) {
      const option = element("option", { value: model.name,
        text: `${model.name} (${percent(model.test_accuracy ?? 0)} test accuracy)` });
      option.selected = model.name === listing.default_model;
      select.append(option);
    }
    showCards(listing.default_model);
    setUpComparison();
  } catch (error) {
    showError(error.message);
  }
}

main();
