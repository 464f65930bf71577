// Small behaviours that would otherwise need inline scripts (the CSP forbids those).
document.addEventListener("click", (event) => {
  const target = event.target.closest("[data-confirm]");
  if (target && !window.confirm(target.dataset.confirm)) {
    event.preventDefault();
    event.stopPropagation();
  }
});
// htmx: show server error text in the page instead of failing silently.
document.addEventListener("htmx:responseError", (event) => {
  const box = document.getElementById("htmx-error");
  if (box) {
    box.textContent = `Request failed (${event.detail.xhr.status}): ${event.detail.xhr.statusText}`;
    box.hidden = false;
  }
});
