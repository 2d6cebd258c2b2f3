// New SMS page: small DOM helpers. Counting, pricing and validation happen on the server
// (the #summary panel is refreshed by htmx from campaigns:summary), never here.
(function () {
  "use strict";
  const form = document.getElementById("composer");
  if (!form) return;
  const numbers = document.getElementById("id_recipients");
  const text = document.getElementById("id_text");
  const chosen = document.getElementById("chosen");
  const refresh = () => htmx.trigger(form, "refresh");

  function addRecipients() {
    const entry = document.getElementById("phone-entry");
    const value = entry.value.trim();
    if (!value) return;
    numbers.value = numbers.value.trim() ? numbers.value.trim() + "\n" + value : value;
    entry.value = "";
    entry.focus();
    refresh();
  }
  document.getElementById("add-recipients").addEventListener("click", addRecipients);
  document.getElementById("phone-entry").addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); addRecipients(); }
  });

  function insertAtCursor(field, snippet) {
    const start = field.selectionStart ?? field.value.length;
    const end = field.selectionEnd ?? field.value.length;
    field.value = field.value.slice(0, start) + snippet + field.value.slice(end);
    field.selectionStart = field.selectionEnd = start + snippet.length;
    field.focus();
  }

  form.addEventListener("click", (event) => {
    const target = event.target.closest("button");
    if (!target) return;
    if (target.dataset.insert) {
      insertAtCursor(text, target.dataset.insert);
      refresh();
    } else if (target.dataset.pick) {
      const { pick, id, label } = target.dataset;
      if (!chosen.querySelector(`input[name="${pick}"][value="${id}"]`)) {
        const item = document.createElement("li");
        item.className = "chip";
        const hidden = document.createElement("input");
        Object.assign(hidden, { type: "hidden", name: pick, value: id });
        const remove = document.createElement("button");
        Object.assign(remove, { type: "button", className: "link", textContent: "×" });
        remove.dataset.remove = "";
        remove.setAttribute("aria-label", "Remove");
        item.append(hidden, label + " ", remove);
        chosen.append(item);
        refresh();
      }
    } else if ("remove" in target.dataset) {
      target.closest("li").remove();
      refresh();
    }
  });

  const templatePick = document.getElementById("template-pick");
  if (templatePick) {
    templatePick.addEventListener("change", () => {
      const option = templatePick.selectedOptions[0];
      if (option && option.dataset.text !== undefined) { text.value = option.dataset.text; refresh(); }
    });
  }

  // The native picker fills the typed field (dd/mm/yyyy hh:mm), which stays the source of truth.
  const picker = document.getElementById("send-at-picker");
  picker.addEventListener("change", () => {
    const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(picker.value);
    if (match) document.getElementById("id_send_at").value = `${match[3]}/${match[2]}/${match[1]} ${match[4]}:${match[5]}`;
  });
})();
