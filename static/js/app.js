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
// A region that scrolls sideways (a wide table on a phone) must be reachable by keyboard (WCAG 2.1.1):
// give it a Tab stop and a name, from its table's caption or the nearest heading.
function markScrollRegions() {
  document.querySelectorAll(".table-wrap, table, pre").forEach((el) => {
    const style = getComputedStyle(el);
    const scrolls = ["auto", "scroll"].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1;
    if (scrolls && !el.hasAttribute("tabindex")) {
      el.setAttribute("tabindex", "0");
      el.dataset.scrollRegion = "1";
      if (!el.hasAttribute("aria-label") && el.tagName !== "TABLE") {
        const caption = el.querySelector("caption");
        let heading = el.previousElementSibling;
        while (heading && !/^H[1-6]$/.test(heading.tagName)) heading = heading.previousElementSibling;
        const name = (caption || heading || {}).textContent;
        el.setAttribute("role", "region");
        el.setAttribute("aria-label", (name ? name.trim() + " " : "") + "(scrolls sideways)");
      }
    } else if (!scrolls && el.dataset.scrollRegion) {
      el.removeAttribute("tabindex");
      delete el.dataset.scrollRegion;
    }
  });
}
document.addEventListener("DOMContentLoaded", markScrollRegions);
document.addEventListener("htmx:afterSettle", markScrollRegions);
window.addEventListener("resize", markScrollRegions);
// On a phone the navigation is one row that scrolls sideways: show the current page's link in it.
document.addEventListener("DOMContentLoaded", () => {
  const current = document.querySelector(".mainnav [aria-current=page]");
  const nav = current && current.closest(".mainnav");
  if (nav && nav.scrollWidth > nav.clientWidth) {
    const offset = current.getBoundingClientRect().left - nav.getBoundingClientRect().left;
    nav.scrollLeft += offset - (nav.clientWidth - current.offsetWidth) / 2;
  }
});
