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

// Pick order in words ("1st"), so it never looks like a library number ("image 26").
const ordinal = (n) => {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? "th" : ({ 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th");
  return `${n}${suffix}`;
};

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
        badge.textContent = ordinal(at + 1);
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

// Poll a job's fragment into `output` until it is done (the scene form and the fix page).
async function pollJob(url, output, showError) {
  for (let delay = 400; ; delay = Math.min(delay * 1.5, 2000)) {
    const response = await fetch(url, { credentials: "same-origin" });
    const data = await response.json();
    if (!response.ok) { showError(data.error); return; }
    output.innerHTML = data.html;
    if (data.done) return;
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

// Fix an area: paint with a brush over the picture; the strokes become an OpenAI mask
// (opaque everywhere, transparent where painted) sent with the description of the fix.
function setupFix(form) {
  const canvas = form.querySelector(".paint canvas");
  const ctx = canvas.getContext("2d");
  const output = document.getElementById("fix-output");
  const errorFor = (name) => form.querySelector(`[data-error-for="${name}"]`) || form.querySelector('[data-error-for="form"]');
  const showError = (error) => {
    const target = errorFor((error.field || "").split(".")[0]);
    target.textContent = error.message;
    target.hidden = false;
  };
  const clearErrors = () => form.querySelectorAll("[data-error-for]").forEach((p) => { p.hidden = true; p.textContent = ""; });
  let painted = false;
  let last = null;
  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
  };
  const stroke = (from, to) => {
    ctx.strokeStyle = "rgb(220, 30, 60)";
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.lineWidth = Math.max(1, form.brush.value / 100 * canvas.width);
    ctx.beginPath();
    ctx.moveTo(...from);
    ctx.lineTo(...to);
    ctx.stroke();
    painted = true;
  };
  canvas.addEventListener("pointerdown", (event) => {
    clearErrors();
    canvas.setPointerCapture(event.pointerId);
    last = at(event);
    stroke(last, last);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!last) return;
    const next = at(event);
    stroke(last, next);
    last = next;
  });
  ["pointerup", "pointercancel"].forEach((type) => canvas.addEventListener(type, () => { last = null; }));
  const mask = () => {
    const out = document.createElement("canvas");
    out.width = canvas.width;
    out.height = canvas.height;
    const m = out.getContext("2d");
    m.fillStyle = "#000";
    m.fillRect(0, 0, out.width, out.height);
    m.globalCompositeOperation = "destination-out";
    m.drawImage(canvas, 0, 0);
    return out.toDataURL("image/png");
  };
  form.querySelector('[data-action="clear"]').addEventListener("click", () => {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    painted = false;
  });
  const button = form.querySelector('[data-action="redraw"]');
  button.addEventListener("click", async () => {
    clearErrors();
    if (!painted) { showError({ field: "mask", message: "Paint the area to redraw first." }); return; }
    button.disabled = true;
    try {
      output.innerHTML = '<p class="progress" role="status"><span class="spinner" aria-hidden="true"></span>Sending…</p>';
      const key = (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : String(Date.now()) + Math.random();
      const response = await fetch(`/ui/api/images/${form.dataset.number}/fix`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken(), "Idempotency-Key": key },
        body: JSON.stringify({
          prompt: form.prompt.value,
          characters: [...form.querySelectorAll('input[name="characters"]:checked')].map((box) => box.value),
          mask: mask(),
        }),
        credentials: "same-origin",
      });
      const data = await response.json().catch(() => ({ error: { message: "The server answered strangely. Try again." } }));
      if (!response.ok) { output.innerHTML = ""; showError(data.error); return; }
      await pollJob(data.status_url, output, showError);
    } catch (err) {
      showError({ message: "Could not reach the server. Check your connection and try again." });
    } finally {
      button.disabled = false;
    }
  });
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
  setupReferenceList(form);
  const poll = (url) => pollJob(url, output, showError);
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

// The scene's reference images: thumbnails in send order, reordered by drag or by the arrow
// buttons, removed with ✕. The number field is the truth; the server draws the thumbnails
// (and says whom each shows, so a newly added picture ticks its characters).
function setupReferenceList(form) {
  const field = form.querySelector("#reference_images");
  const list = form.querySelector("[data-ref-list]");
  const libraryLink = form.querySelector("[data-library-link]");
  if (!field || !list) return;
  const parse = () => field.value.split(/[\s,]+/).filter((w) => /^\d+$/.test(w));
  let shown = parse();
  const refresh = async (focus) => {
    const numbers = parse();
    const response = await fetch(`/ui/api/references?numbers=${encodeURIComponent(numbers.join(" "))}`,
      { credentials: "same-origin" });
    if (!response.ok) return;
    const data = await response.json();
    list.innerHTML = data.html;
    numbers.filter((n) => !shown.includes(n)).forEach((n) => (data.characters[n] || []).forEach((id) => {
      const box = form.querySelector(`input[name="characters"][value="${id}"]`);
      if (box) box.checked = true;
    }));
    shown = numbers;
    if (libraryLink) libraryLink.href = `/ui/library?picked=${encodeURIComponent(numbers.join(" "))}`;
    if (focus) {
      const target = list.querySelector(`li[data-number="${focus.number}"] button[${focus.button}]:not([disabled])`)
        || list.querySelector(`li[data-number="${focus.number}"] button:not([disabled])`)
        || field;
      target.focus();
    }
  };
  const setNumbers = (numbers, focus) => { field.value = numbers.join(", "); refresh(focus); };
  list.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    const item = event.target.closest("li[data-number]");
    if (!button || !item) return;
    const numbers = parse();
    const at = numbers.indexOf(item.dataset.number);
    if (at < 0) return;
    if (button.hasAttribute("data-remove")) {
      numbers.splice(at, 1);
      const next = numbers[Math.min(at, numbers.length - 1)];
      setNumbers(numbers, next === undefined ? null : { number: next, button: "data-remove" });
      return;
    }
    const to = at + Number(button.dataset.move);
    if (to < 0 || to >= numbers.length) return;
    numbers.splice(to, 0, numbers.splice(at, 1)[0]);
    setNumbers(numbers, { number: item.dataset.number, button: `data-move="${button.dataset.move}"` });
  });
  let dragged = null;
  list.addEventListener("dragstart", (event) => {
    const item = event.target.closest("li[data-number]");
    if (!item) return;
    dragged = item.dataset.number;
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", dragged);
    item.classList.add("dragging");
  });
  list.addEventListener("dragover", (event) => { if (dragged) event.preventDefault(); });
  list.addEventListener("drop", (event) => {
    const target = event.target.closest("li[data-number]");
    if (!dragged || !target) return;
    event.preventDefault();
    const numbers = parse().filter((n) => n !== dragged);
    const at = numbers.indexOf(target.dataset.number);
    const box = target.getBoundingClientRect();
    const after = event.clientX > box.left + box.width / 2;
    numbers.splice(after ? at + 1 : at, 0, dragged);
    dragged = null;
    setNumbers(numbers, null);
  });
  list.addEventListener("dragend", () => { dragged = null; });
  let timer = null;
  field.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => refresh(null), 350); });
}

