/* The catalogue page of one loss (service/api/site.py): the formula through KaTeX, the curve panel
 * (GET /v1/losses/{name}/curve?format=vega-lite, drawn by vega-embed) and the playground
 * (POST /v1/losses/{name}). Plain JavaScript with no build step; everything it loads is same-origin.
 *
 * Hooks the browser test reads: .formula gets .rendered or .katex-error; #curve-plot's data-draws
 * counts finished draws; #playground-result's data-state is "ok", "problem" or "pending".
 */
(function () {
  "use strict";

  const dataElement = document.getElementById("loss-data");
  if (!dataElement) return;
  const loss = JSON.parse(dataElement.textContent);
  const lossUrl = "/v1/losses/" + encodeURIComponent(loss.name);
  const curveUrl = lossUrl + "/curve";

  // ------------------------------------------------------------------ formula

  function renderFormula() {
    const box = document.querySelector(".formula");
    const target = box.querySelector(".formula-rendered");
    const tex = box.querySelector(".tex-source").textContent;
    try {
      // throwOnError: a formula KaTeX cannot parse must be seen (and caught by the tests), not drawn in red
      katex.render(tex, target, { throwOnError: true, displayMode: true });
      box.classList.add("rendered");
    } catch (error) {
      box.classList.add("katex-error");
      target.classList.add("katex-error");
      target.textContent = "The formula could not be rendered (" + error.message + "); its TeX source is below.";
    }
  }

  // ------------------------------------------------------------------ parameter controls

  // The parameters a control can set: scalars. Arrays (weights, lengths) and axis shape the inputs.
  function isScalar(param) {
    return param.name !== "axis" && param.type.indexOf("[]") < 0;
  }

  const INTERVAL = /^in ([[(])\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*([\])])/;
  const BOUND = /^(>=?)\s*(-?[\d.]+)$/;

  function readConstraint(text) {
    const c = text || "";
    let m = INTERVAL.exec(c);
    if (m) return { min: +m[2], max: +m[3], minOpen: m[1] === "(", maxOpen: m[4] === ")" };
    m = BOUND.exec(c);
    if (m) return { min: +m[2], minOpen: m[1] === ">" };
    m = /^one of (.+)$/.exec(c);
    if (m) return { options: m[1].split(",").map((s) => s.trim()) };
    return {};
  }

  /* One labelled control for ``param``; returns {element, read} where read() gives the value to send,
   * or undefined for "leave it out" (an empty number field). */
  function makeControl(param, prefix, initial) {
    const label = document.createElement("label");
    label.className = "param";
    label.dataset.param = param.name;
    const caption = document.createElement("span");
    caption.textContent = param.name;
    caption.title = param.description + (param.constraints ? " (" + param.constraints + ")" : "");
    label.appendChild(caption);
    const value = initial === undefined ? param.default : initial;
    const bounds = readConstraint(param.constraints);
    const integer = param.type.split(" ")[0] === "integer";
    const nullable = param.type.indexOf("null") >= 0;
    let input;
    let read;
    if (param.type === "boolean") {
      input = document.createElement("input");
      input.type = "checkbox";
      input.checked = Boolean(value);
      read = () => input.checked;
    } else if (bounds.options) {
      input = document.createElement("select");
      for (const option of bounds.options) input.add(new Option(option, option, false, option === value));
      read = () => input.value;
    } else if (!integer && bounds.max !== undefined) {
      // a bounded float: a slider, kept strictly inside an open interval
      const step = (bounds.max - bounds.min) / 100;
      input = document.createElement("input");
      input.type = "range";
      input.min = String(bounds.minOpen ? bounds.min + step : bounds.min);
      input.max = String(bounds.maxOpen ? bounds.max - step : bounds.max);
      input.step = String(step);
      input.value = String(value);
      const shown = document.createElement("output");
      shown.textContent = String(value);
      input.addEventListener("input", () => { shown.textContent = input.value; });
      label.appendChild(input);
      label.appendChild(shown);
      input.dataset.param = param.name;
      return { element: label, input: input, read: () => Number(input.value) };
    } else {
      input = document.createElement("input");
      input.type = "number";
      input.step = integer ? "1" : "any";
      if (bounds.min !== undefined) input.min = String(bounds.min);
      if (bounds.max !== undefined) input.max = String(bounds.max);
      input.value = value === null || value === undefined ? "" : String(value);
      if (nullable) input.placeholder = "null";
      read = () => (input.value.trim() === "" ? (nullable ? null : undefined) : Number(input.value));
    }
    input.name = prefix + param.name;
    input.dataset.param = param.name;
    label.appendChild(input);
    return { element: label, input: input, read: read };
  }

  // ------------------------------------------------------------------ curve panel

  const plot = document.getElementById("curve-plot");
  const curveProblem = document.getElementById("curve-problem");
  const curveControls = [];
  const overlays = new Set();
  let curveRequest = 0;
  let currentView = null;
  let currentKind = null;

  function curveQuery(extra) {
    const query = new URLSearchParams(extra);
    for (const control of curveControls) {
      const value = control.read();
      if (value !== undefined && value !== null && value !== control.param.default) {
        query.set(control.param.name, String(value));
      }
    }
    if (overlays.size) query.set("with", Array.from(overlays).join(","));
    return query;
  }

  async function problemText(response) {
    try {
      const body = await response.json();
      return body.detail || body.error || JSON.stringify(body);
    } catch (error) {
      return response.status + " " + response.statusText;
    }
  }

  function showCurveProblem(text) {
    curveProblem.hidden = !text;
    curveProblem.textContent = text || "";
  }

  /* The axis of the curve with the current parameters (a 2-point JSON curve: the kind can depend on a
   * parameter, e.g. from_logits), then the overlay picker for that kind. */
  async function refreshAxis(token) {
    const query = curveQuery({ points: "2" });
    query.delete("with");
    const response = await fetch(curveUrl + "?" + query);
    if (token !== curveRequest || !response.ok) return;
    const body = await response.json();
    const axis = body.axis;
    document.getElementById("curve-axis").textContent = "x: " + axis.label + ". " + axis.fixed + ".";
    if (axis.kind !== currentKind) {
      currentKind = axis.kind;
      for (const name of Array.from(overlays)) {
        if ((loss.overlay_kinds || {})[name] !== currentKind) overlays.delete(name);
      }
      buildOverlayPicker();
    }
  }

  function buildOverlayPicker() {
    const box = document.querySelector("#curve-overlay .choices");
    box.textContent = "";
    const kinds = loss.overlay_kinds || {};
    const names = Object.keys(kinds).filter((name) => name !== loss.name && kinds[name] === currentKind);
    if (!names.length) {
      box.textContent = "No other loss is plotted on this axis.";
      return;
    }
    for (const name of names) {
      const label = document.createElement("label");
      const box2 = document.createElement("input");
      box2.type = "checkbox";
      box2.value = name;
      box2.name = "with";
      box2.checked = overlays.has(name);
      box2.addEventListener("change", () => {
        if (box2.checked) overlays.add(name); else overlays.delete(name);
        drawCurve();
      });
      label.appendChild(box2);
      label.appendChild(document.createTextNode(" " + name));
      box.appendChild(label);
    }
  }

  async function drawCurve(withAxis) {
    const token = ++curveRequest;
    try {
      if (withAxis) await refreshAxis(token);
      const response = await fetch(curveUrl + "?" + curveQuery({ format: "vega-lite" }));
      if (token !== curveRequest) return; // a newer draw is on its way
      if (!response.ok) {
        showCurveProblem(await problemText(response));
        return;
      }
      const spec = await response.json();
      if (token !== curveRequest) return;
      // The page's Content-Security-Policy allows no eval and no inline <style>: ast: true evaluates Vega's
      // expressions with the interpreter bundled in vega-embed (not new Function); defaultStyle: false and the
      // tooltip's disableDefaultStyle keep vega-embed and vega-tooltip from injecting <style> elements
      // (catalogue.css carries the tooltip's rules instead).
      const result = await vegaEmbed(plot, spec, {
        renderer: "svg", actions: false, ast: true, defaultStyle: false,
        tooltip: { disableDefaultStyle: true },
      });
      if (currentView && currentView !== result.view) currentView.finalize();
      currentView = result.view;
      showCurveProblem("");
      plot.dataset.draws = String(Number(plot.dataset.draws || 0) + 1);
    } catch (error) {
      showCurveProblem("The curve could not be drawn: " + error.message);
    }
  }

  function setUpCurve() {
    const form = document.getElementById("curve-controls");
    for (const param of loss.params.filter(isScalar)) {
      const control = makeControl(param, "curve-", undefined);
      control.param = param;
      curveControls.push(control);
      form.appendChild(control.element);
      const axisMayChange = param.type === "boolean" || readConstraint(param.constraints).options;
      control.input.addEventListener("input", () => drawCurve(Boolean(axisMayChange)));
      if (control.input.type === "checkbox" || control.input.tagName === "SELECT") {
        control.input.addEventListener("change", () => drawCurve(Boolean(axisMayChange)));
      }
    }
    if (!curveControls.length) form.textContent = "This loss has no scalar parameter to vary.";
    drawCurve(true);
  }

  // ------------------------------------------------------------------ playground

  const playground = document.getElementById("playground-form");
  const result = document.getElementById("playground-result");
  const lossOutput = document.getElementById("playground-loss");
  const playgroundProblem = document.getElementById("playground-problem");
  const playgroundControls = [];
  const example = (loss.examples && loss.examples[0] && loss.examples[0].request) || {};
  let timer = null;
  let playRequest = 0;

  function field(name) {
    return playground.elements.namedItem(name);
  }

  /* The request the form describes; throws an Error naming the field that is not valid JSON. */
  function buildBody() {
    const body = {};
    for (const name of ["y_true", "y_pred", "sample_weight"]) {
      const text = field(name).value.trim();
      if (!text) continue;
      try {
        body[name] = JSON.parse(text);
      } catch (error) {
        throw new Error(name + " is not valid JSON: " + error.message);
      }
    }
    const params = {};
    for (const control of playgroundControls) {
      const value = control.read();
      if (value !== undefined) params[control.param.name] = value;
    }
    if (Object.keys(params).length) body.params = params;
    body.reduction = field("reduction").value;
    for (const key of Object.keys(example)) {
      // what the example sets and the form does not show (dtype, outputs) travels as it is
      if (!(key in body) && ["y_true", "y_pred", "sample_weight", "params", "reduction"].indexOf(key) < 0) {
        body[key] = example[key];
      }
    }
    body.outputs = ["loss", "per_sample", "gradient"];
    return body;
  }

  function arrayControl(param, initial) {
    const label = document.createElement("label");
    label.className = "param";
    label.dataset.param = param.name;
    label.appendChild(document.createTextNode(param.name + " (JSON) "));
    const input = document.createElement("input");
    input.type = "text";
    input.name = "param-" + param.name;
    input.dataset.param = param.name;
    input.value = initial === undefined || initial === null ? "" : JSON.stringify(initial);
    label.appendChild(input);
    return {
      element: label, input: input, param: param,
      read: () => {
        const text = input.value.trim();
        if (!text) return undefined;
        try { return JSON.parse(text); } catch (error) {
          throw new Error("params." + param.name + " is not valid JSON: " + error.message);
        }
      },
    };
  }

  function showResult(state, text) {
    result.dataset.state = state;
    result.textContent = text;
  }

  async function recompute() {
    const token = ++playRequest;
    let body;
    try {
      body = buildBody();
    } catch (error) {
      playgroundProblem.hidden = false;
      playgroundProblem.textContent = error.message;
      showResult("problem", "");
      return;
    }
    result.dataset.state = "pending";
    const response = await fetch(lossUrl, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    if (token !== playRequest) return;
    if (response.ok) {
      playgroundProblem.hidden = true;
      lossOutput.textContent = JSON.stringify(answer.loss);
      showResult("ok", JSON.stringify(answer, null, 2));
    } else {
      playgroundProblem.hidden = false;
      playgroundProblem.textContent = answer.detail || (response.status + " " + response.statusText);
      lossOutput.textContent = "";
      showResult("problem", JSON.stringify(answer, null, 2));
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(recompute, 250); // debounced: one request when the typing pauses
  }

  // ------------------------------------------------------------------ copy as curl / Python / JavaScript

  function shellQuote(text) {
    return "'" + text.replace(/'/g, "'\\''") + "'";
  }

  function snippet(kind) {
    const url = window.location.origin + lossUrl;
    const json = JSON.stringify(buildBody());
    if (kind === "curl") {
      return "curl -s -X POST " + shellQuote(url) + " -H 'Content-Type: application/json' -d " + shellQuote(json);
    }
    if (kind === "python") {
      return [
        "import json",
        "import urllib.request",
        "",
        "body = json.loads(" + JSON.stringify(json) + ")",
        "request = urllib.request.Request(" + JSON.stringify(url) + ", data=json.dumps(body).encode(),",
        "                                 headers={\"Content-Type\": \"application/json\"})",
        "with urllib.request.urlopen(request) as response:",
        "    print(json.load(response))",
      ].join("\n");
    }
    return [
      "const response = await fetch(" + JSON.stringify(url) + ", {",
      "  method: \"POST\",",
      "  headers: { \"Content-Type\": \"application/json\" },",
      "  body: JSON.stringify(" + json + "),",
      "});",
      "console.log(await response.json());",
    ].join("\n");
  }

  async function copy(kind) {
    const out = document.getElementById("copy-output");
    try {
      out.textContent = snippet(kind);
    } catch (error) {
      out.textContent = error.message;
      return;
    }
    out.dataset.kind = kind;
    try {
      await navigator.clipboard.writeText(out.textContent);
    } catch (error) {
      // no clipboard (an insecure origin, a headless browser): the text stays in the <pre> to copy by hand
    }
  }

  function setUpPlayground() {
    const params = example.params || {};
    for (const name of ["y_true", "y_pred", "sample_weight"]) {
      if (example[name] !== undefined) field(name).value = JSON.stringify(example[name]);
    }
    const reduction = field("reduction");
    for (const name of loss.reductions) {
      reduction.add(new Option(name, name, false, name === (example.reduction || loss.default_reduction)));
    }
    const box = document.getElementById("playground-params");
    for (const param of loss.params) {
      const control = isScalar(param) ? makeControl(param, "param-", params[param.name]) : arrayControl(param, params[param.name]);
      control.param = param;
      playgroundControls.push(control);
      box.appendChild(control.element);
    }
    playground.addEventListener("input", schedule);
    playground.addEventListener("change", schedule);
    for (const button of document.querySelectorAll("button[data-copy]")) {
      button.addEventListener("click", () => copy(button.dataset.copy));
    }
    recompute();
  }

  renderFormula();
  setUpCurve();
  setUpPlayground();
})();
