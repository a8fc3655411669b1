// Keyboard-first review screen. Everything here also works with the mouse and
// without JavaScript (plain forms and links); this file only adds keys, the
// dependent-field rules and a guard against leaving unsaved changes.
(function () {
  "use strict";

  const form = document.getElementById("decision");
  if (!form) {
    const start = document.getElementById("start");
    if (start && document.activeElement === document.body) start.focus();
    return;
  }

  const memo = document.getElementById("memo");
  const statusLine = document.getElementById("status-line");
  const help = document.getElementById("keys-help");
  const canAccept = form.dataset.canAccept === "true";
  const initiallyDirty = form.dataset.dirty === "true";
  let submitting = false;

  const choices = () => Array.from(form.querySelectorAll("input[type=checkbox], input[type=radio]"));
  const fieldset = (id) => form.querySelector('fieldset.field[data-field="' + CSS.escape(id) + '"]');
  const chosen = (id) => Array.from(fieldset(id).querySelectorAll("input:checked")).map((i) => i.value).filter(Boolean);
  const labelsChanged = () => initiallyDirty || choices().some((i) => i.checked !== i.defaultChecked);
  const unsaved = () => labelsChanged() || (memo && memo.value !== memo.defaultValue);

  // The same rules as pipeline.review.normalise_labels: a field that requires a label is
  // only open while that label is chosen; a field taking its labels from another offers
  // only the labels chosen there, and falls back to the first of them.
  function applyRules() {
    form.querySelectorAll("fieldset.field").forEach((fs) => {
      const reqField = fs.dataset.requiresField;
      if (reqField) {
        const open = chosen(reqField).includes(fs.dataset.requiresLabel);
        fs.querySelectorAll("input").forEach((i) => { i.disabled = i.value ? !open : open; });
        if (!open) { const none = fs.querySelector('input[value=""]'); if (none) none.checked = true; }
        fs.classList.toggle("inactive", !open);
      }
      const from = fs.dataset.labelsFrom;
      if (from) {
        const allowed = chosen(from);
        fs.querySelectorAll("input").forEach((i) => { i.disabled = i.value ? !allowed.includes(i.value) : allowed.length > 0; });
        const current = fs.querySelector("input:checked");
        if (!current || (current.value && !allowed.includes(current.value)) || (!current.value && allowed.length)) {
          const target = allowed.length
            ? fs.querySelector('input[value="' + CSS.escape(allowed[0]) + '"]')
            : fs.querySelector('input[value=""]');
          if (target) target.checked = true;
        }
      }
    });
    const changed = labelsChanged();
    form.classList.toggle("dirty", changed);
    statusLine.textContent = changed ? "Gewijzigd: Enter slaat uw correctie op, Esc herstelt." : "";
  }

  function toggle(input) {
    if (input.disabled) return;
    if (input.type === "checkbox") {
      input.checked = !input.checked;
    } else if (input.checked) {
      const none = input.closest("fieldset").querySelector('input[value=""]');
      if (none) none.checked = true;
    } else {
      input.checked = true;
    }
    applyRules();
  }

  function submit(action) {
    if (submitting) return;
    const button = document.getElementById(action);
    if (!button || button.disabled) {
      statusLine.textContent = "Er is niets om te accepteren: kies de labels en druk op Enter.";
      return;
    }
    form.requestSubmit(button);
  }

  const enterAction = () => (labelsChanged() || !canAccept ? "save" : "accept");

  function go(which) {
    const link = document.getElementById(which);
    if (!link) return;
    if (unsaved() && !window.confirm("Uw wijzigingen zijn nog niet opgeslagen. Toch verder?")) return;
    window.removeEventListener("beforeunload", guard);
    window.location.assign(link.href);
  }

  function guard(event) {
    if (!submitting && unsaved()) { event.preventDefault(); event.returnValue = ""; }
  }

  form.addEventListener("change", applyRules);
  form.addEventListener("reset", () => window.setTimeout(applyRules, 0));
  // Saving goes through fetch so that a failure (session expired, no connection, an
  // invalid coding) leaves the page and the analyst's choices as they are: nothing is
  // lost, and Enter tries again. Without JavaScript the form posts the ordinary way.
  const errorBox = document.getElementById("save-error");
  function showError(message, problems) {
    errorBox.replaceChildren();
    const strong = document.createElement("strong");
    strong.textContent = "Niet opgeslagen: ";
    errorBox.append(strong, document.createTextNode(message));
    if (problems && problems.length) {
      const list = document.createElement("ul");
      problems.forEach((p) => { const li = document.createElement("li"); li.textContent = p; list.append(li); });
      errorBox.append(list);
    }
    errorBox.hidden = false;
    statusLine.textContent = "";
  }
  let staleToken = false;
  async function renewToken() {
    // After a new login (in another tab) this page still carries the old session's CSRF token.
    try {
      const r = await fetch("/api/ping", { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!r.ok) return;
      const token = (await r.json()).csrf_token;
      document.querySelectorAll('input[name="csrf_token"]').forEach((i) => { i.value = token; });
      staleToken = false;
    } catch (err) { /* the post below reports it */ }
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (submitting) return;
    submitting = true;
    if (staleToken) await renewToken();
    const buttons = Array.from(form.querySelectorAll("button"));
    const body = new FormData(form, event.submitter);
    buttons.forEach((b) => { b.disabled = true; });
    statusLine.textContent = "Opslaan …";
    let response;
    try {
      response = await fetch(form.getAttribute("action"), { // not form.action: a button is named "action"
        method: "POST", body, credentials: "same-origin", headers: { Accept: "application/json" },
      });
    } catch (err) {
      response = null;
    }
    let data = {};
    if (response) { try { data = await response.json(); } catch (err) { data = {}; } }
    if (response && response.ok && data.next) {
      window.removeEventListener("beforeunload", guard);
      window.location.assign(data.next);
      return;
    }
    submitting = false;
    buttons.forEach((b) => { b.disabled = false; });
    document.getElementById("accept").disabled = !canAccept;
    if (!response) {
      showError("geen verbinding met de server. Uw keuzes staan er nog; druk opnieuw op Enter.");
    } else if (response.status === 401 || response.status === 403) {
      staleToken = true;
      if (response.status === 403) { showError(data.error || "geweigerd.", data.problems); return; }
      showError("uw sessie is verlopen. Uw keuzes staan er nog: ");
      const link = document.createElement("a");
      link.href = "/login";
      link.target = "_blank";
      link.rel = "noopener";
      link.textContent = "log in in een nieuw tabblad";
      errorBox.append(link, document.createTextNode(" en druk hier daarna opnieuw op Enter."));
    } else {
      showError(data.error || ("de server antwoordde " + response.status + "."), data.problems);
    }
  });
  window.addEventListener("beforeunload", guard);

  const byKey = {};
  choices().forEach((i) => { if (i.dataset.key) byKey[i.dataset.key] = i; });

  document.addEventListener("keydown", (e) => {
    const t = e.target;
    const typing = t && (t.tagName === "TEXTAREA" || t.tagName === "SELECT" ||
      (t.tagName === "INPUT" && t.type !== "checkbox" && t.type !== "radio"));
    if (typing) {
      if (e.key === "Escape") { e.preventDefault(); t.blur(); }
      else if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); submit(enterAction()); }
      return;
    }
    if (e.altKey || e.ctrlKey || e.metaKey || e.isComposing) return;
    if (e.key === "Enter") {
      if (t && (t.tagName === "A" || t.tagName === "BUTTON" || t.tagName === "SUMMARY")) return;
      e.preventDefault();
      submit(enterAction());
    } else if (e.key === "Escape") {
      form.reset();
    } else if (e.key === "ArrowRight") {
      e.preventDefault(); go("next");
    } else if (e.key === "ArrowLeft") {
      e.preventDefault(); go("prev");
    } else if (e.key === "?") {
      help.open = !help.open;
    } else if (e.key === "m" && !e.shiftKey && memo && !memo.disabled) {
      e.preventDefault(); memo.focus();
    } else {
      const input = byKey[(e.shiftKey ? "Shift+" : "") + e.code];
      if (input) { e.preventDefault(); toggle(input); }
    }
  });

  applyRules();
})();
