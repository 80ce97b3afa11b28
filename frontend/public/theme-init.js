// Apply the saved theme before first paint to avoid a flash. A file rather than an inline
// script, so the page's Content-Security-Policy can stay `script-src 'self'`.
try {
  var t = localStorage.getItem("ragql.theme");
  if (t) document.documentElement.dataset.theme = t;
} catch (e) {}
