// Render math offline with the vendored KaTeX; re-run on Material's instant navigation.
function snnRenderMath() {
  if (typeof renderMathInElement === "undefined") return;
  renderMathInElement(document.body, {
    delimiters: [
      { left: "$$", right: "$$", display: true },
      { left: "\\[", right: "\\]", display: true },
      { left: "$", right: "$", display: false },
      { left: "\\(", right: "\\)", display: false },
    ],
    ignoredClasses: ["highlight", "language-bibtex"],
    throwOnError: false,
  });
}
if (typeof document$ !== "undefined") { document$.subscribe(snnRenderMath); }
else { document.addEventListener("DOMContentLoaded", snnRenderMath); }
