/// The playground served at `GET /`: one static page, no build step and nothing fetched from elsewhere.
/// It lists the models, sends a streamed completion, and shows the diffusion passage condensing out of
/// noise step by step (the estimate sharpens as the step count rises) or the language model's tokens as
/// they arrive. A suffix box makes it an infill (the gap between the prompt and the suffix, `gap` tokens long). A label picker (the labels `/v1/models` lists for the diffusion model) steers the loop with the
/// bundle's classifier. Query parameters fill the form (`model`, `prompt`, `steps`, `guidance`, `label`, `suffix`, `gap`, `temperature`,
/// `max_tokens`, `seed`) and `run=1` starts it: a shareable link, and how `make e2e` drives the page.
enum Playground {
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Nebula playground</title>
        <style>
          body { font-family: system-ui, sans-serif; max-width: 820px; margin: 2em auto; padding: 0 1em; color: #1d2330; background: #f7f8fb; }
          h1 { font-size: 1.4em; margin-bottom: 0.2em; }
          p.lead { margin-top: 0; color: #556; }
          textarea { width: 100%; height: 5em; font: inherit; padding: 0.5em; box-sizing: border-box; }
          .row { display: flex; flex-wrap: wrap; gap: 1em; margin: 0.8em 0; align-items: end; }
          label { display: flex; flex-direction: column; font-size: 0.85em; color: #445; }
          input, select { font: inherit; padding: 0.25em; width: 9em; }
          select { width: 16em; }
          button { font: inherit; padding: 0.45em 1.4em; cursor: pointer; }
          #status { font-size: 0.85em; color: #556; min-height: 1.3em; }
          .choice { background: #fff; border: 1px solid #d8dce6; border-radius: 6px; padding: 0.9em; margin: 0.6em 0;
                    line-height: 1.5; white-space: pre-wrap; min-height: 1.5em; transition: filter 0.2s, opacity 0.2s; }
          .choice.done { border-color: #6a9; }
          .error { color: #b00; }
          .diffusion-only, .lm-only { }
        </style>
        </head>
        <body>
        <h1>Nebula playground</h1>
        <p class="lead">A latent diffusion language model on the CPU: watch a passage condense out of noise, or stream the language model's tokens.</p>
        <textarea id="prompt" placeholder="A passage to continue (empty: unconditional)">Once upon a time, there was a little girl named Lily.</textarea>
        <div class="row">
          <label>model <select id="model"></select></label>
          <label class="diffusion-only">steps <input id="steps" type="number" min="1" value="50"></label>
          <label class="diffusion-only">guidance <input id="guidance" type="number" step="0.5" min="0" value="2"></label>
          <label class="diffusion-only">label <select id="label"><option value="">none</option></select></label>
          <label class="diffusion-only">suffix (infill) <input id="suffix" type="text" placeholder="text after the gap"></label>
          <label class="diffusion-only">gap tokens <input id="gap" type="number" min="1" value="12"></label>
          <label class="lm-only">temperature <input id="temperature" type="number" step="0.1" min="0" max="2" value="0.8"></label>
          <label class="lm-only">max tokens <input id="max_tokens" type="number" min="1" value="64"></label>
          <label>seed <input id="seed" type="number" min="0" placeholder="random"></label>
          <button id="go">Generate</button>
        </div>
        <div id="status"></div>
        <div id="output"></div>
        <script>
        "use strict";
        const $ = (id) => document.getElementById(id);
        let models = [];
        // A link can fill the form and start it: /?model=…&prompt=…&steps=20&seed=5&run=1
        const params = new URLSearchParams(location.search);
        for (const id of ["prompt", "steps", "guidance", "suffix", "gap", "temperature", "max_tokens", "seed"]) {
          if (params.has(id)) $(id).value = params.get(id);
        }

        function isDiffusion() { return $("model").value.includes("diffusion"); }

        function showFields() {
          for (const el of document.querySelectorAll(".diffusion-only")) el.style.display = isDiffusion() ? "" : "none";
          for (const el of document.querySelectorAll(".lm-only")) el.style.display = isDiffusion() ? "none" : "";
        }

        async function loadModels() {
          try {
            const response = await fetch("/v1/models");
            const body = await response.json();
            models = body.data.map((m) => m.id);
            $("model").innerHTML = "";
            for (const id of models) {
              const option = document.createElement("option");
              option.value = id; option.textContent = id;
              $("model").appendChild(option);
            }
            for (const label of (body.data.find((m) => m.labels) || { labels: [] }).labels) {
              const option = document.createElement("option");
              option.value = label; option.textContent = label;
              $("label").appendChild(option);
            }
            if (params.has("label")) $("label").value = params.get("label");
            const diffusion = models.find((id) => id.includes("diffusion"));
            if (diffusion) $("model").value = diffusion;
            if (params.has("model") && models.includes(params.get("model"))) $("model").value = params.get("model");
            showFields();
            if (params.get("run") === "1") generate();
          } catch (error) {
            $("status").innerHTML = '<span class="error">cannot list the models: ' + error + "</span>";
          }
        }

        function choiceBox(index) {
          let box = $("choice-" + index);
          if (!box) {
            box = document.createElement("div");
            box.className = "choice"; box.id = "choice-" + index;
            $("output").appendChild(box);
          }
          return box;
        }

        function numberField(id) {
          const value = $(id).value.trim();
          return value === "" ? undefined : Number(value);
        }

        async function generate() {
          const diffusion = isDiffusion();
          const request = { model: $("model").value, prompt: $("prompt").value, stream: true };
          if (diffusion) {
            request.steps = numberField("steps"); request.guidance = numberField("guidance");
            if ($("label").value) request.label = $("label").value;
            if ($("suffix").value.trim()) { request.suffix = $("suffix").value; request.max_tokens = numberField("gap"); }
          }
          else { request.temperature = numberField("temperature"); request.max_tokens = numberField("max_tokens"); }
          const seed = numberField("seed");
          if (seed !== undefined) request.seed = seed;
          $("output").innerHTML = ""; $("output").removeAttribute("data-done");
          $("go").disabled = true;
          const started = performance.now();
          $("status").textContent = diffusion ? "denoising…" : "sampling…";
          try {
            const response = await fetch("/v1/completions", {
              method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(request)
            });
            if (!response.ok) {
              const body = await response.json().catch(() => ({}));
              throw new Error((body.error && body.error.message) || response.statusText);
            }
            const reader = response.body.getReader();
            const decoder = new TextDecoder();
            let buffer = "", tokens = 0;
            for (;;) {
              const { value, done } = await reader.read();
              if (done) break;
              buffer += decoder.decode(value, { stream: true });
              let end;
              while ((end = buffer.indexOf("\n\n")) >= 0) {
                const line = buffer.slice(0, end).trim();
                buffer = buffer.slice(end + 2);
                if (!line.startsWith("data:")) continue;
                const data = line.slice(5).trim();
                if (data === "[DONE]") continue;
                const event = JSON.parse(data);
                if (event.error) throw new Error(event.error.message);
                const seconds = ((performance.now() - started) / 1000).toFixed(1);
                for (const choice of event.choices) {
                  const box = choiceBox(choice.index);
                  if (choice.estimate !== undefined) {
                    // The passage condensing: sharper and darker as the loop nears t = 0.
                    const progress = choice.step / choice.steps;
                    box.textContent = choice.estimate;
                    box.style.filter = "blur(" + (2.5 * (1 - progress)).toFixed(2) + "px)";
                    box.style.opacity = (0.35 + 0.65 * progress).toFixed(2);
                    $("status").textContent = "step " + choice.step + " / " + choice.steps + " · " + seconds + " s";
                  } else if (choice.finish_reason) {
                    if (diffusion) box.textContent = choice.text; else box.textContent += choice.text;
                    box.style.filter = ""; box.style.opacity = 1;
                    box.classList.add("done");
                    $("status").textContent = (diffusion ? "done: " + (choice.steps || "") + " steps" : "done: " + tokens + " tokens (" + choice.finish_reason + ")") + " · " + seconds + " s";
                  } else {
                    box.textContent += choice.text;
                    tokens += 1;
                    $("status").textContent = tokens + " tokens · " + seconds + " s";
                  }
                }
              }
            }
            $("output").setAttribute("data-done", "1");
          } catch (error) {
            $("status").innerHTML = '<span class="error">' + String(error.message || error).replace(/</g, "&lt;") + "</span>";
            $("output").setAttribute("data-done", "error");
          } finally {
            $("go").disabled = false;
          }
        }

        $("model").addEventListener("change", showFields);
        $("go").addEventListener("click", generate);
        loadModels();
        </script>
        </body>
        </html>
        """#
}
