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
