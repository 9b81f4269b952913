// The site's behaviour, in plain JavaScript: the theme toggle and the search box.
// Both work from file:// (the search index is a script that sets window.SEARCH_INDEX).
(function () {
  "use strict";
  var root = document.body.getAttribute("data-root") || "";
  var html = document.documentElement;

  // ---- Theme: the reader's choice persists in localStorage; without one, the system decides.
  var toggle = document.getElementById("site-theme");
  function currentTheme() {
    var chosen = html.getAttribute("data-theme");
    if (chosen) return chosen;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }
  function showTheme() {
    var next = currentTheme() === "dark" ? "light" : "dark";
    toggle.setAttribute("aria-label", "Switch to the " + next + " theme");
    toggle.title = "Switch to the " + next + " theme";
  }
  if (toggle) {
    showTheme();
    toggle.addEventListener("click", function () {
      var next = currentTheme() === "dark" ? "light" : "dark";
      html.setAttribute("data-theme", next);
      try { localStorage.setItem("theme", next); } catch (e) { /* storage may be off */ }
      showTheme();
    });
  }

  // ---- Search over titles, headings, prose and identifiers.
  var input = document.getElementById("site-search");
  var list = document.getElementById("site-search-results");
  var index = window.SEARCH_INDEX || [];
  var selected = -1;
  if (!input || !list) return;

  var docs = index.map(function (d) {
    return {
      d: d,
      title: (d.t || "").toLowerCase(),
      head: (d.h || "").toLowerCase(),
      text: (d.x || "").toLowerCase(),
      ids: (d.i || "").toLowerCase().split(" "),
      idsRaw: (d.i || "").split(" ")
    };
  });

  function scoreTerm(doc, term) {
    var s = 0;
    if (doc.head === term) s += 30;
    else if (doc.head.indexOf(term) >= 0) s += 12;
    if (doc.title.indexOf(term) >= 0) s += doc.d.k === "page" ? 10 : 3;
    for (var i = 0; i < doc.ids.length; i++) {
      if (doc.ids[i] === term) { s += 8; break; }
      if (doc.ids[i].indexOf(term) === 0) { s += 3; break; }
    }
    if (doc.text.indexOf(term) >= 0) s += 2;
    return s;
  }

  function search(query) {
    var terms = query.toLowerCase().split(/\s+/).filter(Boolean);
    if (!terms.length) return [];
    var results = [];
    docs.forEach(function (doc) {
      var total = 0;
      for (var i = 0; i < terms.length; i++) {
        var s = scoreTerm(doc, terms[i]);
        if (!s) return;
        total += s;
      }
      results.push({ doc: doc, score: total });
    });
    results.sort(function (a, b) { return b.score - a.score; });
    var seen = {};
    return results.filter(function (r) {
      if (seen[r.doc.d.u]) return false;
      seen[r.doc.d.u] = true;
      return true;
    }).slice(0, 12);
  }

  function snippet(doc, terms) {
    var text = doc.d.x || "";
    var lower = text.toLowerCase();
    for (var i = 0; i < terms.length; i++) {
      var at = lower.indexOf(terms[i]);
      if (at >= 0) return (at > 40 ? "\u2026" : "") + text.slice(Math.max(0, at - 40), at + 120);
    }
    var ids = doc.idsRaw.filter(function (id) {
      return terms.some(function (t) { return id.toLowerCase().indexOf(t) >= 0; });
    });
    return ids.length ? ids.slice(0, 6).join(", ") : text.slice(0, 140);
  }

  function element(tag, className, text) {
    var el = document.createElement(tag);
    if (className) el.className = className;
    if (text) el.textContent = text;
    return el;
  }

  function render() {
    var query = input.value.trim();
    list.textContent = "";
    selected = -1;
    if (!query) { list.hidden = true; return; }
    var terms = query.toLowerCase().split(/\s+/).filter(Boolean);
    var results = search(query);
    if (!results.length) {
      list.appendChild(element("li", "r-none", "Nothing found for \u201c" + query + "\u201d"));
    }
    results.forEach(function (r) {
      var d = r.doc.d;
      var li = element("li");
      li.setAttribute("role", "option");
      var a = element("a");
      a.href = root + d.u;
      var head = element("span", "r-head");
      if (d.h && d.k !== "heading" && d.k !== "section" && d.k !== "prose") head.appendChild(element("code", "", d.h));
      else head.textContent = d.h || d.t;
      a.appendChild(head);
      if (d.h) a.appendChild(element("span", "r-page", d.t));
      var text = snippet(r.doc, terms);
      if (text) a.appendChild(element("span", "r-text", text));
      li.appendChild(a);
      list.appendChild(li);
    });
    list.hidden = false;
  }

  function select(step) {
    var items = list.querySelectorAll("li[role=option]");
    if (!items.length) return;
    if (selected >= 0) items[selected].removeAttribute("aria-selected");
    selected = (selected + step + items.length) % items.length;
    items[selected].setAttribute("aria-selected", "true");
    items[selected].scrollIntoView({ block: "nearest" });
  }

  input.addEventListener("input", render);
  input.addEventListener("focus", function () { if (input.value.trim()) render(); });
  input.addEventListener("keydown", function (e) {
    if (e.key === "ArrowDown") { e.preventDefault(); select(1); }
    else if (e.key === "ArrowUp") { e.preventDefault(); select(-1); }
    else if (e.key === "Enter") {
      var items = list.querySelectorAll("li[role=option] a");
      var target = items[selected >= 0 ? selected : 0];
      if (target) { e.preventDefault(); window.location.href = target.href; list.hidden = true; }
    } else if (e.key === "Escape") { list.hidden = true; input.blur(); }
  });
  document.addEventListener("click", function (e) {
    if (!list.contains(e.target) && e.target !== input) list.hidden = true;
  });
  document.addEventListener("keydown", function (e) {
    if (e.key === "/" && document.activeElement !== input && !/input|textarea/i.test(document.activeElement.tagName)) {
      e.preventDefault();
      input.focus();
    }
  });
})();
