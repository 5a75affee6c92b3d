// Copy buttons: <button class="copy" data-copy="element-id">. No inline script (strict CSP).
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button.copy");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  try {
    await navigator.clipboard.writeText(source.textContent.trim());
    button.textContent = "Copied";
  } catch {
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    button.textContent = "Selected";
  }
  setTimeout(() => { button.textContent = "Copy"; }, 1500);
});

// Destructive forms: <form data-confirm="3 live tokens will stop working at once.">. With
// JavaScript the question is asked here and the form goes with confirmed=yes; without it the
// server answers the plain POST with a confirm page (web/pages.py: confirm).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
  if (form.querySelector('input[name="confirmed"]')) return;
  if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); return; }
  const field = document.createElement("input");
  field.type = "hidden"; field.name = "confirmed"; field.value = "yes";
  form.appendChild(field);
});

// A page that shows a secret once answers the POST that made it: <section data-location="/…">
// gives the browser the URL of what it shows, so a reload or a bookmark is a GET (which shows
// no secret), not the POST sent again.
const shown = document.querySelector("[data-location]");
if (shown && window.history.replaceState) {
  window.history.replaceState(null, "", shown.dataset.location);
}
