"""
The page side of a :class:`~nbws.MessageLog`: the rows, the inspector and the downloads.

The kernel renders the rows as HTML (a few times a second at most) into the
``value`` trait; this widget's front-end code (an anywidget ES module, shipped
inline: no build step, no network) shows them and does what only the page can
do, as browser developer tools do:

- a click on a row selects it (the ``selected`` trait); the kernel answers
  with the whole message in ``detail``, shown as a collapsible JSON tree,
  text, hex or base64, with its size and timestamps, and buttons to copy it,
  resend it, or edit it in the composer and send it;
- scrolled up, the view stays where the user put it: new rows are counted
  on a "N new, jump to latest" button instead of moving the rows read;
- an export arrives as a message and is offered as a browser download.
"""

from __future__ import annotations

from typing import Any

import anywidget
import traitlets

__all__ = ["LogView"]

ESM = r"""
const ARROWS = { send: "↑ sent", receive: "↓ received", event: "● event" };

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function scalar(value) {
  if (value === null) return el("span", "nbws-json-null", "null");
  if (typeof value === "string") return el("span", "nbws-json-string", JSON.stringify(value));
  if (typeof value === "number") return el("span", "nbws-json-number", String(value));
  if (typeof value === "boolean") return el("span", "nbws-json-bool", String(value));
  return el("span", "", String(value));
}

// A collapsible tree, as developer tools show JSON: objects and arrays fold, the top two levels open.
function tree(value, key, depth) {
  const isArray = Array.isArray(value);
  if (value === null || typeof value !== "object") {
    const line = el("div", "nbws-json-line");
    if (key !== undefined) line.append(el("span", "nbws-json-key", key + ": "));
    line.append(scalar(value));
    return line;
  }
  const entries = isArray ? value.map((v, i) => [String(i), v]) : Object.entries(value);
  const node = el("details", "nbws-json-node");
  node.open = depth < 2 && entries.length <= 100;
  const summary = el("summary");
  if (key !== undefined) summary.append(el("span", "nbws-json-key", key + ": "));
  summary.append(el("span", "nbws-json-count", isArray ? `Array(${entries.length})` : `{${entries.length} keys}`));
  node.append(summary);
  for (const [k, v] of entries) node.append(tree(v, k, depth + 1));
  return node;
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (err) {
    const area = el("textarea");
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type: type || "application/x-ndjson" }));
  const link = el("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function render({ model, el: root }) {
  root.classList.add("nbws-log-view");
  const box = el("div", "nbws-log-body");
  const jump = el("button", "nbws-jump");
  jump.hidden = true;
  const inspector = el("div", "nbws-inspector");
  inspector.hidden = true;
  root.append(box, jump, inspector);

  let shown = null;
  let shownNewest = 0;
  let shownGen = null;
  let view = null;

  const atBottom = () => box.scrollHeight - box.scrollTop - box.clientHeight < 4;
  const meta = (html) => {
    const found = /data-newest="(\d+)" data-gen="(\d+)"/.exec(html);
    return found ? [Number(found[1]), found[2]] : [0, null];
  };

  function markSelected() {
    const selected = model.get("selected");
    for (const row of box.querySelectorAll(".nbws-row[data-row]")) {
      row.classList.toggle("nbws-selected", Number(row.dataset.row) === selected);
    }
  }

  function apply(force) {
    const html = model.get("value");
    if (html === shown) return;
    const [newest, gen] = meta(html);
    const stick = atBottom();
    if (!force && !stick && shown !== null && gen === shownGen) {
      // Scrolled up to read: keep the rows where they are and count what came meanwhile.
      const count = newest - shownNewest;
      jump.hidden = count <= 0;
      jump.textContent = `${count} new · jump to latest ↓`;
      return;
    }
    const top = box.scrollTop;
    box.innerHTML = html;
    shown = html;
    shownNewest = newest;
    shownGen = gen;
    jump.hidden = true;
    markSelected();
    box.scrollTop = stick ? box.scrollHeight : top;
  }

  function renderInspector() {
    const d = model.get("detail") || {};
    inspector.innerHTML = "";
    if (d.id === undefined) {
      inspector.hidden = true;
      return;
    }
    inspector.hidden = false;
    const head = el("div", "nbws-inspector-head");
    head.append(el("b", "", ARROWS[d.direction] || d.direction));
    head.append(el("span", "", ` ${d.connection} · ${d.label}`));
    for (const mark of d.marks || []) head.append(el("span", `nbws-mark nbws-mark-${mark}`, mark));
    const close = el("button", "nbws-inspector-close", "\u00d7");
    close.title = "close the inspector";
    close.onclick = () => {
      model.set("selected", -1);
      model.save_changes();
      markSelected();
    };
    head.append(close);
    const facts = el("div", "nbws-inspector-facts");
    for (const [name, value] of d.facts || []) {
      facts.append(el("span", "nbws-fact-name", name), el("span", "nbws-fact-value", value));
    }
    const views = [];
    let parsed;
    if (d.json) {
      try {
        parsed = JSON.parse(d.text);
        views.push(["JSON", () => tree(parsed, undefined, 0), () => JSON.stringify(parsed, null, 2)]);
      } catch (err) {}
    }
    if (typeof d.text === "string") views.push(["Text", () => el("pre", "", d.text), () => d.text]);
    if (typeof d.base64 === "string") {
      views.push(["Hex", () => el("pre", "", d.hex), () => d.hex]);
      views.push(["Base64", () => el("pre", "", d.base64), () => d.base64]);
    }
    if (d.detail) views.push(["Event", () => el("pre", "", d.detail), () => d.detail]);
    if (typeof d.original === "string") views.push(["Original", () => el("pre", "", d.original), () => d.original]);
    for (const [title, text] of d.views || []) views.push([title, () => el("pre", "", text), () => text]);
    const tabs = el("div", "nbws-inspector-tabs");
    const content = el("div", "nbws-inspector-content");
    let current = views[0];
    if (view && views.some((v) => v[0] === view)) current = views.find((v) => v[0] === view);
    const show = (item) => {
      current = item;
      view = item[0];
      for (const tab of tabs.children) tab.classList.toggle("nbws-tab-on", tab.textContent === item[0]);
      content.innerHTML = "";
      content.append(item[1]());
    };
    for (const item of views) {
      const tab = el("button", "nbws-tab", item[0]);
      tab.onclick = () => show(item);
      tabs.append(tab);
    }
    const actions = el("div", "nbws-inspector-actions");
    const note = el("span", "nbws-inspector-note", d.note || "");
    const copy = el("button", "nbws-action", "Copy");
    copy.title = "copy what this view shows";
    copy.onclick = async () => {
      note.textContent = current && (await copyText(current[2]())) ? `copied ${current[0]}` : "could not copy";
    };
    actions.append(copy);
    if (d.can_send) {
      const resend = el("button", "nbws-action", "Resend");
      resend.title = "send this message again, as it is";
      resend.onclick = () => model.send({ action: "resend", id: d.id });
      const edit = el("button", "nbws-action", "Edit and send");
      edit.title = "put this message in the composer to edit it and send it";
      edit.onclick = () => model.send({ action: "edit", id: d.id });
      actions.append(resend, edit);
    }
    actions.append(note);
    inspector.append(head, facts, tabs, content, actions);
    if (current) show(current);
  }

  model.on("change:value", () => apply(false));
  model.on("change:selected", markSelected);
  model.on("change:detail", renderInspector);
  model.on("msg:custom", (msg) => {
    if (msg && msg.type === "download") download(msg.name, msg.text, msg.mime);
  });
  box.addEventListener("scroll", () => {
    if (atBottom()) apply(true);
  });
  jump.addEventListener("click", () => {
    apply(true);
    box.scrollTop = box.scrollHeight;
  });
  box.addEventListener("click", (event) => {
    const row = event.target.closest(".nbws-row[data-row]");
    if (!row) return;
    model.set("selected", Number(row.dataset.row));
    model.save_changes();
    markSelected();
  });
  apply(true);
  renderInspector();
}

export default { render };
"""


class LogView(anywidget.AnyWidget):
    """The rows of a :class:`~nbws.MessageLog` in the page, with the message inspector."""

    _esm = traitlets.Unicode(ESM).tag(sync=True)
    value = traitlets.Unicode("", help="the rows, as HTML rendered by the kernel").tag(sync=True)
    selected = traitlets.Int(-1, help="the id of the row the user clicked, -1 for none").tag(sync=True)
    detail = traitlets.Dict({}, help="the selected row's whole message, for the inspector").tag(sync=True)

    def __repr__(self) -> str:
        return f"<LogView selected={self.selected}>"

    def offer_download(self, name: str, text: str, mime: str = "application/x-ndjson") -> None:
        """Make the page offer ``text`` as a download named ``name``."""
        message: dict[str, Any] = {"type": "download", "name": name, "text": text, "mime": mime}
        self.send(message)
