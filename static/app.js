// Storyloom author pages: a few lines of plain JavaScript, no build, no CDN.
// Everything shown from the server arrives as escaped HTML fragments; no markup is built from user text.
"use strict";

const csrfToken = () => document.querySelector('meta[name="csrf-token"]').content;

// Drag and drop onto the upload form: dropped files go into the file input, then the form is sent.
function setupDropzone(form) {
  const input = form.querySelector('input[type="file"]');
  const status = form.querySelector(".drop-status");
  const show = () => { status.textContent = input.files.length ? `${input.files.length} file(s) chosen.` : ""; };
  input.addEventListener("change", show);
  ["dragenter", "dragover"].forEach((type) => form.addEventListener(type, (event) => {
    event.preventDefault(); form.classList.add("dragging");
  }));
  ["dragleave", "drop"].forEach((type) => form.addEventListener(type, () => form.classList.remove("dragging")));
  form.addEventListener("drop", (event) => {
    event.preventDefault();
    if (!event.dataTransfer.files.length) return;
    input.files = event.dataTransfer.files;
    show();
    form.requestSubmit();
  });
}

// Library picker: clicking a picture adds or removes its number; the text field is the truth.
function setupPicker(form) {
  const field = form.querySelector("#picked");
  const numbers = () => field.value.split(/[\s,]+/).filter((w) => /^\d+$/.test(w));
  const paint = () => {
    const picked = numbers();
    form.querySelectorAll("button.pick").forEach((button) => {
      const at = picked.indexOf(button.dataset.number);
      button.setAttribute("aria-pressed", String(at >= 0));
      let badge = button.querySelector(".order");
      if (at >= 0) {
        if (!badge) {
          badge = document.createElement("span");
          badge.className = "order";
          button.querySelector(".thumb").appendChild(badge);
        }
        badge.textContent = `#${at + 1}`;
      } else if (badge) {
        badge.remove();
      }
    });
  };
  form.querySelectorAll("button.pick").forEach((button) => button.addEventListener("click", () => {
    const picked = numbers();
    const at = picked.indexOf(button.dataset.number);
    if (at >= 0) picked.splice(at, 1); else picked.push(button.dataset.number);
    field.value = picked.join(" ");
    paint();
  }));
  field.addEventListener("input", paint);
  paint();
}

// Scene form: preview (dry run) and generate, then poll the job until it is done.
function setupScene(form) {
  const output = document.getElementById("scene-output");
  const buttons = form.querySelectorAll("button[data-action]");
  const values = () => ({
    prompt: form.prompt.value,
    characters: [...form.querySelectorAll('input[name="characters"]:checked')].map((box) => box.value),
    reference_images: form.reference_images.value,
    size: form.size.value,
    quality: form.quality.value,
    n: form.n.value,
  });
  const clearErrors = () => form.querySelectorAll("[data-error-for]").forEach((p) => {
    p.hidden = true; p.textContent = "";
    const input = form.querySelector(`#${p.dataset.errorFor}`);
    if (input) input.removeAttribute("aria-invalid");
  });
  const showError = (error) => {
    const name = (error.field || "").split(".")[0];
    const known = form.querySelector(`[data-error-for="${name}"]`);
    const target = known || form.querySelector('[data-error-for="form"]');
    target.textContent = error.message;
    target.hidden = false;
    const input = known && form.querySelector(`#${name}`);
    if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
  };
  const post = async (url, extraHeaders) => {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken(), ...extraHeaders },
      body: JSON.stringify(values()),
      credentials: "same-origin",
    });
    const data = await response.json().catch(() => ({ error: { message: "The server answered strangely. Try again." } }));
    if (response.status === 401) { window.location = "/ui/login?next=/ui/scene"; }
    return { ok: response.ok, data };
  };
  const busy = (on) => buttons.forEach((b) => { b.disabled = on; });
  const poll = async (url) => {
    for (let delay = 400; ; delay = Math.min(delay * 1.5, 2000)) {
      const response = await fetch(url, { credentials: "same-origin" });
      const data = await response.json();
      if (!response.ok) { showError(data.error); return; }
      output.innerHTML = data.html;
      if (data.done) return;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  };
  buttons.forEach((button) => button.addEventListener("click", async () => {
    clearErrors();
    busy(true);
    try {
      if (button.dataset.action === "preview") {
        const { ok, data } = await post("/ui/api/preview", {});
        if (ok) output.innerHTML = data.html; else showError(data.error);
      } else {
        output.innerHTML = '<p class="progress" role="status"><span class="spinner" aria-hidden="true"></span>Sending…</p>';
        const key = (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : String(Date.now()) + Math.random();
        const { ok, data } = await post("/ui/api/generate", { "Idempotency-Key": key });
        if (!ok) { output.innerHTML = ""; showError(data.error); return; }
        await poll(data.status_url);
      }
    } catch (err) {
      showError({ message: "Could not reach the server. Check your connection and try again." });
    } finally {
      busy(false);
    }
  }));
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form[data-dropzone]").forEach(setupDropzone);
  document.querySelectorAll("form[data-picker]").forEach(setupPicker);
  document.querySelectorAll("form[data-scene]").forEach(setupScene);
});
