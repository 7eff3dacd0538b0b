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

  // The work order's signature pad: the customer signs with a finger on the engineer's phone.
  // Points are kept in the canvas's own coordinates (its width × height attributes), whatever
  // size the screen shows it at, and sent as JSON strokes in the form's "signature" field.
  function setupSignaturePad(pad) {
    var canvas = pad.querySelector("canvas");
    var form = pad.closest("form");
    var input = form && form.querySelector("input[name=signature]");
    if (!canvas || !input) return;
    var context = canvas.getContext("2d");
    var strokes = [];
    var current = null;
    context.lineWidth = 3;
    context.lineCap = "round";
    context.lineJoin = "round";
    context.strokeStyle = "#1b2430";

    function point(event) {
      var box = canvas.getBoundingClientRect();
      var x = ((event.clientX - box.left) / box.width) * canvas.width;
      var y = ((event.clientY - box.top) / box.height) * canvas.height;
      return [
        Math.round(Math.min(Math.max(x, 0), canvas.width) * 10) / 10,
        Math.round(Math.min(Math.max(y, 0), canvas.height) * 10) / 10,
      ];
    }
    function save() {
      input.value = strokes.length ? JSON.stringify(strokes) : "";
    }
    canvas.addEventListener("pointerdown", function (event) {
      event.preventDefault();
      canvas.setPointerCapture(event.pointerId);
      current = [point(event)];
      strokes.push(current);
      context.beginPath();
      context.moveTo(current[0][0], current[0][1]);
    });
    canvas.addEventListener("pointermove", function (event) {
      if (!current) return;
      var p = point(event);
      current.push(p);
      context.lineTo(p[0], p[1]);
      context.stroke();
    });
    function end() {
      if (!current) return;
      if (current.length === 1) current.push(current[0].slice());
      current = null;
      save();
    }
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    pad.querySelector("[data-signature-clear]").addEventListener("click", function () {
      strokes = [];
      current = null;
      context.clearRect(0, 0, canvas.width, canvas.height);
      save();
    });
  }

  // Charts: each [data-chart] element names a <script type="application/json"> holding a
  // plotly figure ({data, layout}); plotly.js itself is loaded by the page that has charts.
  function drawChart(element) {
    if (!window.Plotly) return;
    var source = document.getElementById(element.getAttribute("data-chart"));
    if (!source) return;
    var figure = JSON.parse(source.textContent);
    // No mode bar: its buttons need an injected stylesheet, which the CSP forbids. Drag to
    // zoom, double-click to zoom out.
    window.Plotly.newPlot(element, figure.data, figure.layout, {
      responsive: true,
      displayModeBar: false,
    });
  }

  function init(root) {
    root.querySelectorAll("[data-chart]").forEach(function (element) {
      if (once(element)) drawChart(element);
    });
    root.querySelectorAll("[data-signature-pad]").forEach(function (pad) {
      if (once(pad)) setupSignaturePad(pad);
    });
    root.querySelectorAll("[data-print]").forEach(function (button) {
      if (!once(button)) return;
      button.addEventListener("click", function () {
        window.print();
      });
    });
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
