/* The sign-in page: say so when the server sent us back after a wrong token (/login?failed=1). */
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  if (new URLSearchParams(window.location.search).has("failed")) {
    document.getElementById("failed").hidden = false;
  }
});