// Click-to-enlarge: any [data-enlarge] button opens the picture whole in the page's dialog.
function setupLightbox() {
  const dialog = document.getElementById("lightbox");
  if (!dialog || !dialog.showModal) return;
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-enlarge]");
    if (!button) return;
    const img = dialog.querySelector("img");
    img.src = button.dataset.enlarge;
    img.alt = button.querySelector("img") ? button.querySelector("img").alt : "";
    dialog.querySelector(".lightbox-caption").textContent = button.dataset.caption || "";
    dialog.showModal();
  });
  dialog.addEventListener("click", (event) => { if (event.target === dialog) dialog.close(); });
}

// Book progress: while pages are drawing, poll the book's progress and update the bar, the
// counts, the failures and each card's status; once nothing is left, reload to show the pictures.
function setupBookProgress(section) {
  const bar = section.querySelector("progress");
  const text = section.querySelector("#progress-text");
  const failures = section.querySelector("#progress-failures");
  const poll = async () => {
    for (let delay = 500; ; delay = Math.min(delay * 1.3, 2000)) {
      let data;
      try {
        const response = await fetch(section.dataset.bookProgress, { credentials: "same-origin" });
        if (!response.ok) return;
        data = await response.json();
      } catch (err) {
        text.textContent = "Lost contact with the server; reload the page to see progress.";
        return;
      }
      const p = data.progress;
      bar.max = Math.max(p.pages, 1);
      bar.value = p.illustrated;
      const drawing = p.queued + p.running;
      text.textContent = `${p.illustrated} of ${p.pages} pages illustrated` +
        (drawing ? ` · ${drawing} drawing` : "") + (p.failed ? ` · ${p.failed} failed` : "");
      failures.replaceChildren(...data.failed.map((f) => {
        const item = document.createElement("li");
        item.textContent = `Page ${f.number}: ${f.message}`;  // textContent: never markup from data
        return item;
      }));
      Object.entries(data.statuses).forEach(([id, status]) => {
        const badge = document.querySelector(`[data-status-for="${id}"]`);
        if (badge) { badge.textContent = status; badge.className = `status status-${status}`; }
      });
      if (data.done) { window.location.reload(); return; }
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  };
  if (section.dataset.busy === "true") poll();
}

document.addEventListener("DOMContentLoaded", () => {
  setupLightbox();
  document.querySelectorAll("[data-book-progress]").forEach(setupBookProgress);
  document.querySelectorAll("form[data-dropzone]").forEach(setupDropzone);
  document.querySelectorAll("form[data-picker]").forEach(setupPicker);
  document.querySelectorAll("form[data-scene]").forEach(setupScene);
  document.querySelectorAll("form[data-fix]").forEach(setupFix);
});
