// Nexus dashboard: the only script (the CSP allows no inline script).
// Copy buttons: <button data-copy="ID"> copies the value of the field ID.
document.addEventListener("click", function (ev) {
  var b = ev.target.closest("[data-copy]");
  if (!b) return;
  var field = document.getElementById(b.getAttribute("data-copy"));
  var status = document.getElementById("copy-status");
  if (!field) return;
  var done = function () { if (status) status.textContent = "Copied to the clipboard."; };
  var fallback = function () {
    field.select();
    try { document.execCommand("copy"); done(); } catch (e) { if (status) status.textContent = "Select the key and copy it by hand."; }
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(done, fallback);
  } else {
    fallback();
  }
});
