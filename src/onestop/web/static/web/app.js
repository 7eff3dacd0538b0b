// OneStop: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";

  // Forms with a role select (data-role-select) show only the fields of that kind of account:
  // data-for-role="customer" for customer users, data-for-role="staff" for everyone else.
  function syncRoleFields(select) {
    var form = select.form;
    if (!form) return;
    var isCustomer = select.value === "customer";
    form.querySelectorAll("[data-for-role]").forEach(function (input) {
      var field = input.closest(".field");
      if (!field) return;
      var wanted = input.getAttribute("data-for-role") === "customer";
      field.hidden = wanted !== isCustomer;
    });
  }

  // Runs on page load and on every htmx swap; marks elements so each is set up once.
  function once(element) {
    if (element.hasAttribute("data-enhanced")) return false;
    element.setAttribute("data-enhanced", "");
    return true;
  }

  function init(root) {
    root.querySelectorAll("select[data-role-select]").forEach(function (select) {
      if (!once(select)) return;
      syncRoleFields(select);
      select.addEventListener("change", function () {
        syncRoleFields(select);
      });
    });
    root.querySelectorAll("[data-select-on-focus]").forEach(function (input) {
      if (!once(input)) return;
      input.addEventListener("focus", function () {
        input.select();
      });
    });
  }

  // Live filters leave empty fields out of the request, so the address bar stays readable.
  document.addEventListener("htmx:configRequest", function (event) {
    if (event.detail.verb !== "get") return;
    var params = event.detail.parameters;
    var empty = [];
    params.forEach(function (value, name) {
      if (value === "") empty.push(name);
    });
    empty.forEach(function (name) {
      params.delete(name);
    });
  });

  // After htmx changed the address, the language switch must come back to the new one.
  document.addEventListener("htmx:pushedIntoHistory", function () {
    document.querySelectorAll(".lang-switch input[name=next]").forEach(function (input) {
      input.value = window.location.pathname + window.location.search;
    });
  });

  // Close the open user menu on a click elsewhere or on Escape.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.user-menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details.user-menu[open]").forEach(function (menu) {
      menu.removeAttribute("open");
      menu.querySelector("summary").focus();
    });
    var toggle = document.getElementById("nav-toggle");
    if (toggle && toggle.checked) toggle.checked = false;
  });

  document.addEventListener("DOMContentLoaded", function () {
    init(document);
  });
  // Content swapped in by htmx gets the same behaviour.
  document.addEventListener("htmx:load", function (event) {
    init(event.target);
  });
})();
