// The dashboard's few live parts. Everything works without this file; it only adds
// conveniences: copy buttons, and pages that update while they are open.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // <button data-copy="ID">: copies the text of the element with that id.
  for (const button of document.querySelectorAll("[data-copy]")) {
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source) return;
      try {
        await navigator.clipboard.writeText(source.value ?? source.textContent);
        button.textContent = "Copied";
      } catch {
        source.select?.();
        button.textContent = "Press Ctrl+C to copy";
      }
    });
  }

  // <p data-poll="/welcome/first-contact">: asks every few seconds whether the first contact
  // arrived, and then becomes a link to it. Text is set with textContent, never as markup.
  const waiting = document.querySelector("[data-poll]");
  if (waiting) {
    const poll = async () => {
      try {
        const response = await fetch(waiting.dataset.poll, { headers: { Accept: "application/json" } });
        if (response.ok) {
          const body = await response.json();
          if (body.contact) {
            const link = document.createElement("a");
            link.href = body.contact.url;
            link.textContent = `Your first contact arrived: ${body.contact.email}`;
            waiting.replaceChildren(link);
            return;
          }
        }
      } catch {
        // Offline for a moment: keep waiting.
      }
      setTimeout(poll, 3000);
    };
    setTimeout(poll, 1500);
  }
});

// The template editor's live preview: the form's current text goes to /templates/preview (the
// mailer renders it) a moment after the last keystroke; the result goes into a sandboxed iframe,
// and a Liquid error shows with its line and column.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form[data-preview]");
  if (!form) return;
  const frame = document.getElementById("preview-frame");
  const status = document.getElementById("preview-status");
  const subject = document.getElementById("preview-subject");
  let timer = null;
  let latest = 0;
  const render = async () => {
    const asked = ++latest;
    const body = new URLSearchParams(new FormData(form));
    try {
      const response = await fetch(form.dataset.preview, { method: "POST", body });
      if (asked !== latest) return;
      if (!response.ok) {
        status.textContent = "The preview is not available right now.";
        status.classList.add("bad");
        return;
      }
      const preview = await response.json();
      if (preview.error) {
        const where = preview.error.line ? ` (${preview.error.field}, line ${preview.error.line}, column ${preview.error.column})` : preview.error.field ? ` (${preview.error.field})` : "";
        status.textContent = `${preview.error.message}${where}`;
        status.classList.add("bad");
        return;
      }
      status.classList.remove("bad");
      status.textContent = `Shown as ${preview.data}.`;
      subject.textContent = preview.subject;
      frame.srcdoc = preview.html;
    } catch {
      status.textContent = "The preview is not available right now.";
    }
  };
  form.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(render, 300);
  });
  document.getElementById("preview_as")?.addEventListener("change", render);
  render();
});

// The condition builder: the value input fits the chosen field's type and test (a date picker
// for dates, a number for numbers, no value for "is set"), and says what a duration looks like.
// The form works the same without this; the server types the values either way.
document.addEventListener("DOMContentLoaded", () => {
  for (const builder of document.querySelectorAll("[data-field-types]")) {
    let types = {};
    try { types = JSON.parse(builder.dataset.fieldTypes); } catch { /* no hints */ }
    const fit = (row) => {
      const field = row.querySelector("[name=c_field]");
      const op = row.querySelector("[name=c_op]");
      const value = row.querySelector("[name=c_value]");
      if (!field || !op || !value) return;
      const type = types[field.value.trim()];
      const o = op.value;
      const hidden = o === "exists" || o === "not_exists";
      value.closest("div").hidden = hidden;
      field.closest("div").hidden = o === "has_tag" || o === "lacks_tag";
      let inputType = "text";
      let placeholder = "";
      if (o === "older_than" || o === "within") placeholder = "e.g. 7d, 12h, 30m";
      else if (o === "in") placeholder = "free, pro, team";
      else if (o === "has_tag" || o === "lacks_tag") placeholder = "a tag";
      else if (type === "date" && o !== "contains") inputType = "date";
      else if (type === "number" && o !== "contains") inputType = "number";
      else if (type === "boolean") placeholder = "true or false";
      if (value.type !== inputType) {
        // A date picker only holds YYYY-MM-DD; keep what was typed when it does not fit.
        const kept = value.value;
        value.type = inputType;
        if (value.value !== kept) value.type = "text";
      }
      value.placeholder = placeholder;
    };
    for (const row of builder.querySelectorAll(".condition")) {
      fit(row);
      row.addEventListener("input", () => fit(row));
      row.addEventListener("change", () => fit(row));
    }
  }
});

// Trigger, action and re-entry rows (data-switch): show only the inputs the row's first choice
// uses (data-for lists the kinds). Without this every input shows, and the server ignores the
// ones that do not apply.
document.addEventListener("DOMContentLoaded", () => {
  for (const row of document.querySelectorAll("[data-switch]")) {
    const kind = row.querySelector("select");
    const fit = () => {
      for (const part of row.querySelectorAll("[data-for]")) {
        part.hidden = !part.dataset.for.split(" ").includes(kind.value);
      }
    };
    kind.addEventListener("change", fit);
    fit();
  }
});
