// The site's behaviour, in plain JavaScript: the theme toggle, the notation links, the copy
// buttons and the search box. All of it works from file:// (the search index is a script that sets
// window.SEARCH_INDEX) and needs no network.
(function () {
  "use strict";
  var root = document.body.getAttribute("data-root") || "";
  var html = document.documentElement;

  // ---- Notation: a symbol of the page's notation table (marked by KaTeX for the build: data-sym,
  // with the names it maps to in data-vars) and a name of the code (data-var, with its symbols in
  // data-syms) light each other up on hover and on keyboard focus.
  var bySym = {}, byVar = {};
  function add(map, key, el) { (map[key] = map[key] || []).push(el); }
  function words(text) { return (text || "").split(" ").filter(Boolean); }
  Array.prototype.forEach.call(document.querySelectorAll("[data-sym]"), function (el) { add(bySym, el.getAttribute("data-sym"), el); });
  Array.prototype.forEach.call(document.querySelectorAll("[data-var]"), function (el) { add(byVar, el.getAttribute("data-var"), el); });
  var lit = [], source = null;

  // Tab stops: every symbol and name of a notation table, the first occurrence of each symbol in
  // each block of prose, and the first of each name in the page's code. The others are reached by
  // pointer; focusing one lights all of them up.
  function tabStops(elements, key) {
    var seen = {};
    Array.prototype.forEach.call(elements, function (el) {
      var first = !seen[el.getAttribute(key)];
      seen[el.getAttribute(key)] = true;
      el.tabIndex = first || el.closest("table") ? 0 : -1;
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll(".prose"), function (block) {
    tabStops(block.querySelectorAll("[data-sym]"), "data-sym");
  });
  tabStops(document.querySelectorAll(".code [data-var]"), "data-var");
  Array.prototype.forEach.call(document.querySelectorAll("table code[data-var]"), function (el) { el.tabIndex = 0; });

  function related(el) {
    var found = [];
    if (el.hasAttribute("data-sym")) {
      found = found.concat(bySym[el.getAttribute("data-sym")] || []);
      words(el.getAttribute("data-vars")).forEach(function (v) { found = found.concat(byVar[v] || []); });
    } else {
      found = found.concat(byVar[el.getAttribute("data-var")] || []);
      words(el.getAttribute("data-syms")).forEach(function (s) { found = found.concat(bySym[s] || []); });
    }
    return found;
  }
  function clear() {
    lit.forEach(function (el) { el.classList.remove("n-hl", "n-src"); });
    lit = [];
    source = null;
  }
  function light(el) {
    if (el === source) return;
    clear();
    source = el;
    lit = related(el);
    lit.forEach(function (other) { other.classList.add("n-hl"); });
    el.classList.add("n-hl", "n-src");
    if (lit.indexOf(el) < 0) lit.push(el);
  }
  function notationTarget(node) {
    return node && node.closest ? node.closest("[data-sym], [data-var]") : null;
  }
  document.addEventListener("mouseover", function (e) {
    var el = notationTarget(e.target);
    if (el) light(el);
  });
  document.addEventListener("mouseout", function (e) {
    var el = notationTarget(e.target);
    if (el && el === source && !el.contains(e.relatedTarget) && document.activeElement !== el) clear();
  });
  document.addEventListener("focusin", function (e) {
    var el = notationTarget(e.target);
    if (el && el === e.target) light(el);
  });
  document.addEventListener("focusout", function (e) {
    if (e.target === source) clear();
  });

  // ---- Copy buttons: a code block of the prose copies its text; a section of the code column
  // (or a test file) copies its source lines, without the line numbers (they are CSS, not text).
  function codeText(button) {
    var holder = button.closest(".codeblock, .code, .source");
    if (!holder) return "";
    var code = holder.querySelector("pre code");
    if (!code) return "";
    if (holder.classList.contains("codeblock")) return code.textContent + "\n";
    var lines = code.querySelectorAll(".line:not(.edge)");
    return Array.prototype.map.call(lines, function (line) { return line.textContent; }).join("");
  }
  function copyWithSelection(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }
  function copied(button, ok) {
    var label = button.getAttribute("aria-label");
    button.classList.add(ok ? "copied" : "copy-failed");
    button.setAttribute("aria-label", ok ? "Copied" : "Copying failed: select the code instead");
    var text = button.querySelector(".copy-label");
    if (text) text.textContent = ok ? "Copied" : "Failed";
    setTimeout(function () {
      button.classList.remove("copied", "copy-failed");
      button.setAttribute("aria-label", label);
      if (text) text.textContent = "Copy";
    }, 1600);
  }
  window.siteCodeText = codeText;  // what a copy button copies (used by the page tests)
  Array.prototype.forEach.call(document.querySelectorAll("button.copy"), function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = codeText(button);
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(function () { copied(button, true); },
          function () { copied(button, copyWithSelection(text)); });
      } else {
        copied(button, copyWithSelection(text));
      }
    });
  });

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
